/**
 * Every listener init runs, on loopback, fed malformed and hostile datagrams (random bytes,
 * truncations and bit flips of valid messages, absurd counts, replies to someone else), and
 * still answering afterwards. A throw that escaped a handler would end this process (mocha
 * reports it): on the board it would have ended init.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { createRequire } from 'node:module';
import { DhcpClient, DhcpServer, decodeDhcp, encodeDhcp, Opt, opt, udpTransport, type DhcpMessage } from '../../src/net/index.js';
import { startMdns } from '../../src/runtime/mdns.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { blast, hostile } from '../helpers/hostile.js';
import { freeUdpPort } from '../helpers/udp.js';
import { until } from '../helpers/until.js';

const require = createRequire(import.meta.url);
const dnsPacket = require('dns-packet') as { encode(p: unknown): Buffer };

const MAC = '02:00:00:00:00:42';

describe('hostile datagrams to every listener init runs (loopback)', function () {
  this.timeout(60000);

  it('the mDNS responder: 4000 hostile queries, then it still answers dig', async () => {
    const port = await freeUdpPort();
    const faults: unknown[] = [];
    const r = await startMdns({ hostname: 'kitchen', addresses: () => ({ v4: ['10.0.2.15'], v6: [] }), probe: false, log: () => undefined, onFault: (e) => faults.push(e), socket: { multicast: false, port, bind: '127.0.0.1', ip: '127.0.0.1' } });
    try {
      const valid = [
        dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'kitchen.local' }] }),
        dnsPacket.encode({ type: 'query', id: 2, questions: Array.from({ length: 40 }, () => ({ type: 'ANY', name: 'kitchen.local' })) }),
        dnsPacket.encode({ type: 'response', id: 3, answers: [{ type: 'A', name: 'kitchen.local', data: '192.168.1.9' }] }),
      ];
      await blast(port, hostile(valid, 4000, 1));
      // The flood came from 127.0.0.1, as dig does: a new second, past the per-asker limit.
      await new Promise((r) => setTimeout(r, 1100));
      const answer = await new Promise<string>((resolve) => {
        const p = spawn('dig', ['@127.0.0.1', '-p', String(port), 'kitchen.local', 'A', '+short', '+tries=2', '+time=1']);
        let o = '';
        p.stdout.on('data', (d: Buffer) => (o += d.toString()));
        p.on('close', () => resolve(o.trim()));
      });
      assert.equal(answer, '10.0.2.15');
      assert.deepEqual(faults, [], 'nothing even reached the fault handler');
    } finally {
      await r.stop();
    }
  });

  it("the gadget's DHCP server: 4000 hostile requests, then a DISCOVER still gets its OFFER", async () => {
    const port = await freeUdpPort();
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    const transport = await udpTransport({ local: { address: '127.0.0.1', port }, servers: { address: '127.0.0.1', port: client.address().port } });
    const faults: unknown[] = [];
    const server = new DhcpServer({ transport, serverIp: '192.168.7.1', prefix: 24, pool: { first: '192.168.7.2', last: '192.168.7.20' }, onFault: (e) => faults.push(e) });
    const got: DhcpMessage[] = [];
    client.on('message', (b) => {
      const m = decodeDhcp(b);
      if (m) got.push(m);
    });
    try {
      const discover = encodeDhcp({ op: 1, xid: 77, chaddr: MAC, type: 'DISCOVER', broadcast: true, options: new Map() });
      const request = encodeDhcp({ op: 1, xid: 78, chaddr: MAC, type: 'REQUEST', broadcast: true, options: new Map([[Opt.REQUESTED_IP, opt.fromIps(['192.168.7.2'])], [Opt.SERVER_ID, opt.fromIps(['192.168.7.1'])]]) });
      await blast(port, hostile([discover, request], 4000, 2));
      got.length = 0;
      client.send(discover, port, '127.0.0.1');
      await until(() => got.some((m) => m.type === 'OFFER' && m.xid === 77), 'the OFFER');
      assert.deepEqual(faults, []);
      // Hostile clients cannot take more than the pool.
      assert.ok(server.leases.size <= 19);
    } finally {
      server.close();
      client.close();
    }
  });

  it('the DHCP client: 4000 hostile replies while it asks, then it binds with the real server', async () => {
    const clock = new FakeClock();
    const server: Socket = createSocket('udp4');
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    let answer = false;
    let clientPort = 0;
    const seen: DhcpMessage[] = [];
    server.on('message', (b, rinfo) => {
      const m = decodeDhcp(b)!;
      seen.push(m);
      clientPort = rinfo.port;
      if (!answer) return;
      const options = new Map([[Opt.SERVER_ID, opt.fromIps(['127.0.0.1'])], [Opt.LEASE_TIME, opt.fromU32(600)], [Opt.DOMAIN, Buffer.from('lan')]]);
      server.send(encodeDhcp({ op: 2, xid: m.xid, chaddr: m.chaddr, type: m.type === 'DISCOVER' ? 'OFFER' : 'ACK', yiaddr: '10.0.2.15', options }), rinfo.port, rinfo.address);
    });
    const transport = await udpTransport({ local: { address: '127.0.0.1', port: 0 }, servers: { address: '127.0.0.1', port: server.address().port } });
    const faults: unknown[] = [];
    const client = new DhcpClient({ mac: MAC, transport, clock, onBound: () => undefined, onExpired: () => undefined, onFault: (e) => faults.push(e) });
    try {
      client.start();
      await until(() => seen.length > 0, 'the DISCOVER');
      const xid = seen[0]!.xid;
      // Replies to this very transaction, mangled, and others' replies.
      const offer = encodeDhcp({ op: 2, xid, chaddr: MAC, type: 'OFFER', yiaddr: '10.0.2.99', options: new Map([[Opt.SERVER_ID, opt.fromIps(['127.0.0.9'])], [Opt.LEASE_TIME, opt.fromU32(0xfffffffe)], [Opt.DOMAIN, Buffer.from('x\nnameserver 6.6.6.6')]]) });
      const nak = encodeDhcp({ op: 2, xid, chaddr: MAC, type: 'NAK', options: new Map([[Opt.MESSAGE, Buffer.from('\x1b[2J\nroot logged in')]]) });
      await blast(clientPort, hostile([offer, nak], 4000, 3));
      assert.deepEqual(faults, []);
      // Whatever state the hostile replies left it in, the real server's answers bind it.
      answer = true;
      for (let i = 0; i < 20 && client.state !== 'bound'; i++) {
        clock.advance(70_000);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(client.state, 'bound');
      assert.equal(client.lease?.address, '10.0.2.15');
    } finally {
      client.stop(false);
      server.close();
    }
  });
});
