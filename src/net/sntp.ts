/**
 * The board's clock source: SNTP (RFC 4330) over UDP, an HTTP `Date` header as the fallback
 * (for networks where only TCP reaches out, e.g. QEMU's restricted user networking), and the
 * floor every clock starts from: never earlier than the image's build time.
 */
import { createSocket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

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

/** A client request: version 4, mode 3, with our transmit time (the server echoes it as "originate"). */
export function sntpRequest(nowMs: number): Buffer {
  const b = Buffer.alloc(48);
  b[0] = (0 << 6) | (4 << 3) | 3;
  writeNtpTime(b, 40, nowMs);
  return b;
}

/**
 * Check a server's reply to the request sent at `t1` and received at `t4` (ms), and compute
 * the clock offset and delay: RFC 4330's ((T2 - T1) + (T3 - T4)) / 2 and (T4 - T1) - (T3 - T2).
 */
export function parseSntpReply(reply: Buffer, request: Buffer, t4: number, source: string): ClockSample {
  if (reply.length < 48) throw new SntpError('ESNTP_REPLY', `${source}: a ${reply.length}-byte reply is not NTP`);
  const li = reply[0]! >> 6;
  const mode = reply[0]! & 7;
  const stratum = reply[1]!;
  if (mode !== 4 && mode !== 5) throw new SntpError('ESNTP_REPLY', `${source}: mode ${mode} is not a server reply`);
  if (!reply.subarray(24, 32).equals(request.subarray(40, 48))) throw new SntpError('ESNTP_REPLY', `${source}: the reply does not answer our request (originate time differs)`);
  if (stratum === 0) throw new SntpError('ESNTP_KOD', `${source}: kiss-o'-death "${reply.toString('latin1', 12, 16)}": try another server later`);
  if (li === 3 || stratum > 15) throw new SntpError('ESNTP_UNSYNCED', `${source}: the server's own clock is not synchronised`);
  if (reply.readUInt32BE(40) === 0 && reply.readUInt32BE(44) === 0) throw new SntpError('ESNTP_REPLY', `${source}: no transmit time`);
  const t1 = readNtpTime(request, 40);
  const t2 = readNtpTime(reply, 32);
  const t3 = readNtpTime(reply, 40);
  return { offsetMs: (t2 - t1 + (t3 - t4)) / 2, delayMs: t4 - t1 - (t3 - t2), stratum, source };
}

/** Ask one SNTP server; `now` is the local clock (ms). */
export function sntpQuery(host: string, o: { port?: number; timeoutMs?: number; now?: () => number } = {}): Promise<ClockSample> {
  const port = o.port ?? 123;
  const now = o.now ?? Date.now;
  const source = `ntp ${host}:${port}`;
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const req = sntpRequest(now());
    const done = (fn: () => void): void => {
      clearTimeout(timer);
      sock.close();
      fn();
    };
    const timer = setTimeout(() => done(() => reject(new SntpError('ESNTP_TIMEOUT', `${source}: no answer in ${o.timeoutMs ?? 3000} ms`))), o.timeoutMs ?? 3000);
    sock.on('message', (msg) => {
      try {
        const s = parseSntpReply(msg, req, now(), source);
        done(() => resolve(s));
      } catch (err) {
        done(() => reject(err));
      }
    });
    sock.on('error', (err) => done(() => reject(new SntpError('ESNTP_TIMEOUT', `${source}: ${err.message}`))));
    sock.send(req, port, host);
  });
}

/** The time an HTTP(S) server's `Date` header gives (second resolution), from a HEAD request. */
export function httpDate(url: string, o: { timeoutMs?: number; now?: () => number } = {}): Promise<ClockSample> {
  const now = o.now ?? Date.now;
  const get = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const t1 = now();
    // Certificates cannot be checked by a clock that is wrong: the Date header is only a floor-raising hint.
    const req = get(url, { method: 'HEAD', timeout: o.timeoutMs ?? 5000, ...(url.startsWith('https:') ? { rejectUnauthorized: false } : {}) }, (res) => {
      res.resume();
      const t4 = now();
      const date = Date.parse(res.headers.date ?? '');
      if (Number.isNaN(date)) return reject(new SntpError('ESNTP_REPLY', `${url}: no Date header`));
      // The server's second started somewhere in the round trip: take its middle, plus half a second.
      resolve({ offsetMs: date + 500 - (t1 + t4) / 2, delayMs: t4 - t1, stratum: 16, source: `http ${url}` });
    });
    req.on('timeout', () => req.destroy(new SntpError('ESNTP_TIMEOUT', `${url}: no answer`)));
    req.on('error', (e) => reject(e instanceof SntpError ? e : new SntpError('ESNTP_TIMEOUT', `${url}: ${e.message}`)));
    req.end();
  });
}

/** The clock floor: a board without an RTC starts in 1970; never run earlier than the image's build. */
export function clockFloor(nowMs: number, buildEpochSeconds: number): number {
  return Math.max(nowMs, buildEpochSeconds * 1000);
}
