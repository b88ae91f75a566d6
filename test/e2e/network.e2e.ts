/**
 * The board on a network, under QEMU's user networking with restrict=on: the board reaches
 * nothing beyond the emulated network except the services this test serves on 127.0.0.1
 * (guestfwd to 10.0.2.100), and this machine reaches it only through forwarded ports on
 * 127.0.0.1. A card flashed with a settings file (host name, SSH key, time zone, a Wi-Fi
 * network), one more network (--wifi, its passphrase from NODEOS_WIFI_PSK) and a time URL,
 * booted through U-Boot:
 *  - every setting is applied: host name, TZ, the Wi-Fi networks listed in board.info and
 *    moved off the card's FAT to the users' partition (root only), nothing reported missing;
 *  - the link comes up by itself, DHCP gives the address, localhost resolves without DNS;
 *  - the clock is set from the test's time source (a Date header ten days ahead of ours);
 *  - npm installs a package with a dependency from the test's registry; require() finds it,
 *    also after a reboot;
 *  - the host's OpenSSH client logs in with the flashed key and drives the board; another key
 *    is refused; the host key is the same after the reboot;
 *  - a server started in the REPL answers this machine through --forward;
 *  - (qemu-virt) UDP through --forward HOST:BOARD/udp reaches a socket opened in the REPL;
 *    init under fire: hostile datagrams to its mDNS responder and DHCP client until 2400 are read
 *    (UDP forwarded to 5353 and 68) and hundreds of junk connections to its SSH server; then
 *    all three still answer (a query, the lease, a login) and nothing was restarted.
 * rpi3b: dwc2 + cdc_ether for QEMU's usb-net; qemu-virt: virtio-net. The npm installs and
 * the reboot run on qemu-virt only: the same code on a cheaper machine (QEMU's usb-net costs
 * rpi3b minutes), and npm over rpi3b's link is in apps.e2e (a user's app from a registry).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { freeLoopbackPort, getBoard, prepareEmulation, startEmulation, WIFI_PSK_ENV } from '../../src/index.js';
import { encodeDhcp, Opt, opt } from '../../src/net/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { monitor } from '../helpers/monitor.js';
import { startRegistry } from '../helpers/registry.js';
import { ssh, userKey } from '../helpers/ssh.js';
import { systemFile } from '../helpers/system-slot.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { e2eOut } from '../helpers/out.js';
import { blast, hostile, tcpBlast } from '../helpers/hostile.js';
import { freeUdpPort } from '../helpers/udp.js';

const dnsPacket = createRequire(import.meta.url)('dns-packet') as { encode(p: unknown): Buffer; decode(b: Buffer): { id: number; answers: { type: string; data: unknown }[] } };

const OUT = e2eOut('network');
const BOOT_MS = 420_000;
const TEN_DAYS = 10 * 86400_000;
const PROMPT = /\n> $/;
const WIFI_PASSPHRASE = 'correct horse battery';

const PACKAGES = [
  { name: 'nodeos-shout', version: '1.0.0', main: "module.exports = (s) => String(s).toUpperCase() + '!';\n" },
  { name: 'nodeos-greet', version: '1.2.0', dependencies: { 'nodeos-shout': '^1.0.0' }, main: "const shout = require('nodeos-shout');\nmodule.exports = (who) => shout('hello ' + who);\n" },
  // An addon with no prebuilt binary: npm would run node-gyp, which the board cannot.
  { name: 'nodeos-native', version: '0.1.0', main: "module.exports = require('./build/Release/native.node');\n", files: { 'binding.gyp': "{ 'targets': [ { 'target_name': 'native', 'sources': [ 'native.cc' ] } ] }\n", 'native.cc': '// never compiled\n' } },
];

for (const [id, full] of [['rpi3b', false], ['qemu-virt', true]] as const) {
  describe(`${id} on the network (QEMU user networking, restricted)`, () => {
    after(cleanupTemp);

    it(full ? 'DHCP, names, clock, npm install, SSH with the flashed key, a server reached through --forward; all kept over a reboot' : 'DHCP, names, clock, SSH with the flashed key, a server reached through --forward', async () => {
      const b = await runCli('build', '--board', id, '--out', OUT, '--json');
      assert.equal(b.code, 0, b.err);
      const dir = tempDir();
      const good = userKey(dir, 'good');
      const bad = userKey(dir, 'bad');
      const card = join(dir, 'card.img');
      const hostname = `${id.replace(/[^a-z0-9]/g, '')}-net`;
      writeFileSync(join(dir, 'settings.yaml'), `hostname: ${hostname}\ntimezone: Europe/Berlin\nsshKeys: [good.pub]\nwifi:\n  country: DE\n  networks:\n    - { ssid: school, psk: "${WIFI_PASSPHRASE}", priority: 2 }\n`);
      process.env[WIFI_PSK_ENV] = 'phone passphrase';
      const f = await runCli('flash', join(OUT, `nodeos-${id}.img`), '--device', card, '--force-file', '--yes', '--json',
        '--settings', join(dir, 'settings.yaml'), '--wifi', 'phone', '--cmdline', 'nodeos.timeurl=http://10.0.2.100/');
      delete process.env[WIFI_PSK_ENV];
      assert.equal(f.code, 0, f.err + f.out);

      // A package whose install script finds its linux-arm64 prebuild (an arm64 N-API addon: serialport's, from the image).
      const addon = systemFile(join(OUT, `nodeos-${id}.img`), 'usr/lib/node_modules/@serialport/bindings-cpp/prebuilds/linux-arm64/@serialport+bindings-cpp.armv8.glibc.node');
      const prebuilt = {
        name: 'nodeos-prebuilt',
        version: '2.0.0',
        main: "module.exports = require('./prebuilds/' + process.platform + '-' + process.arch + '/addon.node');\n",
        files: { 'binding.gyp': "{ 'targets': [ { 'target_name': 'addon', 'sources': [ 'addon.cc' ] } ] }\n", 'prebuilds/linux-arm64/addon.node': addon },
        scripts: { install: 'node -e "require(\'./index.js\')" || node-gyp rebuild' },
      };
      const registry = await startRegistry([...PACKAGES, prebuilt], 'http://10.0.2.100/', () => new Date(Date.now() + TEN_DAYS));
      const [sshPort, httpPort, mdnsPort, dhcpPort, udpPort] = [await freeLoopbackPort(), await freeLoopbackPort(), await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
      const sock = join(dir, 'monitor.sock');
      const e = prepareEmulation(card, getBoard(id).profile, {
        monitorSocket: sock,
        net: {
          forward: [{ host: sshPort, board: 22 }, { host: httpPort, board: 8080 }, ...(full ? [{ host: mdnsPort, board: 5353, proto: 'udp' as const }, { host: dhcpPort, board: 68, proto: 'udp' as const }, { host: udpPort, board: 9999, proto: 'udp' as const }] : [])],
          services: [{ board: 80, host: registry.port }],
        },
      });
      assert.match(e.args.join(' '), /restrict=on/);
      const t = Date.now();
      const c = new Console(startEmulation(e, 'pipe'));
      try {
        await c.waitFor(PROMPT, BOOT_MS, 0);
        const said = (re: RegExp, what: string, ms = 90_000): Promise<void> => until(() => c.messages.some((m) => re.test(m)), `${what}; console messages:\n${c.messages.join('\n')}\n${c.output.slice(-1500)}`, ms);

        // Address, once on the console.
        await said(/network: eth0 10\.0\.2\.15\/24 from DHCP server 10\.0\.2\.2 \(lease \d+ s\)/, 'the DHCP lease');
        console.log(`      ${id}: address from DHCP ${((Date.now() - t) / 1000).toFixed(1)} s after QEMU start`);
        assert.equal(c.messages.filter((m) => m.includes('from DHCP server')).length, 1, 'said once');
        assert.equal(await c.eval("require('os').networkInterfaces().eth0.find((a) => a.family === 'IPv4').address"), "'10.0.2.15'");
        await c.eval("require('dns').lookup('localhost', 4, (e, a) => { globalThis.lh = e ? e.code : a })");
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(await c.eval('lh'), "'127.0.0.1'", 'localhost from /etc/hosts, no DNS server needed');
        assert.equal(await c.eval("require('os').hostname()"), `'${hostname}'`);
        // The other settings: the time zone for the REPL (and all init starts), the Wi-Fi
        // networks listed and moved off the card's FAT to the users' partition, readable by root only.
        assert.equal(await c.eval('Intl.DateTimeFormat().resolvedOptions().timeZone'), "'Europe/Berlin'");
        assert.equal(await c.eval('JSON.stringify(board.info.settings)'), `'${JSON.stringify({ hostname, timezone: 'Europe/Berlin', wifi: { country: 'DE', networks: [{ ssid: 'school', priority: 2 }, { ssid: 'phone', priority: 0 }], kept: 'users' }, problems: [] })}'`);
        // Said at boot, before the prompt (c.messages holds what came after it).
        assert.match(c.printed, /\nnodeos: wifi: "school", "phone" moved from the card to the users' partition\r?\n/);
        assert.equal(await c.eval("board.env.get('nodeos_wifi')"), 'undefined');
        assert.equal(await c.eval("(require('fs').statSync('/home/.config/nodeos/wifi.json').mode & 0o777).toString(8)"), "'600'");
        assert.equal(await c.eval("JSON.parse(require('fs').readFileSync('/home/.config/nodeos/wifi.json', 'utf8')).networks.length"), '2');
        c.neverPrinted(new RegExp(`${WIFI_PASSPHRASE}|phone passphrase`), 'a Wi-Fi passphrase');
        // The responder runs with the real module (slirp carries no multicast: answers are proven on loopback with dig).
        await said(new RegExp(`mdns: answering for ${hostname}\\.local`), 'the mDNS responder');

        // The clock, from the test's Date header (ten days ahead: no other source could say that).
        await said(/clock: set to \S+ from http http:\/\/10\.0\.2\.100\/ \(was off by/, 'the clock set from the test');
        const skew = Number(await c.eval('Date.now()')) - (Date.now() + TEN_DAYS);
        assert.ok(Math.abs(skew) < 60_000, `the board's clock is ${skew} ms off the test's time source`);
        assert.equal(await c.eval('board.info.clock.synced'), 'true');
        assert.equal(await c.eval('board.info.clock.source'), "'http http://10.0.2.100/'");

        // npm from the test's registry: a package with a dependency, global, on the users' partition.
        if (full) {
          await c.eval('.npm config set registry http://10.0.2.100/', 120_000);
          const npmStart = Date.now();
          const { printed: install } = await c.evalFull('.npm install -g nodeos-greet', 300_000);
          console.log(`      ${id}: npm install -g nodeos-greet ${((Date.now() - npmStart) / 1000).toFixed(1)} s`);
          assert.doesNotMatch(install, /npm exited with status|ERR!/, install);
          assert.equal(await c.eval("require('nodeos-greet')('board')"), "'HELLO BOARD!'");
          assert.ok(registry.log.includes('GET /nodeos-shout/-/nodeos-shout-1.0.0.tgz'), registry.log.join('\n'));
          const native = await c.eval('.npm install -g nodeos-native', 300_000);
          assert.match(native, /nodeos-native@0\.1\.0 has a native addon with no prebuilt binary for linux-arm64, and NodeOS boards have no C\/C\+\+ compiler/, native);
          assert.match(native, /npm exited with status 1/);
          const { printed: pre } = await c.evalFull('.npm install -g nodeos-prebuilt', 300_000);
          assert.doesNotMatch(pre, /npm exited with status|ERR!|no C\/C\+\+ compiler/, pre);
          assert.equal(await c.eval("typeof require('nodeos-prebuilt').open"), "'function'", 'the arm64 prebuild loads on the board');
        }

        // SSH with the key given to flash.
        await said(/ssh: listening on port 22, host key SHA256:\S+ \(ED25519\)/, 'the SSH server');
        const w = await ssh(sshPort, dir, good.file, ['board.GPIO17 ? (board.GPIO17.write(1), board.GPIO17.value) : require("os").hostname()']);
        assert.deepEqual([w.code, w.err], [0, ''], w.err);
        assert.equal(w.out.trim(), id === 'rpi3b' ? '1' : hostname);
        assert.equal((await ssh(sshPort, dir, good.file, ['process.env.TZ'])).out, 'Europe/Berlin\n', 'SSH sessions have the time zone');
        if (id === 'rpi3b') assert.equal((await ssh(sshPort, dir, good.file, ['board.GPIO17.value'])).out, '1\n');
        const thrown = await ssh(sshPort, dir, good.file, ['nosuchname']);
        assert.equal(thrown.code, 1);
        assert.match(thrown.err, /ReferenceError: nosuchname is not defined/);
        const refused = await ssh(sshPort, dir, bad.file, ['1']);
        assert.equal(refused.code, 255);
        assert.match(refused.err, /Permission denied \(publickey\)/);
        await said(/ssh: refused key SHA256:\S+ \(ssh-ed25519\) for nodeos from /, 'the refused key logged');

        // Init under fire: every listener it runs on this board, fed hostile input through the
        // forwarded UDP ports (as from 10.0.2.2, an on-link neighbour) and the SSH port, then
        // asked again. QEMU's restricted network drops every UDP datagram the board sends but
        // DHCP's, so the responder is asked from the board itself (its own address, on-link).
        if (full) {
          assert.equal(await c.eval("globalThis.udpSeen = 0; globalThis.udpSrv = require('dgram').createSocket('udp4').on('message', () => udpSeen++).bind(9999); 'ok'"), "'ok'");
          // One datagram at a time until one arrives: the first may be lost (sent before the socket is bound, or before slirp knows the board's MAC).
          for (let i = 0; i < 20 && (await c.eval('udpSeen')) === '0'; i++) {
            await blast(udpPort, [Buffer.from('hello')]);
            await new Promise((r) => setTimeout(r, 500));
          }
          assert.equal(await c.eval('udpSeen = 0'), '0');
          await blast(udpPort, Array.from({ length: 20 }, (_, i) => Buffer.from(`datagram ${i}`)));
          let seenUdp = '0';
          for (let i = 0; i < 20 && seenUdp !== '20'; i++) {
            await new Promise((r) => setTimeout(r, 500));
            seenUdp = await c.eval('udpSeen');
          }
          assert.equal(seenUdp, '20', 'the 20 datagrams forwarded to the board (--forward HOST:9999/udp)');
          const query = dnsPacket.encode({ type: 'query', id: 4242, questions: [{ type: 'A', name: `${hostname}.local` }] });
          const ask = async (): Promise<string[]> => {
            await c.eval(`delete globalThis.mdnsAns; (() => { const s = require('dgram').createSocket('udp4'); s.on('message', (m) => { globalThis.mdnsAns = m.toString('base64'); s.close() }); s.send(Buffer.from('${query.toString('base64')}', 'base64'), 5353, '10.0.2.15'); setTimeout(() => { try { s.close() } catch {} }, 4000) })()`);
            const t0 = Date.now();
            let b64 = 'undefined';
            while (b64 === 'undefined' && Date.now() - t0 < 5000) {
              await new Promise((r) => setTimeout(r, 500));
              b64 = await c.eval('globalThis.mdnsAns');
            }
            if (b64 === 'undefined') return [];
            const answer = dnsPacket.decode(Buffer.from(b64.slice(1, -1), 'base64'));
            return answer.id === 4242 ? answer.answers.filter((a) => a.type === 'A').map((a) => String(a.data)) : [];
          };
          assert.deepEqual(await ask(), ['10.0.2.15'], 'the responder answers a unicast query');
          // The kernel's count of UDP datagrams delivered to sockets, before and after.
          const udpIn = async (): Promise<number> => Number(await c.eval("Number((([h, v]) => v.split(' ')[h.split(' ').indexOf('InDatagrams')])(require('fs').readFileSync('/proc/net/snmp', 'utf8').split('\\n').filter((l) => l.startsWith('Udp:'))))"));
          const inBefore = await udpIn();
          const before = c.messages.length;
          const fire = Date.now();
          const mdnsValid = [
            query,
            dnsPacket.encode({ type: 'query', id: 2, questions: Array.from({ length: 40 }, () => ({ type: 'ANY', name: `${hostname}.local` })) }),
            dnsPacket.encode({ type: 'response', id: 3, answers: [{ type: 'A', name: `${hostname}.local`, data: '10.0.2.99' }] }),
          ];
          const mac = '52:54:00:12:34:56'; // QEMU's default for the board's NIC
          const dhcpValid = [
            encodeDhcp({ op: 2, xid: 1, chaddr: mac, type: 'ACK', yiaddr: '10.0.2.99', options: new Map([[Opt.SERVER_ID, opt.fromIps(['10.0.2.2'])], [Opt.LEASE_TIME, opt.fromU32(0xfffffffe)], [Opt.DOMAIN, Buffer.from('x\nnameserver 6.6.6.6')]]) }),
            encodeDhcp({ op: 2, xid: 2, chaddr: mac, type: 'NAK', options: new Map([[Opt.MESSAGE, Buffer.from('\x1b[2J\nroot logged in')]]) }),
          ];
          const sshValid = [Buffer.from('SSH-2.0-OpenSSH_9.2p1\r\n'), Buffer.concat([Buffer.from('SSH-2.0-x\r\n'), Buffer.from([0, 0, 0x7f, 0xff, 10, 20]), Buffer.alloc(64, 0x41)])];
          // Paced, 100 a second to each, in rounds until 2400 have been read: faster, most overflow
          // the sockets' receive buffers on the slow emulated board and never reach a handler
          // (measured on qemu-virt: 500 a second to each, 676 of 2000 read; 100 a second, all).
          const pace = { batch: 2, pauseMs: 20 };
          const [mdnsHostile, dhcpHostile] = [hostile(mdnsValid, 3000, 11), hostile(dhcpValid, 3000, 12)];
          const sshFlood = tcpBlast(sshPort, sshValid, 200, 13);
          let [sent, delivered] = [0, 0];
          for (let round = 0; round < 20 && delivered < 2400; round++) {
            const part = (a: Buffer[]): Buffer[] => a.slice(round * 150, (round + 1) * 150);
            await Promise.all([blast(mdnsPort, part(mdnsHostile), pace), blast(dhcpPort, part(dhcpHostile), pace)]);
            sent += 300;
            delivered = (await udpIn()) - inBefore;
          }
          await sshFlood;
          console.log(`      ${id}: ${sent} hostile datagrams (${delivered} read by its listeners) and 200 junk SSH connections in ${((Date.now() - fire) / 1000).toFixed(1)} s`);
          assert.ok(delivered >= 2400, `only ${delivered} of ${sent} datagrams were read by the board's listeners`);
          assert.deepEqual(await ask(), ['10.0.2.15'], 'the responder still answers');
          let login = await ssh(sshPort, dir, good.file, ['6 * 7']);
          for (let i = 0; i < 10 && login.code !== 0; i++) {
            await new Promise((r) => setTimeout(r, 1000)); // junk connections still being torn down
            login = await ssh(sshPort, dir, good.file, ['6 * 7']);
          }
          assert.deepEqual([login.code, login.out, login.err], [0, '42\n', ''], 'the SSH server still logs in');
          assert.equal(await c.eval("require('os').networkInterfaces().eth0.find((a) => a.family === 'IPv4').address"), "'10.0.2.15'", 'the lease stands');
          const after = c.messages.slice(before);
          assert.deepEqual(after.filter((m) => /failed \(|caught and ignored|could not be answered|cannot answer|expired|released|NAK|nameserver 6/.test(m)), [], `no service failed or restarted, the lease untouched:\n${after.join('\n')}`);
          c.neverPrinted(/Kernel panic|Attempted to kill init/, 'the board');
          await c.eval('udpSrv.close()');
        }

        // Cable out and back in (virtio-net reports its link; QEMU's usb-net does not): said
        // once each way, and the lease confirmed at once.
        if (id === 'qemu-virt') {
          await monitor(sock, 'set_link net0 off');
          await said(/network: eth0 link down/, 'the link down');
          await monitor(sock, 'set_link net0 on');
          await said(/network: eth0 link up; confirming 10\.0\.2\.15/, 'the link up');
          assert.equal(c.messages.filter((m) => m.includes('link down')).length, 1, 'said once');
        }

        // A server in the REPL, reached from this machine.
        await c.eval("globalThis.srv = require('http').createServer((q, s) => s.end('hello from ' + require('os').hostname())).listen(8080)");
        let body = '';
        for (let i = 0; i < 20 && !body; i++) {
          body = await fetch(`http://127.0.0.1:${httpPort}/`).then((r) => r.text()).catch(() => '');
          if (!body) await new Promise((r) => setTimeout(r, 500));
        }
        assert.equal(body, `hello from ${hostname}`);

        // Reboot: the package and the host key are still there.
        if (!full) return;
        const from = c.output.length;
        const seen = c.messages.length;
        c.child.stdin!.write('board.reboot()\n');
        await c.waitFor(/Run \/init as init process[\s\S]*\n> $/, BOOT_MS, from);
        assert.ok(c.messages.slice(seen).some((m) => m === 'nodeos: network: released 10.0.2.15 to DHCP server 10.0.2.2'), 'the lease is released before the reboot');
        assert.equal(await c.eval("require('nodeos-greet')('again')"), "'HELLO AGAIN!'");
        await until(() => c.messages.slice(seen).some((m) => /ssh: listening/.test(m)), 'the SSH server after the reboot', 90_000);
        const again = await ssh(sshPort, dir, good.file, ['40 + 2'], { strict: true });
        assert.deepEqual([again.code, again.out, again.err], [0, '42\n', ''], 'same host key after a reboot (StrictHostKeyChecking=yes)');
        c.neverPrinted(/Kernel panic|Oops/, 'the board');
      } finally {
        c.stop();
        await registry.close();
      }
    });
  });
}

describe('rpi4b on the network (QEMU raspi4b, direct, emulation overlay: dwc2 in host mode)', () => {
  // QEMU's raspi4b has no GENET, delivers no UART input and shows no card to a direct boot:
  // the link is usb-net on the dwc2 controller (host mode in the emulated DTB only), and the
  // REPL's input is a nodeos.run= line that waits for the network, then asks this machine.
  it('link, DHCP, and an HTTP request from the REPL to a server on this machine; SSH off without a key, and says so', async () => {
    const b = await runCli('build', '--board', 'rpi4b', '--out', OUT, '--json');
    assert.equal(b.code, 0, b.err);
    const server = await startRegistry([], 'http://10.0.2.100/');
    const line = "(async()=>{for(let i=0;i<180;i++){try{const t=await (await fetch('http://10.0.2.100/')).text();console.log('e2e-http',JSON.stringify(t));return}catch{await new Promise(r=>setTimeout(r,1000))}}console.log('e2e-http failed')})()";
    const e = prepareEmulation(join(OUT, 'nodeos-rpi4b.img'), getBoard('rpi4b').profile, { direct: true, cmdline: [`nodeos.run="${line}"`], net: { services: [{ board: 80, host: server.port }] } });
    assert.match(e.args.join(' '), /usb-net,netdev=net0/);
    const t = Date.now();
    const c = new Console(startEmulation(e, 'pipe'));
    try {
      await c.waitFor(PROMPT, BOOT_MS, 0);
      const said = (re: RegExp, what: string): Promise<void> => until(() => c.messages.some((m) => re.test(m)), `${what}; console messages:\n${c.messages.join('\n')}\n${c.output.slice(-1500)}`, 180_000);
      await said(/network: eth0 10\.0\.2\.15\/24 from DHCP server 10\.0\.2\.2/, 'the DHCP lease');
      console.log(`      rpi4b: address from DHCP ${((Date.now() - t) / 1000).toFixed(1)} s after QEMU start`);
      // (The line itself is on the kernel command line the console shows: match only its output.)
      const got = await c.waitFor(/e2e-http ("[^"]*"|failed)\n/, 180_000, 0);
      assert.equal(got[1], '"nodeos test registry\\n"');
      assert.ok(server.log.includes('GET /'), server.log.join('\n'));
      await said(/ssh: off: no authorized key/, 'SSH off without a key');
      c.neverPrinted(/Kernel panic|Oops/, 'the board');
    } finally {
      c.stop();
      await server.close();
    }
  });
});
