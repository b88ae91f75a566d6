/**
 * The clock sources against servers the test runs on the host's loopback: an SNTP server
 * whose clock is an hour ahead (and ones that misbehave), and an HTTP server's Date header.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { certificateProblem, clockFloor, httpDate, ntpServer, readNtpTime, sntpQuery, sntpRequest, SntpError, writeNtpTime } from '../../src/net/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

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
    // The server's own word ends the query; a reply that does not answer ours (another
    // originate time, not a server's mode) is dropped, and the query waits on to its timeout.
    const cases: [(b: Buffer) => void, string, RegExp][] = [
      [(b) => ((b[1] = 0), b.write('RATE', 12, 'latin1')), 'ESNTP_KOD', /kiss-o'-death "RATE"/],
      [(b) => ((b[1] = 0), b.write('X\n\x1b\0', 12, 'latin1')), 'ESNTP_KOD', /kiss-o'-death "X\\n\\x1b"/],
      [(b) => (b[0] = (3 << 6) | (4 << 3) | 4), 'ESNTP_UNSYNCED', /not synchronised/],
      // chrony's and ntpd's normal answer before they are synchronised: leap 3, stratum 0, no kiss code.
      [(b) => ((b[0] = (3 << 6) | (4 << 3) | 4), (b[1] = 0), b.fill(0, 12, 16)), 'ESNTP_UNSYNCED', /not synchronised/],
      [(b) => b.writeUInt32BE(1, 28), 'ESNTP_TIMEOUT', /1 datagram\(s\) that were not its answer dropped/],
      [(b) => (b[0] = (4 << 3) | 3), 'ESNTP_TIMEOUT', /dropped/],
    ];
    for (const [spoil, c, message] of cases) {
      const s = await sntpServer(0, spoil);
      try {
        await assert.rejects(sntpQuery('127.0.0.1', { port: s.port, timeoutMs: 500 }), (e: unknown) => code(c)(e) && message.test((e as Error).message) && !(e as Error).message.includes('\0'), c);
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

  it('junk first, and a copy of the answer from another port, are dropped: the real answer still sets the time', async () => {
    const forger = createSocket('udp4');
    await new Promise<void>((r) => forger.bind(0, '127.0.0.1', r));
    const s = await sntpServer(HOUR);
    const realSend = s.sock.send.bind(s.sock) as (b: Buffer, port: number, address: string) => void;
    // Before each answer: a datagram of junk from the server's port, and the answer shifted a day from another port.
    (s.sock as unknown as { send: typeof realSend }).send = (b, port, address) => {
      realSend(Buffer.from('not ntp at all'), port, address);
      const forged = Buffer.from(b);
      writeNtpTime(forged, 32, Date.now() + 24 * HOUR);
      writeNtpTime(forged, 40, Date.now() + 24 * HOUR);
      forger.send(forged, port, address);
      setTimeout(() => realSend(b, port, address), 50);
    };
    try {
      const r = await sntpQuery('127.0.0.1', { port: s.port });
      assert.ok(Math.abs(r.offsetMs - HOUR) < 100, `offset ${r.offsetMs}`);
    } finally {
      s.sock.close();
      forger.close();
    }
  });

  it('the originate time carries random low bits; nodeos.ntp= takes host, host:port and [v6]:port', () => {
    const a = sntpRequest(1_700_000_000_000, () => Buffer.from([1, 2, 3]));
    assert.deepEqual([...a.subarray(45, 48)], [1, 2, 3]);
    assert.ok(Math.abs(readNtpTime(a, 40) - 1_700_000_000_000) < 4, 'under 4 ms from the time');
    assert.notDeepEqual(sntpRequest(0).subarray(40, 48), sntpRequest(0).subarray(40, 48));
    assert.deepEqual(ntpServer('10.0.2.2'), { host: '10.0.2.2', port: 123 });
    assert.deepEqual(ntpServer('127.0.0.1:10123'), { host: '127.0.0.1', port: 10123 });
    assert.deepEqual(ntpServer('[fd00::1]:123'), { host: 'fd00::1', port: 123 });
    assert.deepEqual(ntpServer('time.example'), { host: 'time.example', port: 123 });
    for (const bad of ['a:99999', 'a:b', 'a b', '']) assert.equal(ntpServer(bad), undefined, bad);
  });

  it("an HTTPS Date counts only from a trusted certificate for that name, inside the certificate's dates", () => {
    const cert = { subject: { CN: 'time.test' }, subjectaltname: 'DNS:time.test', valid_from: 'Jan  1 00:00:00 2026 GMT', valid_to: 'Jan  1 00:00:00 2027 GMT' };
    const sock = (authorizationError: string | null) => ({ authorized: authorizationError === null, authorizationError: authorizationError as never, getPeerCertificate: () => cert as never });
    const inside = Date.UTC(2026, 5, 1);
    assert.equal(certificateProblem(sock(null), 'time.test', inside), undefined);
    // A board still at its build time sees a valid certificate as not yet valid: the dates are judged by the server's time.
    assert.equal(certificateProblem(sock('CERT_NOT_YET_VALID'), 'time.test', inside), undefined);
    assert.match(certificateProblem(sock('CERT_HAS_EXPIRED'), 'time.test', Date.UTC(2030, 0, 1))!, /outside its certificate's validity/);
    assert.match(certificateProblem(sock('DEPTH_ZERO_SELF_SIGNED_CERT'), 'time.test', inside)!, /not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
    assert.match(certificateProblem(sock('CERT_HAS_EXPIRED'), 'evil.test', inside)!, /not for evil\.test/);
  });

  it('a self-signed HTTPS server (openssl) is not a time source', async function () {
    this.timeout(20000);
    const dir = tempDir();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const server = createHttpsServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (_req, res) => res.writeHead(200, { date: new Date(Date.now() + 2 * HOUR).toUTCString() }).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await assert.rejects(httpDate(`https://127.0.0.1:${(server.address() as AddressInfo).port}/`), (e: unknown) => code('ESNTP_REPLY')(e) && /not trusted/.test((e as Error).message));
    } finally {
      server.close();
      cleanupTemp();
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
