/**
 * The board's clock source: SNTP (RFC 4330) over UDP, an HTTP `Date` header as the fallback
 * (for networks where only TCP reaches out, e.g. QEMU's restricted user networking), and the
 * floor every clock starts from: never earlier than the image's build time.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import { logText } from './log-text.js';

/** Seconds between 1900 (NTP's era 0) and 1970. */
const NTP_UNIX = 2208988800;

/** What one SNTP exchange says about the local clock. */
export interface ClockSample {
  /** Milliseconds to add to the local clock. */
  offsetMs: number;
  /** Round-trip delay in milliseconds (0 for an HTTP Date). */
  delayMs: number;
  stratum: number;
  /** Where the time came from, e.g. `ntp 10.0.2.2:123`. */
  source: string;
}

/** Why an SNTP reply is not used (RFC 4330 section 5). */
export class SntpError extends Error {
  constructor(
    readonly code: 'ESNTP_TIMEOUT' | 'ESNTP_REPLY' | 'ESNTP_KOD' | 'ESNTP_UNSYNCED',
    message: string,
  ) {
    super(message);
  }
}

/** Write a time (ms since 1970) as a 64-bit NTP timestamp at `at`. */
export function writeNtpTime(b: Buffer, at: number, ms: number): void {
  const secs = Math.floor(ms / 1000);
  b.writeUInt32BE((secs + NTP_UNIX) >>> 0, at);
  b.writeUInt32BE(Math.floor(((ms - secs * 1000) / 1000) * 0x100000000) >>> 0, at + 4);
}

/** Read a 64-bit NTP timestamp at `at` as ms since 1970 (era 0; times after 2036 wrap to era 1). */
export function readNtpTime(b: Buffer, at: number): number {
  let secs = b.readUInt32BE(at);
  // Era 1 starts in 2036: a value before 1970's means after the wrap.
  if (secs < 0x83aa7e80) secs += 0x100000000;
  return (secs - NTP_UNIX) * 1000 + (b.readUInt32BE(at + 4) / 0x100000000) * 1000;
}

/**
 * A client request: version 4, mode 3, with our transmit time (the server echoes it as
 * "originate"). Its low 24 bits (under 4 ms) are random, as RFC 4330 section 3 suggests: a
 * reply must echo them, which one who did not see the request cannot guess.
 */
export function sntpRequest(nowMs: number, random: (n: number) => Buffer = randomBytes): Buffer {
  const b = Buffer.alloc(48);
  b[0] = (0 << 6) | (4 << 3) | 3;
  writeNtpTime(b, 40, nowMs);
  const r = random(3);
  b[45] = r[0]!;
  b[46] = r[1]!;
  b[47] = r[2]!;
  return b;
}

/**
 * Check a server's reply to the request sent at `t1` and received at `t4` (ms), and compute
 * the clock offset and delay: RFC 4330's ((T2 - T1) + (T3 - T4)) / 2 and (T4 - T1) - (T3 - T2).
 */
export function parseSntpReply(reply: Buffer, request: Buffer, t4: number, source: string, sentAt?: number): ClockSample {
  if (reply.length < 48) throw new SntpError('ESNTP_REPLY', `${source}: a ${reply.length}-byte reply is not NTP`);
  const li = reply[0]! >> 6;
  const mode = reply[0]! & 7;
  const stratum = reply[1]!;
  if (mode !== 4 && mode !== 5) throw new SntpError('ESNTP_REPLY', `${source}: mode ${mode} is not a server reply`);
  if (!reply.subarray(24, 32).equals(request.subarray(40, 48))) throw new SntpError('ESNTP_REPLY', `${source}: the reply does not answer our request (originate time differs)`);
  // A server that is not synchronised says so with leap 3 (stratum 0 or 16): not a kiss-o'-death.
  if (li === 3 || stratum > 15) throw new SntpError('ESNTP_UNSYNCED', `${source}: the server's own clock is not synchronised`);
  if (stratum === 0) throw new SntpError('ESNTP_KOD', `${source}: kiss-o'-death "${logText(reply.toString('latin1', 12, 16).replace(/\0+$/, ''), 8)}": try another server later`);
  if (reply.readUInt32BE(40) === 0 && reply.readUInt32BE(44) === 0) throw new SntpError('ESNTP_REPLY', `${source}: no transmit time`);
  // T1 is when we sent (the request's own time carries random low bits).
  const t1 = sentAt ?? readNtpTime(request, 40);
  const t2 = readNtpTime(reply, 32);
  const t3 = readNtpTime(reply, 40);
  return { offsetMs: (t2 - t1 + (t3 - t4)) / 2, delayMs: t4 - t1 - (t3 - t2), stratum, source };
}

/** `host`, `host:port` or `[v6]:port` as nodeos.ntp= and the lease name servers. */
export function ntpServer(spec: string): { host: string; port: number } | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(spec) ?? /^([^:\s]+)(?::(\d{1,5}))?$/.exec(spec);
  if (!m) return isIP(spec) === 6 ? { host: spec, port: 123 } : undefined;
  const port = m[2] ? Number(m[2]) : 123;
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

/**
 * Ask one SNTP server; `now` is the local clock (ms). Only a datagram from the address and
 * port asked, echoing our random originate time, is an answer: anything else (a forgery, a
 * stray or junk datagram) is dropped and the wait goes on.
 */
export async function sntpQuery(host: string, o: { port?: number; timeoutMs?: number; now?: () => number } = {}): Promise<ClockSample> {
  const port = o.port ?? 123;
  const now = o.now ?? Date.now;
  const source = `ntp ${host}:${port}`;
  let address: string;
  let family: number;
  try {
    ({ address, family } = isIP(host) ? { address: host, family: isIP(host) } : await lookup(host));
  } catch (err) {
    throw new SntpError('ESNTP_TIMEOUT', `${source}: ${(err as Error).message}`);
  }
  return new Promise((resolve, reject) => {
    const sock = createSocket(family === 6 ? 'udp6' : 'udp4');
    const sentAt = now();
    const req = sntpRequest(sentAt);
    let dropped = 0;
    const done = (fn: () => void): void => {
      clearTimeout(timer);
      sock.close();
      fn();
    };
    const timer = setTimeout(() => done(() => reject(new SntpError('ESNTP_TIMEOUT', `${source}: no answer in ${o.timeoutMs ?? 3000} ms${dropped ? ` (${dropped} datagram(s) that were not its answer dropped)` : ''}`))), o.timeoutMs ?? 3000);
    sock.on('message', (msg, rinfo) => {
      if (rinfo.address !== address || rinfo.port !== port) return void dropped++;
      try {
        const s = parseSntpReply(msg, req, now(), source, sentAt);
        done(() => resolve(s));
      } catch (err) {
        // The server's own word (kiss-o'-death, not synchronised) ends the query; junk does not.
        if (err instanceof SntpError && err.code === 'ESNTP_REPLY') return void dropped++;
        done(() => reject(err));
      }
    });
    sock.on('error', (err) => done(() => reject(new SntpError('ESNTP_TIMEOUT', `${source}: ${err.message}`))));
    sock.send(req, port, address);
  });
}

/** The time an HTTP(S) server's `Date` header gives (second resolution), from a HEAD request. */
export function httpDate(url: string, o: { timeoutMs?: number; now?: () => number } = {}): Promise<ClockSample> {
  const now = o.now ?? Date.now;
  const get = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const t1 = now();
    // A clock that is wrong cannot judge a certificate's dates, so TLS is asked to let those
    // (and only those) through: the chain and the host name are checked here, and the time the
    // server gives must lie inside its certificate's validity.
    const https = url.startsWith('https:');
    const req = get(url, { method: 'HEAD', timeout: o.timeoutMs ?? 5000, ...(https ? { rejectUnauthorized: false } : {}) }, (res) => {
      res.resume();
      const t4 = now();
      const date = Date.parse(res.headers.date ?? '');
      if (Number.isNaN(date)) return reject(new SntpError('ESNTP_REPLY', `${url}: no Date header`));
      if (https) {
        const problem = certificateProblem(res.socket as TLSSocket, new URL(url).hostname, date);
        if (problem) return reject(new SntpError('ESNTP_REPLY', `${url}: ${problem}; its Date is not used`));
      }
      // The server's second started somewhere in the round trip: take its middle, plus half a second.
      resolve({ offsetMs: date + 500 - (t1 + t4) / 2, delayMs: t4 - t1, stratum: 16, source: `http ${url}` });
    });
    req.on('timeout', () => req.destroy(new SntpError('ESNTP_TIMEOUT', `${url}: no answer`)));
    req.on('error', (e) => reject(e instanceof SntpError ? e : new SntpError('ESNTP_TIMEOUT', `${url}: ${e.message}`)));
    req.end();
  });
}

/** Certificate errors that only say the local clock disagrees with the certificate's dates. */
const TIME_ERRORS = new Set(['CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED']);

/**
 * Why a TLS connection's certificate cannot vouch for a server's time (undefined when it can):
 * a chain that does not verify for a reason other than time, a name that does not match, or a
 * time outside the certificate's validity.
 */
export function certificateProblem(socket: Pick<TLSSocket, 'authorized' | 'authorizationError' | 'getPeerCertificate'>, hostname: string, serverTime: number): string | undefined {
  const err = socket.authorizationError as unknown as string | Error | null | undefined;
  const code = typeof err === 'string' ? err : ((err as { code?: string } | null | undefined)?.code ?? err?.message);
  if (!socket.authorized && code && !TIME_ERRORS.has(code)) return `its certificate is not trusted (${code})`;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.valid_from) return 'it showed no certificate';
  const name = checkServerIdentity(hostname, cert);
  if (name) return `its certificate is not for ${hostname}`;
  const from = Date.parse(cert.valid_from);
  const to = Date.parse(cert.valid_to);
  if (!(serverTime >= from && serverTime <= to)) return `its time ${new Date(serverTime).toISOString()} is outside its certificate's validity`;
  return undefined;
}

/** The clock floor: a board without an RTC starts in 1970; never run earlier than the image's build. */
export function clockFloor(nowMs: number, buildEpochSeconds: number): number {
  return Math.max(nowMs, buildEpochSeconds * 1000);
}
