/**
 * Pass 1 of a flash: read the whole source and prove it matches its bmap and .sha256 before
 * any card is touched. What fits in memory is kept, so the card is written from what was checked.
 */
import { createHash, type Hash } from 'node:crypto';
import { FlashError } from '../src/errors.js';
import { fileReadAt, type ReadAt } from '../src/fat/index.js';
import { fatPartitionOf } from '../src/layout/index.js';
import { pieceReader, walkMapped, type Piece, type Range } from './pieces.js';
import type { StreamLimit } from './plan.js';
import { phaseReporter, type FlashProgress } from './progress.js';
import type { Source } from './source.js';

const MiB = 1 << 20;
/** Mapped bytes up to this size are held in memory between checking and writing. */
export const HOLD_LIMIT = 512 * MiB;

/** A source that passed the check: its size, its ranges with their digests, and its data when it was kept. */
export interface CheckedImage {
  source: Source;
  /** Bytes of the (decompressed) image. */
  size: number;
  /** The digest algorithm of the ranges (the bmap's checksum type, else sha256). */
  algorithm: string;
  /** The bmap's ranges, or one range over the whole image, each with its digest. */
  ranges: Required<Range>[];
  mappedBytes: number;
  /** The mapped data, when it fitted in `holdBytes`. */
  held?: Piece[];
  /** The MBR and the boot partition's mapped bytes (for customisation) when the data was not kept. */
  boot?: Piece[];
  /** How far a decompressed stream may be read when it is read again. */
  limit?: StreamLimit;
}

/** Options of {@link checkImage}. */
export interface CheckOptions {
  /** Stop a decompressed stream here (see planFlash). */
  limit?: StreamLimit;
  /** Keep the MBR and the boot partition of a compressed image that is not held, for customisation. */
  keepBoot?: boolean;
  /** Mapped bytes kept in memory; default 512 MiB. */
  holdBytes?: number;
  onProgress?: (p: FlashProgress) => void;
}

/**
 * Read the source once, hashing what it maps: the bmap's range checksums, the .sha256 of
 * the image (or of the compressed file), and the image size a bmap promises. Any mismatch
 * is an error (EBMAP_CHECKSUM, ECHECKSUM, EBMAP, ESOURCE) thrown before anything is written.
 */
export async function checkImage(src: Source, o: CheckOptions = {}): Promise<CheckedImage> {
  const ranges = src.bmap?.ranges;
  const algorithm = src.bmap?.checksumType ?? 'sha256';
  const holdBytes = o.holdBytes ?? HOLD_LIMIT;
  const total = src.compression === 'none' && src.bmap && !src.sha256 ? src.bmap.mappedBytes : (src.size ?? 0);
  const report = phaseReporter('checking', total, o.onProgress);
  const hashes: Hash[] = [];
  let held: Piece[] | undefined = (src.bmap?.mappedBytes ?? src.size ?? Infinity) <= holdBytes ? [] : undefined;
  let heldBytes = 0;
  const digest = src.sha256;
  const whole = digest ? createHash('sha256') : undefined;
  // A .sha256 of a compressed file is of its bytes as stored; otherwise of the image.
  const ofFile = digest?.of === 'file' && src.compression !== 'none';
  const rangeHashes: string[] = [];
  let boot: { start: number; end: number } | undefined;
  const bootPieces: Piece[] = [];
  const keepBootOf = Boolean(o.keepBoot) && src.compression !== 'none';
  let done = 0;
  // A raw image with a bmap only needs its mapped ranges read; otherwise read it all.
  const walkRanges = whole ? undefined : ranges;
  const size = await walkMapped(
    src,
    walkRanges,
    (ri, offset, data) => {
      if (!ofFile) whole?.update(data);
      done += data.length;
      if (keepBootOf && !boot && offset === 0 && data.length >= 512) {
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
        if (heldBytes > holdBytes) {
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
  const checkedRanges = ranges ? ranges.map((r, i) => ({ start: r.start, end: r.end, digest: rangeHashes[i]! })) : [{ start: 0, end: size, digest: rangeHashes[0]! }];
  return {
    source: src,
    size,
    algorithm,
    ranges: checkedRanges,
    mappedBytes: checkedRanges.reduce((n, r) => n + r.end - r.start, 0),
    ...(held ? { held } : {}),
    ...(keepBootOf && !held ? { boot: bootPieces } : {}),
    ...(o.limit ? { limit: o.limit } : {}),
  };
}

/** The checked image's bytes, for planning customisation: held data, the kept boot partition, or the raw file. */
export function checkedReader(c: CheckedImage): ReadAt {
  if (c.held) return pieceReader(c.held, c.size);
  if (c.boot) return pieceReader(c.boot, c.size);
  return fileReadAt(c.source.path);
}
