/**
 * Writing an image to one or more cards: check the source completely before touching a
 * card, write only mapped ranges with the first MiB (partition table) last, read back and
 * compare, then apply and verify customisation.
 */
import { spawnSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { constants, type FileHandle, open } from 'node:fs/promises';
import { BspError, FlashError, VerifyError } from '../src/errors.js';
import { fileReadAt, type ReadAt } from '../src/fat/index.js';
import { fatPartitionOf } from '../src/layout/index.js';
import { customizeCard, planCustomization, validateCustomization, type Customization, type CustomizationPlan } from './customize.js';
import { listDrives, resolveTarget, type Drive, type ScanOptions } from './drives.js';
import { openSource, openStream, type Source } from './source.js';

const MiB = 1 << 20;
const HEAD = MiB;
const LARGE = 128e9;
const QUEUE_DEPTH = 4;
const CHUNK = 4 * MiB;
/** Mapped bytes up to this size are held in memory between checking and writing. */
const HOLD_LIMIT = 512 * MiB;

/** Image bytes at an offset. */
interface Piece {
  offset: number;
  data: Buffer;
}

/** Phases of a flash, in order. */
export type FlashPhase = 'checking' | 'flashing' | 'verifying' | 'customizing' | 'finished';

/** A progress event, at most every 200 ms per phase. */
export interface FlashProgress {
  phase: FlashPhase;
  done: number;
  total: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

/** Options of {@link flash}. */
export interface FlashOptions {
  /** Read back and compare after writing. Default true. */
  verify?: boolean;
  /** Allow a regular file as the target. */
  forceFile?: boolean;
  /** Allow drives larger than 128 GB. */
  allowLarge?: boolean;
  /** Mapped bytes kept in memory between checking and writing. Default 512 MiB; a larger image is read twice and re-checked as it is written. */
  holdBytes?: number;
  /** A .bmap to use, or false to ignore one next to the image. */
  bmap?: string | false;
  customize?: Customization;
  scan?: ScanOptions;
  onProgress?: (p: FlashProgress) => void;
  /** Called per target once it is finished or failed. */
  onTarget?: (r: TargetResult) => void;
}

/** Outcome for one target. */
export interface TargetResult {
  device: string;
  ok: boolean;
  error?: FlashError;
  bytesWritten: number;
  verified: boolean;
  customized: boolean;
}

/** Outcome of a flash. */
export interface FlashResult {
  source: Source;
  imageSize: number;
  mappedBytes: number;
  targets: TargetResult[];
  ms: number;
}

interface Range {
  start: number;
  end: number;
  /** The range's digest from the check pass (the bmap's checksum type, else SHA-256). */
  digest?: string;
}

interface Target {
  device: string;
  file: boolean;
  size: number;
  drive?: Drive;
  fh?: FileHandle;
  inflight: Promise<unknown>[];
  result: TargetResult;
}

/** A throttled reporter for one phase; it announces the phase at once (done = 0). */
function progress(phase: FlashPhase, total: number, cb?: (p: FlashProgress) => void): (done: number, force?: boolean) => void {
  const t0 = Date.now();
  let last = 0;
  cb?.({ phase, done: 0, total, bytesPerSecond: 0, etaSeconds: null });
  return (done, force) => {
    if (!cb) return;
    const now = Date.now();
    if (!force && now - last < 200) return;
    last = now;
    const secs = (now - t0) / 1000;
    const bps = secs > 0 ? done / secs : 0;
    cb({ phase, done, total, bytesPerSecond: bps, etaSeconds: bps > 0 ? (total - done) / bps : null });
  };
}

/** Where reading a stream must stop: more bytes than this is the error `error` makes. */
interface StreamLimit {
  bytes: number;
  error: (pos: number) => FlashError;
}

/**
 * Walk the source stream and hand each mapped piece to `onPiece`. Ranges are in bytes;
 * `onRangeEnd` is called when a range is complete. A decompressed stream is never read
 * past `limit` (the bmap's image size, or the smallest target).
 */
async function walkMapped(
  src: Source,
  ranges: Range[] | undefined,
  onPiece: (rangeIndex: number, offset: number, data: Buffer) => void | Promise<void>,
  onRangeEnd?: (rangeIndex: number) => void,
  o: { limit?: StreamLimit; onFileBytes?: (chunk: Buffer) => void } = {},
): Promise<number> {
  if (src.compression === 'none' && ranges && !o.onFileBytes) return walkRawRanges(src, ranges, onPiece, onRangeEnd);
  const { stream, finished, stop } = openStream(src, o.onFileBytes);
  let pos = 0;
  let ri = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const end = pos + chunk.length;
      if (o.limit && end > o.limit.bytes) throw o.limit.error(end);
      if (!ranges) {
        await onPiece(0, pos, chunk);
      } else {
        while (ri < ranges.length && ranges[ri]!.start < end) {
          const r = ranges[ri]!;
          const a = Math.max(r.start, pos);
          const b = Math.min(r.end, end);
          if (b > a) await onPiece(ri, a, chunk.subarray(a - pos, b - pos));
          if (r.end <= end) {
            onRangeEnd?.(ri);
            ri++;
          } else break;
        }
      }
      pos = end;
    }
    await finished;
  } catch (err) {
    stop();
    if (err instanceof FlashError) throw err;
    throw new FlashError('ESOURCE', `cannot read ${src.path}: ${(err as Error).message}`, undefined, { cause: err });
  }
  if (!ranges) onRangeEnd?.(0);
  else if (ri < ranges.length) throw new FlashError('ESOURCE', `${src.path} ends at byte ${pos}, before the bmap's range at ${ranges[ri]!.start}: truncated image`);
  return pos;
}

/**
 * Read (offset, length) jobs from a file in order, keeping a few reads in flight so the
 * disk works while the caller hashes or compares the previous piece.
 */
async function* readAhead(fh: FileHandle, jobs: { offset: number; length: number; tag: number }[], depth = 3): AsyncGenerator<{ offset: number; data: Buffer; tag: number }> {
  const queue: Promise<{ offset: number; data: Buffer; tag: number }>[] = [];
  let next = 0;
  const fill = (): void => {
    while (queue.length < depth && next < jobs.length) {
      const j = jobs[next++]!;
      queue.push(readAt(fh, j.offset, j.length).then((data) => ({ offset: j.offset, data, tag: j.tag })));
    }
  };
  fill();
  while (queue.length > 0) {
    const item = await queue.shift()!;
    fill();
    yield item;
  }
}

/** Split ranges into read jobs of at most CHUNK bytes, tagged with the range index. */
const chunkJobs = (ranges: { start: number; end: number }[]): { offset: number; length: number; tag: number }[] =>
  ranges.flatMap((r, tag) => {
    const out: { offset: number; length: number; tag: number }[] = [];
    for (let p = r.start; p < r.end; p += CHUNK) out.push({ offset: p, length: Math.min(CHUNK, r.end - p), tag });
    return out;
  });

/** A raw image with a bmap: read only the mapped ranges (holes are never read). */
async function walkRawRanges(
  src: Source,
  ranges: Range[],
  onPiece: (rangeIndex: number, offset: number, data: Buffer) => void | Promise<void>,
  onRangeEnd?: (rangeIndex: number) => void,
): Promise<number> {
  const fh = await open(src.path, 'r');
  try {
    const jobs = chunkJobs(ranges);
    for await (const { offset, data, tag } of readAhead(fh, jobs)) {
      const r = ranges[tag]!;
      if (data.length < Math.min(CHUNK, r.end - offset)) throw new FlashError('ESOURCE', `${src.path} ends inside the bmap's range at ${r.start}: truncated image`);
      await onPiece(tag, offset, data);
      if (offset + data.length >= r.end) onRangeEnd?.(tag);
    }
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

/** What the check pass learnt: the size, the range digests, and the data when it was kept. */
interface Checked {
  size: number;
  /** Per range, its digest in `algorithm`. */
  rangeHashes: string[];
  algorithm: string;
  held?: Piece[];
  /** The MBR and the boot partition's mapped bytes (for customisation) when the data was not kept. */
  boot?: Piece[];
}

/** A sparse image over pieces: reads of unmapped bytes give zeros. */
const pieceReader =
  (pieces: Piece[], size: number): ReadAt =>
  (position, length) => {
    const out = Buffer.alloc(Math.max(0, Math.min(length, size - position)));
    for (const p of pieces) {
      const a = Math.max(p.offset, position);
      const b = Math.min(p.offset + p.data.length, position + out.length);
      if (b > a) p.data.copy(out, a - position, a - p.offset, b - p.offset);
    }
    return out;
  };

/** Pass 1: prove the source is whole and matches its bmap/.sha256 before any card is touched. */
async function checkSource(src: Source, report: ReturnType<typeof progress>, o: { limit?: StreamLimit; keepBoot: boolean; holdBytes: number }): Promise<Checked> {
  const ranges = src.bmap?.ranges;
  const algorithm = src.bmap?.checksumType ?? 'sha256';
  const hashes: Hash[] = [];
  // Mapped data that fits in memory is kept, so the card is written from what was checked.
  let held: Piece[] | undefined = (src.bmap?.mappedBytes ?? src.size ?? Infinity) <= o.holdBytes ? [] : undefined;
  let heldBytes = 0;
  const digest = src.sha256;
  const whole = digest ? createHash('sha256') : undefined;
  // A .sha256 of a compressed file is of its bytes as stored; otherwise of the image.
  const ofFile = digest?.of === 'file' && src.compression !== 'none';
  const rangeHashes: string[] = [];
  let boot: { start: number; end: number } | undefined;
  const bootPieces: Piece[] = [];
  let done = 0;
  // A raw image with a bmap only needs its mapped ranges read; otherwise read it all.
  const walkRanges = whole ? undefined : ranges;
  const size = await walkMapped(
    src,
    walkRanges,
    (ri, offset, data) => {
      if (!ofFile) whole?.update(data);
      done += data.length;
      if (o.keepBoot && !boot && offset === 0 && data.length >= 512) {
        try {
          const p = fatPartitionOf(data.subarray(0, 512), src.path);
          boot = { start: p.offset, end: p.offset + p.size };
        } catch {
          boot = { start: 0, end: 0 }; // no boot partition: customisation will say so
        }
      }
      // The MBR and the boot partition's bytes, copied out of a piece (only needed once the data is not held).
      const keepBoot = (p: Piece): void => {
        if (!boot) return;
        for (const [start, end] of [[0, 512], [boot.start, boot.end]] as const) {
          const x = Math.max(p.offset, start);
          const y = Math.min(p.offset + p.data.length, end);
          if (y > x) bootPieces.push({ offset: x, data: Buffer.from(p.data.subarray(x - p.offset, y - p.offset)) });
        }
      };
      const keep = (a: number, b: number): void => {
        const piece = { offset: a, data: data.subarray(a - offset, b - offset) };
        if (!held) return keepBoot(piece);
        held.push(piece);
        heldBytes += b - a;
        if (heldBytes > o.holdBytes) {
          held.forEach(keepBoot);
          held = undefined;
        }
      };
      if (!ranges) keep(offset, offset + data.length);
      else {
        for (const r of ranges) {
          const a = Math.max(r.start, offset);
          const b = Math.min(r.end, offset + data.length);
          if (b > a) keep(a, b);
        }
      }
      report(done);
      if (!walkRanges && ranges) {
        // Whole-image read: feed range hashes from the pieces inside mapped ranges.
        for (let i = 0; i < ranges.length; i++) {
          const r = ranges[i]!;
          const a = Math.max(r.start, offset);
          const b = Math.min(r.end, offset + data.length);
          if (b > a) (hashes[i] ??= createHash(algorithm)).update(data.subarray(a - offset, b - offset));
        }
      } else (hashes[ri] ??= createHash(algorithm)).update(data);
    },
    walkRanges ? (ri) => (rangeHashes[ri] = (hashes[ri] ?? createHash(algorithm)).digest('hex')) : undefined,
    { ...(o.limit ? { limit: o.limit } : {}), ...(ofFile ? { onFileBytes: (c: Buffer) => whole!.update(c) } : {}) },
  );
  if (!walkRanges) {
    const n = ranges ? ranges.length : 1;
    for (let i = 0; i < n; i++) rangeHashes[i] = (hashes[i] ?? createHash(algorithm)).digest('hex');
  }
  report(done, true);
  if (src.bmap && src.compression !== 'none' && size !== src.bmap.imageSize) {
    throw new FlashError('EBMAP', `${src.bmapPath}: describes ${src.bmap.imageSize} bytes but ${src.path} decompresses to ${size}`);
  }
  ranges?.forEach((r, i) => {
    if (r.checksum && r.checksum !== rangeHashes[i]) {
      throw new FlashError('EBMAP_CHECKSUM', `${src.path}: bytes ${r.start}-${r.end - 1} do not match the bmap's ${algorithm} checksum; the image is corrupted (or the bmap belongs to another image): nothing was written`);
    }
  });
  if (whole && digest) {
    const actual = whole.digest('hex');
    if (actual !== digest.hex) {
      throw new FlashError('ECHECKSUM', `${src.path}: SHA-256 of ${digest.of === 'file' ? 'the file' : 'the image'} is ${actual}, but ${digest.from} says ${digest.hex}; the image is corrupted: nothing was written`);
    }
  }
  return { size, rangeHashes, algorithm, ...(held ? { held } : {}), ...(o.keepBoot && !held ? { boot: bootPieces } : {}) };
}

function unmountAll(t: Target): void {
  for (const m of t.drive?.mountpoints ?? []) {
    if (m === '[SWAP]') continue;
    const r = spawnSync('umount', [m], { encoding: 'utf8' });
    if (r.status !== 0) throw new FlashError('EMOUNTED', `${t.device}: cannot unmount ${m} (${r.stderr.trim()}); close what uses it and retry: nothing was written`, t.device);
  }
}

async function openTarget(t: Target): Promise<void> {
  try {
    // O_EXCL on a block device: fails if the kernel or anyone else holds it.
    t.fh = await open(t.device, t.file ? constants.O_RDWR : constants.O_RDWR | constants.O_EXCL);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FlashError(code === 'EBUSY' ? 'EMOUNTED' : code === 'EROFS' || code === 'EACCES' || code === 'EPERM' ? 'EREAD_ONLY' : 'EWRITE', `${t.device}: cannot open for writing: ${(err as Error).message}`, t.device, { cause: err });
  }
}

/** Drop the kernel's cached pages of a block device so read-back comes from the card. */
function flushBuffers(t: Target): void {
  if (!t.file) spawnSync('blockdev', ['--flushbufs', t.device]);
}

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Find the first differing byte of a range between the source and a target. */
async function firstDifference(src: Source, ranges: Range[] | undefined, ri: number, fh: FileHandle): Promise<number> {
  let found = -1;
  await walkMapped(src, ranges, async (i, offset, data) => {
    if (found >= 0 || i !== ri) return;
    const back = await readAt(fh, offset, data.length);
    for (let k = 0; k < data.length; k++) {
      if (back[k] !== data[k]) {
        found = offset + k;
        return;
      }
    }
  });
  return found;
}

/** Flash `image` to every device; refusals throw before anything is written. */
export async function flash(image: string, devices: string[], o: FlashOptions = {}): Promise<FlashResult> {
  const t0 = Date.now();
  if (devices.length === 0) throw new FlashError('ENO_DEVICE', 'no target device given: run nodeos-bsp drives, then pass --device');
  if (o.customize) validateCustomization(o.customize);
  const src = openSource(image, o.bmap === undefined ? {} : { bmap: o.bmap });
  const drives = listDrives(o.scan);
  const targets: Target[] = devices.map((d) => {
    // With --force-file a missing target file is created, as bmaptool does.
    if (o.forceFile && !existsSync(d)) closeSync(openSync(d, 'w'));
    const r = resolveTarget(d, drives);
    const base = { inflight: [], result: { device: r.device, ok: false, bytesWritten: 0, verified: false, customized: false } };
    if ('file' in r) {
      if (!o.forceFile) throw new FlashError('ENOT_BLOCK', `${d} is not a block device: pass --force-file to write an image file`, d);
      return { ...base, device: r.device, file: true, size: Number.MAX_SAFE_INTEGER };
    }
    if (r.isSystem) throw new FlashError('ESYSTEM_DRIVE', `${r.device} is a system drive (${r.systemReasons.join('; ')}): refusing to write it`, r.device);
    if (r.readOnly) throw new FlashError('EREAD_ONLY', `${r.device} is read-only (write-protect switch on the card or adapter?)`, r.device);
    if (r.size > LARGE && !o.allowLarge) throw new FlashError('ELARGE_DRIVE', `${r.device} is ${(r.size / 1e9).toFixed(0)} GB, larger than any SD card you likely meant: pass --allow-large if it is the right drive`, r.device);
    return { ...base, device: r.device, file: false, size: r.size, drive: r };
  });
  if (new Set(targets.map((t) => t.device)).size !== targets.length) throw new FlashError('ENO_DEVICE', 'the same device is given twice');

  // Sizes known up front (a raw image, or a bmap) are checked before reading anything.
  const tooSmall = (t: Target, need: number): FlashError =>
    new FlashError('ETOO_SMALL', `${t.device} holds ${t.size} bytes but the image needs ${need === Infinity ? 'more' : need}: use a larger card; nothing was written`, t.device);
  if (src.size !== undefined) for (const t of targets) if (t.size < src.size) throw tooSmall(t, src.size);
  // A decompressed stream is never read past the bmap's image size or the smallest target.
  const smallest = targets.reduce<Target | undefined>((m, t) => (!m || t.size < m.size ? t : m), undefined)!;
  const limit: StreamLimit =
    src.bmap && src.bmap.imageSize <= smallest.size
      ? { bytes: src.bmap.imageSize, error: (n) => new FlashError('EBMAP', `${src.path} decompresses to more than the ${src.bmap!.imageSize} bytes ${src.bmapPath} describes (at least ${n}): wrong bmap for this image; nothing was written`) }
      : { bytes: smallest.size, error: () => tooSmall(smallest, Infinity) };

  // Pass 1: the whole source, checked before any card is touched.
  const total = src.bmap?.mappedBytes ?? src.size ?? 0;
  const checkTotal = src.compression === 'none' && src.bmap && !src.sha256 ? src.bmap.mappedBytes : (src.size ?? 0);
  const wantCustom = Boolean(o.customize && Object.keys(o.customize).length > 0);
  // A compressed image too large to hold keeps its boot partition for customisation; a raw one is read again.
  const checked = await checkSource(src, progress('checking', checkTotal, o.onProgress), { limit, keepBoot: wantCustom && src.compression !== 'none', holdBytes: o.holdBytes ?? HOLD_LIMIT });
  const imageSize = checked.size;
  const ranges: Range[] = src.bmap ? src.bmap.ranges.map((r, i) => ({ ...r, digest: checked.rangeHashes[i]! })) : [{ start: 0, end: imageSize, digest: checked.rangeHashes[0]! }];
  const mappedBytes = ranges.reduce((n, r) => n + r.end - r.start, 0);
  for (const t of targets) if (t.size < imageSize) throw tooSmall(t, imageSize);
  // Customisation is worked out from the checked image now: a value that cannot be written
  // (EENV_FULL, a command line too long, no uboot.env) stops here, before any card is touched.
  let plan: CustomizationPlan | undefined;
  if (wantCustom) {
    const read: ReadAt = checked.held ? pieceReader(checked.held, imageSize) : checked.boot ? pieceReader(checked.boot, imageSize) : fileReadAt(src.path);
    plan = planCustomization(read, src.path, o.customize!);
  }
  for (const t of targets) unmountAll(t);
  try {
    for (const t of targets) await openTarget(t);
  } catch (err) {
    for (const t of targets) await t.fh?.close();
    throw err;
  }

  const fail = (t: Target, err: unknown): void => {
    if (t.result.error) return;
    // Errors keep their own code (EENV_FULL, EVERIFY...); only unexpected I/O errors become EWRITE.
    t.result.error =
      err instanceof FlashError ? err : err instanceof BspError ? new FlashError(err.code, `${t.device}: ${err.message}`, t.device, { cause: err }) : new FlashError('EWRITE', `${t.device}: ${(err as Error).message}`, t.device, { cause: err });
  };
  const live = (): Target[] => targets.filter((t) => !t.result.error);

  // Pass 2: write mapped ranges; the first MiB is held back and written last.
  const head = Buffer.alloc(Math.min(HEAD, imageSize));
  const report = progress('flashing', total || mappedBytes, o.onProgress);
  let written = 0;
  const writePiece = async (offset: number, data: Buffer): Promise<void> => {
    let piece = data;
    let at = offset;
    if (at < HEAD) {
      const n = Math.min(HEAD - at, piece.length);
      piece.copy(head, at, 0, n);
      piece = piece.subarray(n);
      at += n;
    }
    if (piece.length > 0) {
      // Stream chunks are fresh buffers, so every target can write the same one.
      for (const t of live()) {
        const p = t.fh!.write(piece, 0, piece.length, at).then(
          () => (t.result.bytesWritten += piece.length),
          (e: unknown) => fail(t, e),
        );
        t.inflight.push(p);
        if (t.inflight.length >= QUEUE_DEPTH) await t.inflight.shift();
      }
    }
    written += data.length;
    report(written);
  };
  if (checked.held) for (const p of checked.held) await writePiece(p.offset, p.data);
  else {
    // Too large to keep: the source is read again, and what is written is hashed on the way
    // and compared with the check pass, so a source changed in between never ends as "ok".
    const again: Hash[] = [];
    await walkMapped(src, src.bmap ? ranges : undefined, (ri, offset, data) => {
      (again[ri] ??= createHash(checked.algorithm)).update(data);
      return writePiece(offset, data);
    }, undefined, { limit });
    const changed = ranges.findIndex((r, i) => (again[i] ?? createHash(checked.algorithm)).digest('hex') !== r.digest);
    if (changed >= 0) {
      const e = new FlashError('ESOURCE_CHANGED', `${src.path} changed while it was being written (bytes ${ranges[changed]!.start}-${ranges[changed]!.end - 1} differ from the checked image): the card holds an unchecked image; flash it again from a file nobody writes to`);
      for (const t of live()) fail(t, new FlashError(e.code, `${t.device}: ${e.message}`, t.device));
    }
  }
  for (const t of targets) await Promise.all(t.inflight.splice(0));
  for (const t of live()) {
    try {
      const headRanges = ranges.filter((r) => r.start < HEAD);
      for (const r of headRanges) {
        const a = r.start;
        const b = Math.min(r.end, HEAD);
        await t.fh!.write(head, a, b - a, a);
        t.result.bytesWritten += b - a;
      }
      await t.fh!.datasync();
    } catch (e) {
      fail(t, e);
    }
  }
  report(written, true);

  // Pass 3: read back what was written and compare range hashes.
  if (o.verify !== false) {
    const vreport = progress('verifying', mappedBytes * live().length, o.onProgress);
    let vdone = 0;
    for (const t of live()) {
      flushBuffers(t);
      try {
        if (checked.held) {
          const pieces = checked.held;
          for await (const { data: back, tag } of readAhead(t.fh!, pieces.map((p, i) => ({ offset: p.offset, length: p.data.length, tag: i })))) {
            const p = pieces[tag]!;
            if (!back.equals(p.data)) {
              let k = 0;
              while (k < back.length && back[k] === p.data[k]) k++;
              throw new VerifyError(t.device, p.offset + k);
            }
            vdone += p.data.length;
            vreport(vdone);
          }
          t.result.verified = true;
          continue;
        }
        for (const [ri, r] of ranges.entries()) {
          const h = createHash(checked.algorithm);
          for (let p = r.start; p < r.end; p += 4 * MiB) {
            const len = Math.min(4 * MiB, r.end - p);
            h.update(await readAt(t.fh!, p, len));
            vdone += len;
            vreport(vdone);
          }
          if (h.digest('hex') !== r.digest) {
            const at = await firstDifference(src, src.bmap ? ranges : undefined, src.bmap ? ri : 0, t.fh!);
            throw new VerifyError(t.device, at >= 0 ? at : r.start);
          }
        }
        t.result.verified = true;
      } catch (e) {
        fail(t, e);
      }
    }
    vreport(vdone, true);
  }

  if (plan) {
    const creport = progress('customizing', live().length, o.onProgress);
    let n = 0;
    for (const t of live()) {
      try {
        await customizeCard(t.fh!, t.device, plan, () => flushBuffers(t));
        t.result.customized = true;
      } catch (e) {
        fail(t, e);
      }
      creport(++n, true);
    }
  }
  for (const t of targets) {
    await t.fh?.close().catch(() => undefined);
    // Let the kernel see the new partition table (best effort: loop devices without partscan refuse).
    if (!t.file && !t.result.error) spawnSync('blockdev', ['--rereadpt', t.device]);
    t.result.ok = !t.result.error;
    o.onTarget?.(t.result);
  }
  o.onProgress?.({ phase: 'finished', done: mappedBytes, total: mappedBytes, bytesPerSecond: 0, etaSeconds: 0 });
  return { source: src, imageSize, mappedBytes, targets: targets.map((t) => t.result), ms: Date.now() - t0 };
}
