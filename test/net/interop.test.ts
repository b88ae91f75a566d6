/**
 * The board's DHCP client against a real server: Debian's dnsmasq, in network namespaces
 * this test makes (a veth pair, private addresses that never leave them; removed afterwards).
 * DORA with a 30-day lease, the server's lease file, INIT-REBOOT after the server moved to
 * another subnet (its NAK, the broadcast route put back, a new address), and RELEASE seen in
 * the lease file. Root only (namespaces), as CI runs.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { isRoot } from '../helpers/tools.js';
import { until } from '../helpers/until.js';

const NS_SERVER = `nbs${process.pid}`;
const NS_CLIENT = `nbc${process.pid}`;
const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
const inNs = (ns: string, ...args: string[]): void => void execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: 'pipe' });

describe('interop: the DHCP client against dnsmasq (network namespaces)', function () {
  this.timeout(90000);
  let dir: string;
  let dnsmasq: ChildProcess | undefined;
  let client: ChildProcess | undefined;
  const events: Record<string, unknown>[] = [];

  const startDnsmasq = (net: string): void => {
    dnsmasq = spawn('ip', ['netns', 'exec', NS_SERVER, 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=vs', '--bind-interfaces', '--dhcp-authoritative', `--dhcp-range=${net}.50,${net}.60,30d`, `--dhcp-leasefile=${join(dir, 'leases')}`, `--pid-file=${join(dir, 'pid')}`, '--log-dhcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const stopDnsmasq = async (): Promise<void> => {
    if (!dnsmasq || dnsmasq.exitCode !== null) return;
    const done = new Promise((r) => dnsmasq!.once('exit', r));
    dnsmasq.kill();
    await done;
  };

  before(function () {
    if (!isRoot()) this.skip(); // network namespaces need root (CI runs as root)
    if (spawnSync('dnsmasq', ['--version']).error) throw new Error('dnsmasq is not installed: apt-get install dnsmasq-base (.ci/setup does this)');
    dir = tempDir();
    ip('netns', 'add', NS_SERVER);
    ip('netns', 'add', NS_CLIENT);
    ip('link', 'add', 'vs', 'netns', NS_SERVER, 'type', 'veth', 'peer', 'name', 'vc', 'netns', NS_CLIENT);
    inNs(NS_SERVER, 'ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'vs');
    inNs(NS_SERVER, 'ip', 'link', 'set', 'vs', 'up');
    startDnsmasq('10.77.0');
  });

  after(async () => {
    client?.kill();
    await stopDnsmasq();
    spawnSync('ip', ['netns', 'del', NS_CLIENT]);
    spawnSync('ip', ['netns', 'del', NS_SERVER]);
    cleanupTemp();
  });

  const event = (pred: (e: Record<string, unknown>) => boolean, what: string): Promise<void> => until(() => events.some(pred), what, 30000);
  const leases = (): string => (existsSync(join(dir, 'leases')) ? readFileSync(join(dir, 'leases'), 'utf8') : '');

  it('DORA with a 30-day lease; after the server moves to another subnet, its NAK and a new address; RELEASE empties its lease file', async () => {
    const helper = fileURLToPath(new URL('../helpers/netns-dhcp-client.ts', import.meta.url));
    client = spawn('ip', ['netns', 'exec', NS_CLIENT, process.execPath, '--import', 'tsx', helper, 'vc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    client.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        events.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
    });
    const mac = execFileSync('ip', ['netns', 'exec', NS_CLIENT, 'cat', '/sys/class/net/vc/address']).toString().trim();

    await event((e) => e.type === 'bound', 'bound by dnsmasq');
    const first = events.find((e) => e.type === 'bound') as { lease: { address: string; leaseSeconds: number; t1: number; server: string } };
    assert.match(first.lease.address, /^10\.77\.0\.(5\d|60)$/);
    assert.deepEqual([first.lease.leaseSeconds, first.lease.t1, first.lease.server], [30 * 86400, 15 * 86400, '10.77.0.1']);
    await until(() => leases().includes(mac), "the lease in dnsmasq's file", 10000);
    assert.match(execFileSync('ip', ['netns', 'exec', NS_CLIENT, 'ip', '-4', 'addr', 'show', 'vc']).toString(), new RegExp(`inet ${first.lease.address.replace(/\./g, '\\.')}/24`));

    // The server moves to 10.88.0.0/24; the cable comes back: INIT-REBOOT, NAK, DISCOVER again.
    await stopDnsmasq();
    inNs(NS_SERVER, 'ip', 'addr', 'flush', 'dev', 'vs');
    inNs(NS_SERVER, 'ip', 'addr', 'add', '10.88.0.1/24', 'dev', 'vs');
    startDnsmasq('10.88.0');
    await new Promise((r) => setTimeout(r, 500));
    client.stdin!.write('linkup\n');
    await event((e) => e.type === 'nak', "dnsmasq's NAK");
    await event((e) => e.type === 'bound' && /^10\.88\.0\./.test((e as { lease: { address: string } }).lease.address), 'a new address after the NAK');
    assert.deepEqual(events.filter((e) => 'error' in e || 'fault' in e), [], 'every ip command and handler worked');

    client.stdin!.write('stop\n');
    await event((e) => e.type === 'released', 'the RELEASE');
    await until(() => !leases().includes(mac), "the lease gone from dnsmasq's file", 10000);
  });

  it("SNTP against chrony (serving its own clock, -x: this machine's clock untouched): the offset of the same clock, the server's stratum", async function () {
    if (spawnSync('chronyd', ['--version']).error) throw new Error('chrony is not installed: apt-get install chrony (.ci/setup does this)');
    await stopDnsmasq();
    inNs(NS_CLIENT, 'ip', 'addr', 'add', '10.88.0.99/24', 'dev', 'vc');
    const conf = join(dir, 'chrony.conf');
    writeFileSync(conf, ['local stratum 8', 'allow 10.88.0.0/24', 'bindaddress 10.88.0.1', 'port 123', 'cmdport 0', `pidfile ${join(dir, 'chronyd.pid')}`, `driftfile ${join(dir, 'drift')}`, ''].join('\n'));
    const chrony = spawn('ip', ['netns', 'exec', NS_SERVER, 'chronyd', '-d', '-x', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const ask = (): { offsetMs?: number; stratum?: number; error?: string } => {
        const script = `import { sntpQuery } from ${JSON.stringify(fileURLToPath(new URL('../../src/net/sntp.ts', import.meta.url)))}; sntpQuery('10.88.0.1', { timeoutMs: 2000 }).then((s) => console.log(JSON.stringify(s)), (e) => console.log(JSON.stringify({ error: e.code + ' ' + e.message })));`;
        const out = execFileSync('ip', ['netns', 'exec', NS_CLIENT, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script]).toString().trim();
        return JSON.parse(out.split('\n').at(-1)!) as { offsetMs?: number; stratum?: number; error?: string };
      };
      let r = ask();
      for (let i = 0; i < 10 && r.error; i++) {
        await new Promise((res) => setTimeout(res, 1000));
        r = ask();
      }
      assert.equal(r.error, undefined, r.error);
      assert.ok(Math.abs(r.offsetMs!) < 500, `offset ${r.offsetMs} ms from the same clock`);
      assert.equal(r.stratum, 8);
    } finally {
      chrony.kill();
    }
  });
});
