/**
 * The board's mDNS responder: answers worked out from a query (pure), and the responder on
 * loopback asked by dig as a legacy unicast querier (RFC 6762 6.7). Nothing is sent to the
 * multicast group in tests: the socket binds 127.0.0.1 with multicast off.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { interfaceAddresses, mdnsAnswers, startMdns } from '../../src/runtime/mdns.js';

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(r));
  return port;
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
