/**
 * The board on a network, under QEMU's user networking with restrict=on (the board reaches
 * nothing beyond the emulated network; this machine reaches it only through --forward on
 * 127.0.0.1): the link comes up with no user action, DHCP gives the address, localhost
 * resolves without DNS, and a server started in the REPL answers this machine.
 *  - rpi3b, booted directly: dwc2 + cdc_ether for QEMU's usb-net.
 *  - qemu-virt, through U-Boot: virtio-net.
 * (Work in progress for issue 12: clock, npm, SSH come next.)
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { getBoard, packageRoot, prepareEmulation, startEmulation } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { until } from '../helpers/until.js';

const OUT = join(packageRoot(), 'out');
const BOOT_MS = 420_000;

/** A TCP port free on 127.0.0.1 right now. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

for (const [id, direct] of [['rpi3b', true], ['qemu-virt', false]] as const) {
  describe(`${id} on the network (QEMU user networking, restricted)`, () => {
    it('gets its address by DHCP, resolves localhost from /etc/hosts, and serves this machine through --forward', async () => {
      const b = await runCli('build', '--board', id, '--out', OUT, '--json');
      assert.equal(b.code, 0, b.err);
      const port = await freePort();
      const e = prepareEmulation(join(OUT, `nodeos-${id}.img`), getBoard(id).profile, { direct, net: { forward: [{ host: port, board: 8080 }] } });
      assert.ok(e.args.join(' ').includes('restrict=on'), 'the network is restricted');
      const t = Date.now();
      const c = new Console(startEmulation(e, 'pipe'));
      try {
        await c.waitFor(/\n> $/, BOOT_MS, 0);
        // The lease is announced once on the console (kept out of the REPL's answers).
        await until(() => c.messages.some((m) => m.includes('from DHCP server')), 'the lease on the console', 60_000).catch(() => undefined);
        assert.ok(c.messages.some((m) => /network: eth0 10\.0\.2\.15\/24 from DHCP server 10\.0\.2\.2 \(lease \d+ s\)/.test(m)), c.messages.join('\n') || c.output.slice(-2000));
        console.log(`      ${id}: address from DHCP ${((Date.now() - t) / 1000).toFixed(1)} s after QEMU start`);
        assert.equal(c.messages.filter((m) => m.includes('from DHCP server')).length, 1, 'said once');
        assert.equal(await c.eval("require('os').networkInterfaces().eth0.find((a) => a.family === 'IPv4').address"), "'10.0.2.15'");
        await c.eval("require('dns').lookup('localhost', 4, (e, a) => { globalThis.lh = e ? e.code : a })");
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(await c.eval('lh'), "'127.0.0.1'", 'localhost from /etc/hosts, no DNS server needed');
        await c.eval("globalThis.srv = require('http').createServer((q, s) => s.end('hello from ' + require('os').hostname())).listen(8080)");
        let body = '';
        for (let i = 0; i < 20 && !body; i++) {
          body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text()).catch(() => '');
          if (!body) await new Promise((r) => setTimeout(r, 500));
        }
        assert.equal(body, 'hello from nodeos');
        assert.doesNotMatch(c.output, /Kernel panic|Oops/);
      } finally {
        c.stop();
      }
    });
  });
}
