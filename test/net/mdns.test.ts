/**
 * The board's mDNS responder: answers worked out from a query (pure), and the responder on
 * loopback asked by dig as a legacy unicast querier (RFC 6762 6.7). Nothing is sent to the
 * multicast group in tests: the socket binds 127.0.0.1 with multicast off.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { NetworkInterfaceInfo } from 'node:os';
import { claimName, interfaceAddresses, isOnLink, mdnsAnswers, replyLimiter, replyTarget, startMdns, type ProbeIo } from '../../src/runtime/mdns.js';

import { freeUdpPort } from '../helpers/udp.js';

const require = createRequire(import.meta.url);
const dnsPacket = require('dns-packet') as { encode(p: unknown): Buffer };

/** A UDP datagram to 127.0.0.1:port with source port 0, which no socket can send: a raw socket (root) forges it. */
function sendFromPortZero(port: number, payload: Buffer): void {
  const py = `import socket,struct,sys
p=bytes.fromhex(sys.argv[2])
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_UDP)
s.sendto(struct.pack('!HHHH',0,int(sys.argv[1]),8+len(p),0)+p,('127.0.0.1',0))`;
  execFileSync('python3', ['-c', py, String(port), payload.toString('hex')]);
}

describe('mDNS: <hostname>.local', () => {
  const addrs = { v4: ['10.0.2.15', '192.168.7.2'], v6: ['fd00::15'] };

  it('answers A, AAAA and ANY for its own name only, in any case, with the cache-flush bit', () => {
    assert.deepEqual(mdnsAnswers([{ name: 'Kitchen.local', type: 'A' }], 'kitchen', addrs).map((a) => [a.type, a.data]), [['A', '10.0.2.15'], ['A', '192.168.7.2']]);
    assert.deepEqual(mdnsAnswers([{ name: 'kitchen.local.', type: 'AAAA' }], 'kitchen', addrs).map((a) => a.data), ['fd00::15']);
    assert.equal(mdnsAnswers([{ name: 'kitchen.local', type: 'ANY' }], 'kitchen', addrs).length, 3);
    assert.deepEqual(mdnsAnswers([{ name: 'garden.local', type: 'A' }, { name: 'kitchen.local', type: 'TXT' }], 'kitchen', addrs), []);
    const a = mdnsAnswers([{ name: 'kitchen.local', type: 'A' }], 'kitchen', addrs)[0]!;
    assert.deepEqual([a.name, a.class, a.ttl, a.flush], ['kitchen.local', 'IN', 120, true]);
  });

  it('takes the addresses of every interface but loopback and link-local IPv6', () => {
    const got = interfaceAddresses({
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '255.0.0.0', mac: '00:00:00:00:00:00', cidr: '127.0.0.1/8' }],
      eth0: [
        { address: '10.0.2.15', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: 'b8:27:eb:00:00:01', cidr: '10.0.2.15/24' },
        { address: 'fe80::1', family: 'IPv6', internal: false, netmask: 'ffff:ffff:ffff:ffff::', mac: 'b8:27:eb:00:00:01', cidr: 'fe80::1/64', scopeid: 2 },
      ],
    });
    assert.deepEqual(got, { v4: ['10.0.2.15'], v6: [] });
  });

  it('answers the group from port 5353, the asker from another port, nobody from port 0 or from off the link (RFC 6762 6.7, 11)', () => {
    const on = (a: string): boolean => a.startsWith('192.168.7.');
    assert.deepEqual(replyTarget({ address: '192.168.7.9', port: 5353 }, on), { to: 'group' });
    assert.deepEqual(replyTarget({ address: '192.168.7.9', port: 40000 }, on), { to: 'asker', port: 40000, address: '192.168.7.9' });
    assert.deepEqual(replyTarget({ address: '192.168.7.9', port: 0 }, on), { to: 'none', why: 'source port 0' });
    assert.deepEqual(replyTarget({ address: '203.0.113.5', port: 5353 }, on), { to: 'none', why: 'off-link source 203.0.113.5' });
  });

  it("a source is on-link when it is inside one of the interfaces' subnets (IPv4 masks, IPv6 prefixes, link-local)", () => {
    const ifaces: Record<string, NetworkInterfaceInfo[]> = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '255.0.0.0', mac: '00:00:00:00:00:00', cidr: '127.0.0.1/8' }],
      eth0: [
        { address: '192.168.7.2', family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: 'b8:27:eb:00:00:01', cidr: '192.168.7.2/24' },
        { address: 'fd00:1:2:3::15', family: 'IPv6', internal: false, netmask: 'ffff:ffff:ffff:ffff::', mac: 'b8:27:eb:00:00:01', cidr: 'fd00:1:2:3::15/64', scopeid: 0 },
      ],
    };
    for (const a of ['192.168.7.200', '127.9.9.9', '::ffff:192.168.7.1', 'fd00:1:2:3:abcd::1', 'fe80::42']) assert.equal(isOnLink(a, ifaces), true, a);
    for (const a of ['192.168.8.1', '10.0.0.1', 'fd00:1:2:4::1', '2001:db8::1', 'nonsense', '300.1.1.1']) assert.equal(isOnLink(a, ifaces), false, a);
  });

  it('probes for its name first (RFC 6762 8.1): a name another host answers for is left for name-2, name-3...', async () => {
    // A network where `held` names answer with another host's address (avahi's, say).
    const net = (held: Record<string, string>): ProbeIo & { probes: string[] } => {
      const subs = new Set<(a: { name: string; type: string; data?: unknown }[]) => void>();
      const io = {
        probes: [] as string[],
        probe: (name: string) => {
          io.probes.push(name);
          const addr = held[name];
          if (addr) for (const cb of subs) cb([{ name, type: 'A', data: addr }]);
        },
        onResponse: (cb: (a: { name: string; type: string; data?: unknown }[]) => void) => (subs.add(cb), () => void subs.delete(cb)),
        sleep: async () => undefined,
      };
      return io;
    };
    const free = net({});
    assert.deepEqual(await claimName('pitest', addrs, free), { name: 'pitest', renamed: false });
    assert.deepEqual(free.probes, ['pitest.local', 'pitest.local', 'pitest.local'], 'three probes');
    const taken = net({ 'pitest.local': '192.168.7.50', 'pitest-2.local': '192.168.7.51' });
    assert.deepEqual(await claimName('pitest', addrs, taken), { name: 'pitest-3', renamed: true });
    // An answer with our own address (our own announcement echoed) is no conflict.
    assert.deepEqual(await claimName('pitest', addrs, net({ 'pitest.local': '10.0.2.15' })), { name: 'pitest', renamed: false });
    const all = Object.fromEntries(['pitest', ...[2, 3].map((n) => `pitest-${n}`)].map((n) => [`${n}.local`, '192.168.7.99']));
    await assert.rejects(claimName('pitest', addrs, net(all), 3), (e: unknown) => (e as { code?: string }).code === 'EMDNS_NAME');
  });

  it('direct answers are limited per asker and per second, and the table of askers is bounded', () => {
    let t = 1_000_000;
    const ok = replyLimiter(3, 2, () => t);
    assert.deepEqual([1, 2, 3, 4].map(() => ok('a')), [true, true, true, false]);
    assert.equal(ok('b'), true);
    assert.equal(ok('c'), false, 'a third source in the same second');
    t += 1000;
    assert.equal(ok('a'), true, 'a new second');
  });

  it('a query from UDP port 0 (forged on a raw socket) is dropped and the responder goes on answering', async function () {
    this.timeout(20000);
    if (process.getuid?.() !== 0) this.skip(); // a raw socket needs root (CI runs as root)
    const port = await freeUdpPort();
    const logs: string[] = [];
    const r = await startMdns({ hostname: 'kitchen', addresses: () => addrs, log: (m) => logs.push(m), socket: { multicast: false, port, bind: '127.0.0.1', ip: '127.0.0.1' } });
    try {
      for (let i = 0; i < 3; i++) sendFromPortZero(port, dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name: 'kitchen.local' }] }));
      await new Promise((res) => setTimeout(res, 300));
      assert.equal((await digAsync(port, 'kitchen.local', 'A')).out.split('\n').sort().join(' '), '10.0.2.15 192.168.7.2');
      assert.deepEqual(logs, []);
    } finally {
      await r.stop();
    }
  });

  it('a source off the link gets no answer', async function () {
    this.timeout(20000);
    const port = await freeUdpPort();
    const r = await startMdns({ hostname: 'kitchen', addresses: () => addrs, onLink: () => false, log: () => undefined, socket: { multicast: false, port, bind: '127.0.0.1', ip: '127.0.0.1' } });
    try {
      assert.equal((await digAsync(port, 'kitchen.local', 'A')).out.includes('10.0.2.15'), false);
    } finally {
      await r.stop();
    }
  });

  it('dig (a legacy unicast querier) gets the address back; other names get no answer', async function () {
    this.timeout(20000);
    const port = await freeUdpPort();
    const logs: string[] = [];
    const r = await startMdns({ hostname: 'kitchen', addresses: () => addrs, log: (m) => logs.push(m), socket: { multicast: false, port, bind: '127.0.0.1', ip: '127.0.0.1' } });
    try {
      const answer = await digAsync(port, 'kitchen.local', 'A');
      assert.equal(answer.out.split('\n').sort().join(' '), '10.0.2.15 192.168.7.2');
      assert.equal((await digAsync(port, 'KITCHEN.local', 'AAAA')).out, 'fd00::15');
      const none = await digAsync(port, 'garden.local', 'A');
      assert.equal(none.out.includes('10.0.2.15'), false);
      assert.deepEqual(logs, []);
    } finally {
      await r.stop();
    }
  });
});

/** dig in a child process, without blocking this process's event loop (the responder lives here). */
function digAsync(port: number, name: string, type: string): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('dig', ['@127.0.0.1', '-p', String(port), name, type, '+short', '+tries=1', '+time=1']);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', () => reject(new Error('dig is not installed: apt-get install bind9-dnsutils (.ci/setup does this)')));
    p.on('close', (status) => resolve({ status, out: out.trim() }));
  });
}
