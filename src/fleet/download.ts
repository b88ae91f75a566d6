/**
 * A board's download of an update bundle for a fleet job: into a `.partial` file that a cut
 * connection (or a reboot) leaves in place, resumed with an HTTP Range request from where it
 * stopped, checked against the job's SHA-256 and size before it is renamed into place. A
 * server that ignores the Range is read again from the start. Device-safe: Node's built-ins
 * only (the board's runtime bundles this file).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { BspError } from '../errors.js';

export interface ResumableDownload {
  url: string;
  /** Where the whole, checked file goes; `<file>.partial` holds what came so far. */
  file: string;
  sha256: string;
  /** Expected size, when the job says it (a larger body is cut off and refused). */
  size?: number;
  /** Tries (each resuming) before giving up. Default 5. */
  attempts?: number;
  /** Wait between tries (ms). Default 2000. */
  retryMs?: number;
  /** A connection that sends nothing this long is dropped (and the download resumed). Default 60 s. */
  idleMs?: number;
  onPercent?: (percent: number) => void;
  /** A CA for https servers with a private CA (default: Node's). */
  ca?: Buffer;
}

/** The SHA-256 of what a file holds so far. */
function hashFile(path: string): { hash: ReturnType<typeof createHash>; size: number } {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(1 << 20);
  let size = 0;
  try {
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) {
      hash.update(buf.subarray(0, n));
      size += n;
    }
  } finally {
    closeSync(fd);
  }
  return { hash, size };
}

function request(url: string, from: number, o: ResumableDownload): Promise<IncomingMessage> {
  const get = url.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(url, { headers: from > 0 ? { range: `bytes=${from}-` } : {}, ...(o.ca ? { ca: o.ca } : {}), timeout: o.idleMs ?? 60_000 }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${new URL(url).host} in ${Math.round((o.idleMs ?? 60_000) / 1000)} s`)));
    req.on('error', reject);
  });
}

/** One try: append what the server sends to the partial file. Resolves when the body ended (complete or not). */
async function once(o: ResumableDownload, partial: string, state: { hash: ReturnType<typeof createHash>; size: number }): Promise<void> {
  const res = await request(o.url, state.size, o);
  if (state.size > 0 && res.statusCode === 200) {
    // The server ignored the Range: start again from its first byte.
    state.hash = createHash('sha256');
    state.size = 0;
    closeSync(openSync(partial, 'w'));
  } else if (res.statusCode === 416 && state.size > 0) {
    res.resume();
    return; // Nothing more to send: what we have is judged by its hash.
  } else if (res.statusCode !== 200 && res.statusCode !== 206) {
    res.resume();
    throw new BspError('EFLEET_DOWNLOAD', `${o.url}: HTTP ${res.statusCode}`);
  }
  const fd = openSync(partial, 'a');
  try {
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: Buffer) => {
        if (o.size !== undefined && state.size + chunk.length > o.size) {
          reject(new BspError('EFLEET_DOWNLOAD', `${o.url} is larger than the ${o.size} bytes the job says`));
          return void res.destroy();
        }
        writeSync(fd, chunk);
        state.hash.update(chunk);
        state.size += chunk.length;
        if (o.size) o.onPercent?.((state.size * 100) / o.size);
      });
      res.on('end', resolve);
      res.on('aborted', resolve);
      res.on('error', resolve);
      res.on('close', resolve);
    });
  } finally {
    closeSync(fd);
  }
}

/**
 * Download `o.url` to `o.file`, resuming across cut connections and across calls (a reboot
 * in the middle keeps the partial file); EFLEET_DOWNLOAD when it cannot, EFLEET_CHECKSUM when
 * the whole file is not what the job says (the partial file is then deleted: the next try
 * starts over).
 */
export async function downloadResumable(o: ResumableDownload): Promise<{ file: string; size: number; resumedFrom: number }> {
  const partial = `${o.file}.partial`;
  if (!existsSync(partial)) closeSync(openSync(partial, 'w'));
  const state = hashFile(partial);
  const resumedFrom = state.size;
  const attempts = o.attempts ?? 5;
  let last: Error | undefined;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, o.retryMs ?? 2000));
    try {
      await once(o, partial, state);
    } catch (err) {
      // A refusal that another try would only repeat ends it: a 4xx (but 408, 429), a body too large.
      const m = (err as Error).message;
      if ((err as BspError).code === 'EFLEET_DOWNLOAD' && (/larger than/.test(m) || (/HTTP 4\d\d/.test(m) && !/HTTP 4(?:08|29)/.test(m)))) {
        if (/larger than/.test(m)) unlinkSync(partial);
        throw err;
      }
      last = err as Error;
      continue;
    }
    last = undefined;
    if (o.size === undefined || state.size >= o.size) break;
    last = new Error('the connection ended before the whole file came');
  }
  if (last) throw new BspError('EFLEET_DOWNLOAD', `${o.url}: ${last.message}; ${state.size}${o.size !== undefined ? ` of ${o.size}` : ''} bytes after ${attempts} tries (kept: the next try resumes)`, { cause: last });
  const sha = state.hash.digest('hex');
  if (sha !== o.sha256) {
    unlinkSync(partial);
    throw new BspError('EFLEET_CHECKSUM', `${o.url}: its SHA-256 is ${sha}, the job says ${o.sha256}: not installed`);
  }
  renameSync(partial, o.file);
  return { file: o.file, size: statSync(o.file).size, resumedFrom };
}
