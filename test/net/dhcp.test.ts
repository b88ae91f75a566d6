/**
 * The DHCP client against a DHCP server run by the test on the host's loopback (real UDP;
 * time is a fake clock the test moves): the DORA exchange, renewal, rebinding, NAK, lease
 * expiry, a server that never answers, RELEASE; and the packet codec on fixed bytes.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { DhcpClient, decodeDhcp, encodeDhcp, expireLeaseCommands, hostsFile, isDnsName, leaseFrom, logText, MAX_TIMER_MS, Opt, opt, resolvConf, systemClock, udpTransport, type DhcpEvent, type DhcpMessage, type Lease } from '../../src/net/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { until } from '../helpers/until.js';

const MAC = '52:54:00:12:34:56';

/** What the test server does with each request it gets. */
type Policy = (m: DhcpMessage) => 'offer' | 'ack' | 'nak' | 'ignore';

/** A small DHCP server on 127.0.0.1 answering one client (its port is learnt from the first packet). */
class TestServer {
  readonly got: DhcpMessage[] = [];
  policy: Policy = (m) => (m.type === 'DISCOVER' ? 'offer' : m.type === 'REQUEST' ? 'ack' : 'ignore');
  lease = 120;
  /** Change each reply before it is sent (a wrong xid, another MAC). */
  mangle: ((m: DhcpMessage) => DhcpMessage) | undefined;
  /** Send these bytes instead of a reply. */
  raw: Buffer | undefined;
  private sock!: Socket;
  port = 0;

  async start(): Promise<void> {
    this.sock = createSocket('udp4');
    this.sock.on('message', (b, rinfo) => {
      const m = decodeDhcp(b);
      if (!m) return;
      this.got.push(m);
      const what = this.policy(m);
      if (what === 'ignore') return;
      const options = new Map<number, Buffer>([
        [Opt.SERVER_ID, opt.fromIps(['127.0.0.1'])],
        [Opt.SUBNET_MASK, opt.fromIps(['255.255.255.0'])],
        [Opt.ROUTER, opt.fromIps(['10.0.2.2'])],
        [Opt.DNS, opt.fromIps(['10.0.2.3', '10.0.2.4'])],
        [Opt.DOMAIN, Buffer.from('example.test')],
        [Opt.LEASE_TIME, opt.fromU32(this.lease)],
      ]);
      if (what === 'nak') options.set(Opt.MESSAGE, Buffer.from('address not yours'));
      let reply: DhcpMessage = { op: 2, xid: m.xid, chaddr: m.chaddr, type: what === 'offer' ? 'OFFER' : what === 'ack' ? 'ACK' : 'NAK', ...(what === 'nak' ? {} : { yiaddr: '10.0.2.15' }), options };
      if (this.mangle) reply = this.mangle(reply);
      this.sock.send(this.raw ?? encodeDhcp(reply), rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    this.port = this.sock.address().port;
  }
  stop(): void {
    this.sock.close();
  }
  types(): string[] {
    return this.got.map((m) => m.type);
  }
}

/** Let UDP packets cross loopback (for "nothing happens" checks). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));


async function setup(server: TestServer, clock: FakeClock) {
  const transport = await udpTransport({ local: { address: '127.0.0.1', port: 0 }, servers: { address: '127.0.0.1', port: server.port } });
  const events: DhcpEvent[] = [];
  const applied: { bound: Lease[]; expired: Lease[] } = { bound: [], expired: [] };
  let n = 0;
  const client = new DhcpClient({
    mac: MAC,
    transport,
    clock,
    hostname: 'kitchen',
    random: () => ((n = (n * 7 + 3) % 11), n / 11),
    onBound: (l) => applied.bound.push(l),
    onExpired: (l) => applied.expired.push(l),
    onEvent: (e) => events.push(e),
  });
  return { client, events, applied };
}

describe('DHCP client against a DHCP server on loopback', () => {
  let server: TestServer;
  let clock: FakeClock;
  beforeEach(async () => {
    server = new TestServer();
    await server.start();
    clock = new FakeClock();
  });
  afterEach(() => server.stop());

  it('DISCOVER -> OFFER -> REQUEST -> ACK: bound with the address, routes, DNS and domain', async () => {
    const { client, events, applied } = await setup(server, clock);
    client.start();
    await until(() => client.state === 'bound', 'bound');
    assert.deepEqual(server.types(), ['DISCOVER', 'REQUEST']);
    const [discover, request] = server.got as [DhcpMessage, DhcpMessage];
    assert.equal(discover.chaddr, MAC);
    assert.equal(discover.broadcast, true, 'no address yet: the reply must be broadcast');
    assert.equal(opt.text(discover.options.get(Opt.HOSTNAME)), 'kitchen');
    assert.equal(opt.ip(request.options.get(Opt.REQUESTED_IP)), '10.0.2.15');
    assert.equal(opt.ip(request.options.get(Opt.SERVER_ID)), '127.0.0.1');
    assert.equal(request.xid, discover.xid);
    assert.deepEqual(applied.bound[0], { address: '10.0.2.15', prefix: 24, routers: ['10.0.2.2'], dns: ['10.0.2.3', '10.0.2.4'], domain: 'example.test', ntp: [], server: '127.0.0.1', leaseSeconds: 120, t1: 60, t2: 105 });
    assert.deepEqual(events.map((e) => e.type), ['discovering', 'bound']);
    client.stop();
    await until(() => server.types().at(-1) === 'RELEASE', 'the RELEASE');
    assert.equal(server.got.at(-1)!.ciaddr, '10.0.2.15');
  });

  it('renews at T1 by unicast; with the server silent, rebinds at T2 by broadcast; expires at the lease end', async () => {
    const { client, events, applied } = await setup(server, clock);
    client.start();
    await until(() => client.state === 'bound', 'bound');
    server.policy = () => 'ignore';
    const before = server.got.length;
    clock.advance(60_000);
    assert.equal(client.state, 'renewing');
    await until(() => server.got.length > before, 'the renewal');
    const renew = server.got.at(-1)!;
    assert.deepEqual([renew.type, renew.ciaddr, renew.broadcast], ['REQUEST', '10.0.2.15', false]);
    assert.equal(renew.options.get(Opt.REQUESTED_IP), undefined, 'RENEWING puts the address in ciaddr, not option 50');
    clock.advance(45_000);
    assert.equal(client.state, 'rebinding');
    clock.advance(15_000);
    assert.deepEqual(applied.expired.map((l) => l.address), ['10.0.2.15'], 'the address is removed at expiry');
    assert.ok(['selecting', 'init'].includes(client.state));
    assert.deepEqual(events.map((e) => e.type), ['discovering', 'bound', 'expired', 'discovering']);
    client.stop(false);
  });

  it('RENEWING retransmits after half the time left, never sooner than 60 s, and none lands on T2 beside the rebinding', async () => {
    server.lease = 1000; // T1 500 s, T2 875 s
    const { client } = await setup(server, clock);
    client.start();
    await until(() => client.state === 'bound', 'bound');
    server.policy = () => 'ignore';
    const before = server.got.length;
    const sent: { at: number }[] = [];
    const step = async (ms: number): Promise<void> => {
      const n = server.got.length;
      clock.advance(ms);
      await settle();
      for (let i = n; i < server.got.length; i++) sent.push({ at: clock.now() });
    };
    // T1 at 500 s; 375 s left: again at 687.5, then 781.25, then (93.75 s left: 60 s) 841.25; 33.75 s left: no more.
    for (const ms of [500_000, 187_500, 93_750, 60_000, 33_750]) await step(ms);
    assert.equal(client.state, 'rebinding');
    // The last is REBINDING's (to the broadcast address): one REQUEST at T2, not a renewal beside it.
    assert.deepEqual(sent.map((x) => x.at / 1000), [500, 687.5, 781.25, 841.25, 875]);
    assert.equal(server.got.length - before, 5);
    client.stop(false);
  });

  it('a renewal the server ACKs extends the lease (renewed, not re-applied from scratch)', async () => {
    const { client, events } = await setup(server, clock);
    client.start();
    await until(() => client.state === 'bound', 'bound');
    clock.advance(60_000);
    await until(() => events.filter((e) => e.type === 'bound').length === 2, 'the renewal ACK');
    assert.equal(client.state, 'bound');
    assert.deepEqual(events.filter((e) => e.type === 'bound').map((e) => (e as { renewed: boolean }).renewed), [false, true]);
    // The new lease counts from the renewal: nothing happens at the old expiry.
    clock.advance(61_000);
    await settle();
    assert.equal(events.filter((e) => e.type === 'expired').length, 0);
    client.stop(false);
  });

  it('a NAK ends the lease and starts again from DISCOVER', async () => {
    const { client, events, applied } = await setup(server, clock);
    client.start();
    await until(() => client.state === 'bound', 'bound');
    server.policy = (m) => (m.type === 'REQUEST' ? 'nak' : 'offer');
    clock.advance(60_000);
    await until(() => applied.expired.length === 1, 'the NAK');
    assert.deepEqual(applied.expired.map((l) => l.address), ['10.0.2.15']);
    const nak = events.find((e) => e.type === 'nak') as { message?: string } | undefined;
    assert.equal(nak?.message, 'address not yours');
    server.policy = (m) => (m.type === 'DISCOVER' ? 'offer' : 'ack');
    clock.advance(1_000);
    await until(() => client.state === 'bound', 'bound again');
    client.stop(false);
  });

  it('the link returns: INIT-REBOOT asks for the same address (ACK keeps it, NAK starts over); without a lease, DISCOVER at once', async () => {
    const { client, applied } = await setup(server, clock);
    client.start();
    await until(() => client.state === 'bound', 'bound');
    const n = server.got.length;
    client.linkUp();
    await until(() => server.got.length === n + 1 && client.state === 'bound', 'the lease confirmed');
    const req = server.got.at(-1)!;
    assert.equal(req.type, 'REQUEST');
    assert.equal(opt.ip(req.options.get(Opt.REQUESTED_IP)), '10.0.2.15');
    assert.equal(req.options.get(Opt.SERVER_ID), undefined, 'INIT-REBOOT names no server');
    assert.equal(req.ciaddr, undefined);
    assert.equal(applied.expired.length, 0);
    // Plugged into another network: the server refuses the old address.
    server.policy = (m) => (m.type === 'REQUEST' && m.options.has(Opt.REQUESTED_IP) && !m.options.has(Opt.SERVER_ID) ? 'nak' : m.type === 'DISCOVER' ? 'offer' : 'ack');
    client.linkUp();
    await until(() => applied.expired.length === 1, 'the NAK ends the lease');
    clock.advance(1_000);
    await until(() => client.state === 'bound' && server.types().at(-2) === 'DISCOVER', 'bound again after DISCOVER');
    client.stop(false);
    // No lease and a long backoff running: the link's return asks at once.
    const fresh = await setup(server, clock);
    server.policy = () => 'ignore';
    fresh.client.start();
    await until(() => server.types().filter((t) => t === 'DISCOVER').length >= 3, 'DISCOVERs');
    clock.advance(4_000);
    clock.advance(8_000);
    const before = server.got.length;
    server.policy = (m) => (m.type === 'DISCOVER' ? 'offer' : 'ack');
    fresh.client.linkUp();
    await until(() => fresh.client.state === 'bound', 'bound without waiting for the backoff');
    assert.equal(server.got[before]!.type, 'DISCOVER');
    fresh.client.stop(false);
  });

  it('a server that never answers: DISCOVER again with backoff (4, 8, 16 ... 64 s), said once, never given up', async () => {
    server.policy = () => 'ignore';
    const { client, events } = await setup(server, clock);
    client.start();
    const gaps: number[] = [];
    for (let i = 0; i < 8; i++) {
      await until(() => server.got.length === i + 1, `DISCOVER ${i + 1}`);
      gaps.push(clock.nextIn()!);
      clock.advance(clock.nextIn()!);
    }
    await until(() => server.got.length === 9, 'DISCOVER 9');
    assert.equal(server.types().filter((t) => t === 'DISCOVER').length, 9);
    gaps.forEach((g, i) => assert.ok(Math.abs(g - Math.min(4000 * 2 ** i, 64000)) <= 1000, `retry ${i} after ${g} ms`));
    assert.deepEqual(events.map((e) => e.type), ['discovering', 'no-answer'], 'said once, not in a loop');
    assert.equal(client.state, 'selecting');
    client.stop(false);
  });

  it('ignores replies for another transaction or another MAC, and packets that are not DHCP', async () => {
    const { client } = await setup(server, clock);
    for (const mangle of [(m: DhcpMessage): DhcpMessage => ({ ...m, xid: m.xid ^ 1 }), (m: DhcpMessage): DhcpMessage => ({ ...m, chaddr: '52:54:00:00:00:01' })]) {
      server.mangle = mangle;
      server.got.length = 0;
      if (client.state === 'init') client.start();
      else clock.advance(clock.nextIn()!);
      await until(() => server.got.length === 1, 'the DISCOVER');
      await settle();
      assert.equal(client.state, 'selecting', 'the offer was not taken');
      assert.deepEqual(server.types(), ['DISCOVER']);
    }
    server.mangle = undefined;
    server.raw = Buffer.from('not dhcp at all');
    clock.advance(clock.nextIn()!);
    await settle();
    assert.equal(client.state, 'selecting');
    assert.equal(decodeDhcp(Buffer.alloc(100)), undefined);
    server.raw = undefined;
    clock.advance(clock.nextIn()!);
    await until(() => client.state === 'bound', 'a proper answer still works');
    client.stop(false);
  });
});

describe('DHCP messages on the wire', () => {
  it('a DISCOVER is laid out as RFC 2131 says: BOOTP header, magic cookie, options, END, 300 bytes', () => {
    const b = encodeDhcp({ op: 1, xid: 0x3903f326, chaddr: '00:0b:82:01:fc:42', type: 'DISCOVER', broadcast: true, options: new Map([[Opt.PARAMS, Buffer.from([1, 3, 6, 42])], [Opt.REQUESTED_IP, opt.fromIps(['0.0.0.0'])]]) });
    assert.equal(b.length, 300);
    assert.equal(b.subarray(0, 12).toString('hex'), '010106003903f32600008000');
    assert.equal(b.subarray(28, 34).toString('hex'), '000b8201fc42');
    assert.equal(b.subarray(236, 240).toString('hex'), '63825363');
    // 53=1, then 50 (4 bytes), then 55 (4 bytes), in code order; END; zero padding.
    assert.equal(b.subarray(240, 240 + 3 + 6 + 6 + 1).toString('hex'), '350101' + '320400000000' + '37040103062a' + 'ff');
    assert.ok(b.subarray(256).every((x) => x === 0));
  });

  it('options: repeated codes are concatenated (RFC 3396); overload (52) reads the file and sname fields', () => {
    const ack = encodeDhcp({ op: 2, xid: 1, chaddr: MAC, type: 'ACK', yiaddr: '192.168.1.20', options: new Map([[Opt.SERVER_ID, opt.fromIps(['192.168.1.1'])], [Opt.OVERLOAD, Buffer.from([1])]]) });
    // Put a router option in the file field, as an overloading server would.
    Buffer.from([Opt.ROUTER, 4, 192, 168, 1, 1, Opt.END]).copy(ack, 108);
    const m = decodeDhcp(ack)!;
    assert.deepEqual(opt.ips(m.options.get(Opt.ROUTER)), ['192.168.1.1']);
    const long = Buffer.alloc(300, 0x61);
    const big = decodeDhcp(encodeDhcp({ op: 2, xid: 1, chaddr: MAC, type: 'ACK', options: new Map([[Opt.DOMAIN, long]]) }))!;
    assert.equal(big.options.get(Opt.DOMAIN)!.length, 300, 'a 300-byte value split in two and joined again');
  });

  it('a domain name from the server reaches resolv.conf and hosts only when it is a DNS name (no added lines)', () => {
    const ackWith = (domain: string): Lease => leaseFrom(decodeDhcp(encodeDhcp({ op: 2, xid: 1, chaddr: MAC, type: 'ACK', yiaddr: '10.1.2.3', options: new Map([[Opt.SERVER_ID, opt.fromIps(['10.1.0.1'])], [Opt.DNS, opt.fromIps(['10.1.0.1'])], [Opt.DOMAIN, Buffer.from(domain)]]) }))!)!;
    const evil = ackWith('lan\nnameserver 6.6.6.6\n203.0.113.9 registry');
    assert.equal(evil.domain, undefined);
    assert.deepEqual(resolvConf(evil).split('\n').filter((l) => l.startsWith('nameserver')), ['nameserver 10.1.0.1']);
    assert.equal(hostsFile('pi', 'x\n6.6.6.6 evil').split('\n').length, 4, 'hosts keeps its own lines only');
    assert.equal(ackWith('home.arpa.').domain, 'home.arpa');
    assert.match(resolvConf(ackWith('home.arpa')), /^search home\.arpa$/m);
    for (const ok of ['lan', 'my-net.example.org', '_tcp.local', 'a'.repeat(63)]) assert.equal(isDnsName(ok), true, ok);
    for (const bad of ['', '-lan', 'lan-', 'a b', 'a..b', 'a'.repeat(64), `${'a.'.repeat(127)}a`, 'caf\u00e9', 'x;rm']) assert.equal(isDnsName(bad), false, bad);
  });

  it('a NAK message and other words from the network are logged escaped and cut', () => {
    assert.equal(logText('no\nroot logged in \x1b[2J'), 'no\\nroot logged in \\x1b[2J');
    assert.equal(logText('caf\u00e9 \u2603'), 'caf\\xe9 \\u{2603}');
    assert.equal(logText('x'.repeat(500)).length, 123);
  });

  it('a lease that ends (expiry, NAK) puts the broadcast route back, or no DISCOVER could leave again', () => {
    const l: Lease = { address: '10.1.2.3', prefix: 24, routers: ['10.1.2.1'], dns: [], ntp: [], server: '10.1.2.1', leaseSeconds: 3600, t1: 1800, t2: 3150 };
    assert.deepEqual(expireLeaseCommands('eth0', l), [
      ['ip', 'route', 'del', 'default', 'via', '10.1.2.1', 'dev', 'eth0'],
      ['ip', 'addr', 'del', '10.1.2.3/24', 'dev', 'eth0'],
      ['ip', 'route', 'replace', '255.255.255.255/32', 'dev', 'eth0'],
    ]);
  });

  it('a 30-day lease: timers past 24.8 days (2^31 ms) wait, where Node alone fires them after 1 ms', async () => {
    let fired = 0;
    const h = systemClock.setTimeout(() => fired++, 30 * 86400 * 1000);
    const edge = systemClock.setTimeout(() => fired++, MAX_TIMER_MS + 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(fired, 0);
    systemClock.clearTimeout(h);
    systemClock.clearTimeout(edge);
    // Short ones still fire.
    await new Promise<void>((r) => systemClock.setTimeout(r, 5));
  });

  it('a lease: prefix from the mask, T1/T2 defaults, no server id means no lease', () => {
    const ack = decodeDhcp(encodeDhcp({ op: 2, xid: 1, chaddr: MAC, type: 'ACK', yiaddr: '10.1.2.3', options: new Map([[Opt.SERVER_ID, opt.fromIps(['10.1.0.1'])], [Opt.SUBNET_MASK, opt.fromIps(['255.255.240.0'])], [Opt.LEASE_TIME, opt.fromU32(1000)]]) }))!;
    const l = leaseFrom(ack)!;
    assert.deepEqual([l.prefix, l.t1, l.t2], [20, 500, 875]);
    const noServer = decodeDhcp(encodeDhcp({ op: 2, xid: 1, chaddr: MAC, type: 'ACK', yiaddr: '10.1.2.3', options: new Map() }))!;
    assert.equal(leaseFrom(noServer), undefined);
  });
});
