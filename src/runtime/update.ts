/**
 * Updating the running board: `board.system.update(pathOrUrl)` installs a signed bundle into
 * the slot that is not running (src/update/install.ts), through the kernel's view of the card:
 * the slot's partition device, and /boot (remounted read-write just for each write).
 */
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createWriteStream, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { replaceFileAtomically } from '../atomic-file.js';
import { BspError } from '../errors.js';
import { readFullyAt } from '../fat/index.js';
import { otherSlot, parseLayout, readSlots, slotVersion, systemPartition, type ImageLayout, type Slot } from '../layout/index.js';
import { installBundle, parseTrustedKeys, TRUSTED_KEYS_PATH, type InstallResult, type InstallStep, type SlotTarget } from '../update/index.js';
import { busybox, withWritableMount } from './busybox.js';
import { envFiles, readEnvFiles, updateEnvFiles } from './env-files.js';
import { diskOf } from './usersfs.js';
import { runningSlot } from './system-slot.js';

/**
 * What an update touches on the board, one seam so the real install path runs in unit tests
 * over a folder (test/runtime/update.test.ts); {@link LINUX_UPDATE_HOST} is the board's.
 */
export interface UpdateHost {
  /** The filesystem root /proc, /boot, /dev, /etc and /home are found under: `/` on the board. */
  root: string;
  /** Run `fn` with the mount at `path` writable (the boot partition is mounted read-only). */
  writable<T>(path: string, fn: () => T): T;
  /** Drop a block device's cached pages, so a read-back reads the card; an error text or undefined. */
  flushBuffers(device: string): string | undefined;
}

/** The board's: remounts and blockdev from busybox. */
export const LINUX_UPDATE_HOST: UpdateHost = {
  root: '/',
  writable: withWritableMount,
  flushBuffers: (device) => busybox(['blockdev', '--flushbufs', device]),
};

/** The device /boot is mounted from. */
function bootDevice(mounts: string): string {
  const line = mounts.split('\n').find((l) => l.split(' ')[1] === '/boot');
  if (!line) throw new BspError('EUPDATE', '/boot is not mounted: this system did not find its card, so it cannot update it');
  return line.split(' ')[0]!;
}

/** The running board's card as an install target. */
export function boardTarget(host: UpdateHost = LINUX_UPDATE_HOST): { target: SlotTarget; running: Slot } {
  const at = (p: string): string => join(host.root, p);
  const boot = at('/boot');
  const running = runningSlot(readFileSync(at('/proc/cmdline'), 'utf8'));
  if (!running) throw new BspError('EUPDATE', 'this system was not started from a slot (a direct boot?): update the card with nodeos-bsp update instead');
  const layout: ImageLayout = parseLayout(readFileSync(join(boot, 'layout.json'), 'utf8'), '/boot/layout.json');
  const files = envFiles(boot, layout.env.file, layout.env.backup, layout.env.size);
  const st = readSlots(readEnvFiles(files).vars);
  if (!st.slots[running].confirmed) throw new BspError('EUPDATE_UNCONFIRMED', `slot ${running} (this system) is not confirmed yet: an update now could leave no known-good system; wait for init to confirm it`);
  const disk = diskOf(bootDevice(readFileSync(at('/proc/mounts'), 'utf8')));
  const slotDevice = (s: Slot): string => at(disk.part(systemPartition(layout, s).number));
  const fds = new Map<Slot, number>();
  const fd = (s: Slot): number => {
    let f = fds.get(s);
    if (f === undefined) fds.set(s, (f = openSync(slotDevice(s), 'r+')));
    return f;
  };
  const rw = <T>(fn: () => T): T => host.writable(boot, fn);
  const keys = at(`/${TRUSTED_KEYS_PATH}`);
  // The running system's version: the environment's record, else its own image.json (a card from before versions).
  const runningVersion = (): number | undefined => {
    const v = slotVersion(readEnvFiles(files).vars, running);
    if (v !== undefined) return v;
    try {
      const e = (JSON.parse(readFileSync(at('/etc/nodeos/image.json'), 'utf8')) as { buildEpoch?: unknown }).buildEpoch;
      return typeof e === 'number' && Number.isSafeInteger(e) ? e : undefined;
    } catch {
      return undefined;
    }
  };
  const target: SlotTarget = {
    layout,
    runningVersion,
    trustedKeys: () => (existsSync(keys) ? parseTrustedKeys(readFileSync(keys, 'utf8')) : []),
    readEnv: () => new Map(readEnvFiles(files).vars),
    writeEnv: (vars) => void updateEnvFiles(files, () => vars, rw),
    writeSystem: (s, offset, data) => {
      if (s === running) throw new BspError('EUPDATE', 'refusing to write the running slot');
      let done = 0;
      while (done < data.length) done += writeSync(fd(s), data, done, data.length - done, offset + done);
    },
    readSystem: (s, offset, length) => readFullyAt(fd(s), offset, length),
    syncSystem: (s) => fsyncSync(fd(s)),
    writeBootFile: (path, data) =>
      rw(() => {
        const p = join(boot, path);
        mkdirSync(dirname(p), { recursive: true });
        replaceFileAtomically(p, data);
      }),
    readBootFile: (path) => readFileSync(join(boot, path)),
  };
  return {
    target: {
      ...target,
      syncSystem: (s) => {
        target.syncSystem(s);
        closeSync(fd(s));
        fds.delete(s);
        // Drop the partition's cached pages, so that the read-back that follows reads the card.
        const err = host.flushBuffers(slotDevice(s));
        if (err) throw new BspError('EUPDATE', `cannot drop the cache of ${slotDevice(s)} to read slot ${s} back from the card: ${err}; slot ${s} is left empty`);
      },
    },
    running,
  };
}

/** Where a downloaded or uploaded bundle waits: the users' partition when there is one (a bundle is tens of MB; /tmp is RAM). */
function stagingFile(root: string): string {
  const dir = join(root, existsSync(join(root, '/home/.nodeos')) ? '/home/.cache/nodeos' : '/tmp');
  mkdirSync(dir, { recursive: true });
  return join(dir, 'incoming.nodeos-update');
}

/** A download that receives nothing for this long is given up (a server or link that stalled). */
export const DOWNLOAD_STALL_MS = 60_000;

/**
 * Fetch `url` into `path`. Nothing received for `stallMs` (before the headers or between two
 * chunks) ends it with EUPDATE_DOWNLOAD, as do an HTTP error, a refused connection and a body
 * shorter than its Content-Length: a stalled download never holds the update for ever, and
 * nothing has been written to the other slot yet.
 */
async function download(url: string, path: string, stallMs: number): Promise<void> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), stallMs);
  let got = 0;
  let total: number | undefined;
  const fail = (why: string, cause?: unknown): BspError =>
    new BspError('EUPDATE_DOWNLOAD', `${url}: ${why}; nothing was written to the other slot: check the server and the network, then run the update again`, cause ? { cause } : undefined);
  let out: WriteStream | undefined;
  try {
    const res = await fetch(url, { signal: ac.signal });
    if (!res.ok || !res.body) throw fail(`HTTP ${res.status}`);
    const length = Number(res.headers.get('content-length'));
    if (Number.isSafeInteger(length) && length > 0) total = length;
    const watch = new Transform({
      transform(chunk: Buffer, _enc, done) {
        timer.refresh();
        got += chunk.length;
        done(null, chunk);
      },
    });
    out = createWriteStream(path);
    await pipeline(Readable.fromWeb(res.body as never), watch, out);
    if (total !== undefined && got !== total) throw fail(`the server sent ${got} of ${total} bytes`);
  } catch (err) {
    // The file is opened asynchronously: let it close before the caller removes it, or the open lands after the removal.
    const file = out;
    if (file && !file.closed) await new Promise<void>((r) => file.once('close', () => r()));
    if (err instanceof BspError) throw err;
    if (ac.signal.aborted) throw fail(`nothing received for ${stallMs >= 1000 ? `${Math.round(stallMs / 1000)} s` : `${stallMs} ms`} (${got}${total ? ` of ${total}` : ''} bytes in)`, err);
    throw fail(`the download failed (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`, err);
  } finally {
    clearTimeout(timer);
  }
}

/** What board.system.update() takes: a bundle file, an http(s) URL (downloaded first), or a stream of the bundle (SSH upload). */
export type UpdateSource = string | Readable;

/** Install a bundle into the other slot. */
export async function updateBoard(source: UpdateSource, log: (m: string) => void = () => undefined, host: UpdateHost = LINUX_UPDATE_HOST, o: { allowDowngrade?: boolean; stallMs?: number } = {}): Promise<InstallResult> {
  const { target, running } = boardTarget(host);
  let path = typeof source === 'string' ? source : '';
  let staged: string | undefined;
  const label = typeof source === 'string' ? source : 'the uploaded bundle';
  try {
    if (typeof source !== 'string') {
      staged = path = stagingFile(host.root);
      log('receiving the bundle');
      // pipe, not pipeline: the source may be an SSH channel that still carries the answer.
      const out = createWriteStream(path);
      await new Promise<void>((resolve, reject) => {
        source.once('error', reject);
        out.once('error', reject);
        out.once('finish', resolve);
        source.pipe(out);
      });
    } else if (/^https?:\/\//.test(source)) {
      staged = path = stagingFile(host.root);
      log(`downloading ${source}`);
      await download(source, path, o.stallMs ?? DOWNLOAD_STALL_MS);
    }
    const f = openSync(path, 'r');
    try {
      return await installBundle((p, n) => readFullyAt(f, p, n), fstatSync(f).size, label, target, otherSlot(running), (s: InstallStep) => log(`${s}...`), o);
    } finally {
      closeSync(f);
    }
  } finally {
    if (staged) rmSync(staged, { force: true });
  }
}
