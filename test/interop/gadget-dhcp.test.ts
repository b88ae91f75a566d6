/**
 * The gadget's DHCP server, as init starts it on a USB cable (test/helpers/netns-gadget.ts:
 * src/runtime/usb-gadget.ts on a veth standing in for usb0), with the DHCP clients a laptop
 * or another Linux board really runs at the other end: BusyBox udhcpc and dhcpcd, from
 * Debian, in network namespaces this test makes. Lease, renew, RELEASE; the address and
 * route the client configured. Root only (namespaces), as CI runs.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netnsPair, startBoardHelper, stopChild, type BoardHelper, type NetnsPair } from '../helpers/netns.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { isRoot, requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';

describe("interop: the gadget's DHCP server with udhcpc and dhcpcd as the laptop (network namespaces)", function () {
  this.timeout(90000);
  let dir: string;
  let pair: NetnsPair;
  let board: BoardHelper;
  let laptop: ChildProcess | undefined;

  before(async function () {
    if (!isRoot()) this.skip();
    requireTool('busybox', ['udhcpc', '--help'], 'busybox');
    requireTool('dhcpcd', ['--version'], 'dhcpcd-base');
    dir = tempDir();
    pair = netnsPair();
    board = startBoardHelper(pair, './netns-gadget.ts', ['vc', 'rpi0-2w']);
    await until(() => board.events.some((e) => e.type === 'ready' || e.type === 'helper-exit'), 'the gadget network', 20000);
    assert.ok(board.events.some((e) => e.type === 'ready'), JSON.stringify(board.events));
  });

  after(async () => {
    await stopChild(laptop);
    board?.say('stop');
    await stopChild(board?.child);
    pair?.remove();
    cleanupTemp();
  });

  const leases = async (): Promise<Record<string, { address: string }>> => {
    const n = board.events.length;
    board.say('leases');
    await until(() => board.events.slice(n).some((e) => e.type === 'leases'), 'the lease table');
    return (board.events.slice(n).find((e) => e.type === 'leases') as { leases: Record<string, { address: string }> }).leases;
  };
  /** The board's table drops the laptop's lease (the RELEASE arrived). */
  const released = async (mac: string, what: string): Promise<void> => {
    for (let i = 0; i < 50; i++) {
      if ((await leases())[mac] === undefined) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`the RELEASE did not free the address: ${JSON.stringify(await leases())}\n${what}`);
  };
  const laptopAddr = (): string => pair.run(pair.peer, 'ip', '-4', 'addr', 'show', 'vs');

  it('udhcpc: bound to .2 with the /24 and the board as server; a forced renew keeps it; RELEASE on exit frees it', async () => {
    const mac = pair.mac(pair.peer);
    const envFile = join(dir, 'udhcpc.env');
    const script = join(dir, 'udhcpc.script');
    // udhcpc's hook, as a distribution's default.script would: say the event, configure the address.
    writeFileSync(script, `#!/bin/sh\necho "$1 ip=$ip subnet=$subnet lease=$lease serverid=$serverid router=$router" >> ${envFile}\ncase "$1" in bound|renew) ip addr replace "$ip/24" dev "$interface" ;; deconfig) ip addr flush dev "$interface" ;; esac\nexit 0\n`);
    chmodSync(script, 0o755);
    laptop = pair.spawn(pair.peer, ['busybox', 'udhcpc', '-i', 'vs', '-f', '-R', '-t', '5', '-s', script]);
    const events = (): string => (existsSync(envFile) ? readFileSync(envFile, 'utf8') : '');
    await until(() => /^bound /m.test(events()), `udhcpc's bound event:\n${events()}`, 30000);
    assert.match(events(), /^bound ip=192\.168\.7\.2 subnet=255\.255\.255\.0 lease=3600 serverid=192\.168\.7\.1 router=$/m, 'no router offered: the cable is not a way out');
    assert.match(laptopAddr(), /inet 192\.168\.7\.2\/24/);
    assert.deepEqual(Object.keys(await leases()), [mac]);
    assert.equal((await leases())[mac]!.address, '192.168.7.2');
    // SIGUSR1: renew now (a unicast REQUEST to the board).
    laptop.kill('SIGUSR1');
    await until(() => /^renew ip=192\.168\.7\.2 /m.test(events()), `udhcpc's renew:\n${events()}`, 15000);
    const said = board.events.filter((e) => e.type === 'log' && String(e.msg).includes(`to ${mac} over the USB cable`));
    assert.equal(said.length, 1, 'the lease said once on the console, not again at the renewal');
    // -R: SIGTERM releases the lease before exiting.
    await stopChild(laptop);
    await released(mac, 'udhcpc');
  });

  it('dhcpcd: leased .2 (the released address, again), the address and the subnet route configured by dhcpcd itself; RELEASE on SIGALRM', async () => {
    pair.run(pair.peer, 'ip', 'addr', 'flush', 'dev', 'vs');
    const mac = pair.mac(pair.peer);
    // dhcpcd keeps its lease file in /var/lib/dhcpcd: a tmpfs there, in this namespace's own mount namespace.
    laptop = pair.spawn(pair.peer, ['unshare', '-m', 'sh', '-c', 'mkdir -p /var/lib/dhcpcd && mount -t tmpfs tmpfs /var/lib/dhcpcd && exec dhcpcd -B -4 -d --noarp -t 20 -f /dev/null -c /bin/true vs']);
    let log = '';
    laptop.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    laptop.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    await until(() => /leased 192\.168\.7\.2 for 3600 seconds/.test(log), `dhcpcd's lease:\n${log}`, 30000);
    assert.match(log, /acknowledged 192\.168\.7\.2 from 192\.168\.7\.1/);
    await until(() => /inet 192\.168\.7\.2\/24/.test(laptopAddr()), `the address on the laptop's interface:\n${log}`, 10000);
    assert.match(pair.run(pair.peer, 'ip', '-4', 'route', 'show', 'dev', 'vs'), /192\.168\.7\.0\/24/);
    assert.doesNotMatch(pair.run(pair.peer, 'ip', '-4', 'route', 'show'), /default/, 'no router offered');
    assert.equal((await leases())[mac]!.address, '192.168.7.2');
    laptop.kill('SIGALRM');
    await until(() => laptop!.exitCode !== null || laptop!.signalCode !== null, `dhcpcd to exit:\n${log}`, 15000);
    assert.match(log, /releasing lease of 192\.168\.7\.2/);
    await released(mac, log);
  });
});
