/**
 * The clock sources against servers the test runs on the host's loopback: an SNTP server
 * whose clock is an hour ahead (and ones that misbehave), and an HTTP server's Date header.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { clockFloor, httpDate, readNtpTime, sntpQuery, SntpError, writeNtpTime } from '../../src/net/index.js';

const HOUR = 3_600_000;

/** An SNTP server on 127.0.0.1; `reply` may spoil the answer. */
async function sntpServer(skewMs: number, spoil?: (b: Buffer) => void): Promise<{ port: number; sock: Socket }> {
  const sock = createSocket('udp4');
  sock.on('message', (req, rinfo) => {
    const b = Buffer.alloc(48);
    b[0] = (0 << 6) | (4 << 3) | 4; // no warning, v4, server
    b[1] = 2; // stratum
    writeNtpTime(b, 32, Date.now() + skewMs); // receive
    req.copy(b, 24, 40, 48); // originate = the client's transmit
    writeNtpTime(b, 40, Date.now() + skewMs); // transmit
    spoil?.(b);
    sock.send(b, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { port: (sock.address() as AddressInfo).port, sock };
}

const code = (c: string) => (e: unknown) => e instanceof SntpError && e.code === c;

describe('clock: SNTP and HTTP Date against servers on loopback', () => {
  it('NTP timestamps round-trip, across the 2036 era wrap', () => {
    const b = Buffer.alloc(8);
    for (const ms of [0, 1_700_000_000_123, Date.UTC(2036, 1, 7, 6, 28, 16), Date.UTC(2040, 0, 1)]) {
      writeNtpTime(b, 0, ms);
      assert.ok(Math.abs(readNtpTime(b, 0) - ms) < 1, new Date(ms).toISOString());
    }
  });

  it('an SNTP server an hour ahead: offset +1 h, small delay', async () => {
    const s = await sntpServer(HOUR);
    try {
      const r = await sntpQuery('127.0.0.1', { port: s.port });
      assert.ok(Math.abs(r.offsetMs - HOUR) < 50, `offset ${r.offsetMs}`);
      assert.ok(r.delayMs >= 0 && r.delayMs < 100);
      assert.equal(r.stratum, 2);
    } finally {
      s.sock.close();
    }
  });

  it('refuses kiss-o\'-death, an unsynchronised server, a reply to someone else, and says when no one answers', async () => {
    const cases: [(b: Buffer) => void, string][] = [
      [(b) => ((b[1] = 0), b.write('RATE', 12, 'latin1')), 'ESNTP_KOD'],
      [(b) => (b[0] = (3 << 6) | (4 << 3) | 4), 'ESNTP_UNSYNCED'],
      [(b) => b.writeUInt32BE(1, 28), 'ESNTP_REPLY'],
      [(b) => (b[0] = (4 << 3) | 3), 'ESNTP_REPLY'],
    ];
    for (const [spoil, c] of cases) {
      const s = await sntpServer(0, spoil);
      try {
        await assert.rejects(sntpQuery('127.0.0.1', { port: s.port }), code(c), c);
      } finally {
        s.sock.close();
      }
    }
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    try {
      await assert.rejects(sntpQuery('127.0.0.1', { port: (silent.address() as AddressInfo).port, timeoutMs: 200 }), code('ESNTP_TIMEOUT'));
    } finally {
      silent.close();
    }
  });

  it('an HTTP Date header two hours ahead gives +2 h to the second', async () => {
    const server = createServer((_req, res) => res.writeHead(200, { date: new Date(Date.now() + 2 * HOUR).toUTCString() }).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = await httpDate(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      assert.ok(Math.abs(r.offsetMs - 2 * HOUR) <= 1000, `offset ${r.offsetMs}`);
    } finally {
      server.close();
    }
  });

  it('the clock never starts before the image was built', () => {
    assert.equal(clockFloor(0, 1_763_000_000), 1_763_000_000_000);
    assert.equal(clockFloor(1_800_000_000_000, 1_763_000_000), 1_800_000_000_000);
  });
});
