/**
 * The board's DHCP client, as init wires it (test/helpers/netns-dhcp-client.ts), against real
 * servers from Debian in network namespaces this test makes (a veth pair, private addresses
 * that never leave them; removed afterwards):
 *  - dnsmasq: DORA with a 30-day lease, the server's lease file, INIT-REBOOT after the server
 *    moved to another subnet (its NAK, the broadcast route put back, a new address), RELEASE
 *    seen in the lease file;
 *  - kea: renew (unicast), rebind (broadcast at T2 after an unanswered renew), expiry (the
 *    address taken off) and recovery when the server is back, RELEASE in kea's lease file —
 *    on kea's real timers (a 12 s lease), and the RELEASE in kea's lease file.
 * Root only (namespaces), as CI runs.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netnsPair, startBoardHelper, stopChild, type BoardHelper, type NetnsPair } from '../helpers/netns.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { isRoot, requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';

type Ev = Record<string, unknown> & { lease?: { address: string; leaseSeconds: number; t1: number; t2: number; server: string }; renewed?: boolean; state?: string };

const seen = (h: BoardHelper, pred: (e: Ev) => boolean, what: string, ms = 30000): Promise<void> => until(() => h.events.some((e) => pred(e as Ev)), `${what}; events: ${JSON.stringify(h.events)}`, ms);
const noErrors = (h: BoardHelper): void => assert.deepEqual(h.events.filter((e) => 'error' in e || 'fault' in e || e.type === 'helper-exit'), [], 'every ip command and handler worked');
const addrs = (pair: NetnsPair): string => pair.run(pair.board, 'ip', '-4', 'addr', 'show', 'vc');

describe('interop: the DHCP client against dnsmasq (network namespaces)', function () {
  this.timeout(90000);
  let dir: string;
  let pair: NetnsPair;
  let dnsmasq: ChildProcess | undefined;
  let client: BoardHelper | undefined;

  const startDnsmasq = (net: string): void => {
    dnsmasq = pair.spawn(pair.peer, ['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=vs', '--bind-interfaces', '--dhcp-authoritative', `--dhcp-range=${net}.50,${net}.60,30d`, `--dhcp-leasefile=${join(dir, 'leases')}`, `--pid-file=${join(dir, 'pid')}`, '--log-dhcp']);
  };

  before(function () {
    if (!isRoot()) this.skip(); // network namespaces need root (CI runs as root)
    requireTool('dnsmasq', ['--version'], 'dnsmasq-base');
    dir = tempDir();
    pair = netnsPair('10.77.0.1/24');
    startDnsmasq('10.77.0');
  });

  after(async () => {
    await stopChild(client?.child);
    await stopChild(dnsmasq);
    pair?.remove();
    cleanupTemp();
  });

  const leases = (): string => (existsSync(join(dir, 'leases')) ? readFileSync(join(dir, 'leases'), 'utf8') : '');

  it('DORA with a 30-day lease; after the server moves to another subnet, its NAK and a new address; RELEASE empties its lease file', async () => {
    client = startBoardHelper(pair, './netns-dhcp-client.ts', ['vc']);
    const c = client;
    const mac = pair.mac(pair.board);

    await seen(c, (e) => e.type === 'bound', 'bound by dnsmasq');
    const first = c.events.find((e) => e.type === 'bound') as Ev;
    assert.match(first.lease!.address, /^10\.77\.0\.(5\d|60)$/);
    assert.deepEqual([first.lease!.leaseSeconds, first.lease!.t1, first.lease!.server], [30 * 86400, 15 * 86400, '10.77.0.1']);
    await until(() => leases().includes(mac), "the lease in dnsmasq's file", 10000);
    assert.match(addrs(pair), new RegExp(`inet ${first.lease!.address.replace(/\./g, '\\.')}/24`));

    // The server moves to 10.88.0.0/24; the cable comes back: INIT-REBOOT, NAK, DISCOVER again.
    await stopChild(dnsmasq);
    pair.run(pair.peer, 'ip', 'addr', 'flush', 'dev', 'vs');
    pair.run(pair.peer, 'ip', 'addr', 'add', '10.88.0.1/24', 'dev', 'vs');
    startDnsmasq('10.88.0');
    await new Promise((r) => setTimeout(r, 500));
    c.say('linkup');
    await seen(c, (e) => e.type === 'nak', "dnsmasq's NAK");
    await seen(c, (e) => e.type === 'bound' && /^10\.88\.0\./.test(e.lease!.address), 'a new address after the NAK');
    noErrors(c);

    c.say('stop');
    await seen(c, (e) => e.type === 'released', 'the RELEASE');
    await until(() => !leases().includes(mac), "the lease gone from dnsmasq's file", 10000);
  });
});

describe('interop: the DHCP client against kea on its real timers (network namespaces)', function () {
  this.timeout(120000);
  let dir: string;
  let pair: NetnsPair;
  let kea: ChildProcess | undefined;
  let client: BoardHelper | undefined;
  let keaLog = '';

  const startKea = async (): Promise<void> => {
    kea = pair.spawn(pair.peer, ['kea-dhcp4', '-c', join(dir, 'kea.json')], { env: { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir } });
    const k = kea;
    let out = '';
    k.stdout!.on('data', (d: Buffer) => ((out += d.toString()), (keaLog += d.toString())));
    k.stderr!.on('data', (d: Buffer) => (keaLog += d.toString()));
    await until(() => out.includes('DHCP4_STARTED') || k.exitCode !== null, 'kea to start', 15000);
    assert.ok(out.includes('DHCP4_STARTED') && !out.includes('DHCPSRV_OPEN_SOCKET_FAIL'), `kea did not start:\n${keaLog}`);
  };

  before(function () {
    if (!isRoot()) this.skip();
    requireTool('kea-dhcp4', ['-v'], 'kea-dhcp4-server');
    dir = tempDir();
    pair = netnsPair('10.99.0.1/24');
    // A 12 s lease, T1 4 s, T2 8 s: every timer of the client runs for real within the test.
    writeFileSync(join(dir, 'kea.json'), JSON.stringify({
      Dhcp4: {
        'interfaces-config': { interfaces: ['vs'], 'dhcp-socket-type': 'raw' },
        'lease-database': { type: 'memfile', persist: true, name: join(dir, 'leases4.csv'), 'lfc-interval': 0 },
        'valid-lifetime': 12,
        'renew-timer': 4,
        'rebind-timer': 8,
        subnet4: [{ id: 1, subnet: '10.99.0.0/24', pools: [{ pool: '10.99.0.50 - 10.99.0.60' }] }],
        loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'INFO' }],
      },
    }));
  });

  after(async () => {
    await stopChild(client?.child);
    await stopChild(kea);
    pair?.remove();
    cleanupTemp();
  });

  it('bound; renewed by unicast at T1; rebound by broadcast at T2 when the renew went unanswered; expiry takes the address off; back when kea is; RELEASE in its lease file', async () => {
    await startKea();
    client = startBoardHelper(pair, './netns-dhcp-client.ts', ['vc']);
    const c = client;
    const bounds = (): Ev[] => c.events.filter((e) => e.type === 'bound') as Ev[];

    await seen(c, (e) => e.type === 'bound', 'bound by kea', 20000);
    const lease = bounds()[0]!.lease!;
    assert.match(lease.address, /^10\.99\.0\.(5\d|60)$/);
    assert.deepEqual([lease.leaseSeconds, lease.t1, lease.t2, lease.server], [12, 4, 8, '10.99.0.1']);
    assert.ok(readFileSync(join(dir, 'leases4.csv'), 'utf8').includes(lease.address), "the lease in kea's file");

    // T1: RENEWING, unicast to kea, answered: the same address, renewed.
    await seen(c, (e) => e.type === 'bound' && e.renewed === true, 'the renewal at T1', 15000);
    const renew = bounds()[1]!;
    assert.equal(renew.lease!.address, lease.address);
    const t0 = bounds()[0]!.at as number;
    assert.ok((renew.at as number) - t0 > 3000 && (renew.at as number) - t0 < 7000, `renewed ${(renew.at as number) - t0} ms after the bind (T1 is 4 s)`);

    // kea away over the next T1: the unicast renew is lost; back before T2: the broadcast at T2 is answered.
    await stopChild(kea);
    const n = c.events.length;
    await seen(c, (e) => c.events.indexOf(e) >= n && e.type === 'state' && e.state === 'renewing', 'RENEWING at the next T1', 15000);
    await startKea();
    await seen(c, (e) => c.events.indexOf(e) >= n && e.type === 'bound', 'the rebind at T2', 15000);
    const after = c.events.slice(n);
    const states = after.filter((e) => e.type === 'state').map((e) => e.state);
    assert.deepEqual(states.slice(0, 3), ['renewing', 'rebinding', 'bound'], JSON.stringify(after));
    const rebound = after.find((e) => e.type === 'bound') as Ev;
    assert.equal(rebound.renewed, true);
    assert.equal(rebound.lease!.address, lease.address);
    assert.ok(!after.some((e) => e.type === 'expired'), 'the lease never lapsed');

    // kea gone for good: RENEWING, REBINDING, then the lease ends and its address goes.
    await stopChild(kea);
    const m = c.events.length;
    await seen(c, (e) => c.events.indexOf(e) >= m && e.type === 'expired', 'the expiry', 20000);
    const expiredAt = (c.events.slice(m).find((e) => e.type === 'expired') as Ev).at as number;
    assert.ok(expiredAt - (rebound.at as number) > 10000, `expired ${expiredAt - (rebound.at as number)} ms after the last ACK (the lease is 12 s)`);
    assert.doesNotMatch(addrs(pair), /inet 10\.99\.0\./, 'the address is off the interface');
    // Recovery: DISCOVER goes on (the broadcast route is put back), and kea answers again.
    await startKea();
    await seen(c, (e) => c.events.indexOf(e) >= m && e.type === 'bound' && e.renewed === false, 'a new lease after the expiry', 30000);
    assert.match(addrs(pair), /inet 10\.99\.0\.(5\d|60)\/24/);
    noErrors(c);

    c.say('stop');
    await seen(c, (e) => e.type === 'released', 'the RELEASE');
    await until(() => /DHCP4_RELEASE/.test(keaLog), `kea to log the RELEASE:\n${keaLog}`, 10000);
    // memfile writes a deleted lease as a last line for the address with valid_lifetime 0.
    const lines = readFileSync(join(dir, 'leases4.csv'), 'utf8').trim().split('\n').filter((l) => l.startsWith(`${lease.address},`));
    assert.equal(lines.at(-1)!.split(',')[3], '0', `the RELEASE in kea's lease file:\n${lines.join('\n')}`);
  });
});
