/**
 * The refusals of a flash, decided before anything is read or written: a pure function of
 * the targets as the drive scan resolved them and of what the source says about itself.
 */
import { FlashError } from '../src/errors.js';
import type { Drive } from './drives.js';
import type { Source } from './source.js';

/** Drives larger than this need `allowLarge` (no SD card is). */
export const LARGE_DRIVE_BYTES = 128e9;

/** A target as {@link resolveTarget} gives it: a drive from the scan, or a regular file. */
export type ResolvedTarget = Drive | { device: string; file: true; size: number };

/** A target the plan accepted. */
export interface FlashTarget {
  device: string;
  /** A regular file (only with `forceFile`): no size limit, no exclusive open, no unmount. */
  file: boolean;
  /** Bytes it holds. */
  size: number;
  drive?: Drive;
}

/** Where reading a decompressed stream must stop: more bytes than this is the error `error` makes. */
export interface StreamLimit {
  bytes: number;
  error: (pos: number) => FlashError;
}

/** What may be written where. */
export interface FlashPlan {
  targets: FlashTarget[];
  /** A decompressed stream is never read past the bmap's image size or the smallest target. */
  limit: StreamLimit;
}

/** What the plan needs of a source: its size when known, and its bmap. */
export type SourceFacts = Pick<Source, 'path' | 'size' | 'bmap' | 'bmapPath'>;

/** ETOO_SMALL for a target that cannot hold `need` bytes. */
export function tooSmall(t: FlashTarget, need: number): FlashError {
  return new FlashError('ETOO_SMALL', `${t.device} holds ${t.size} bytes but the image needs ${need === Infinity ? 'more' : need}: use a larger card; nothing was written`, t.device);
}

/**
 * Accept the targets or refuse with the first reason: no target (ENO_DEVICE), a file without
 * `forceFile` (ENOT_BLOCK), a system drive (ESYSTEM_DRIVE), a read-only one (EREAD_ONLY), one
 * over 128 GB without `allowLarge` (ELARGE_DRIVE), one given twice (ENO_DEVICE), or one
 * smaller than an image whose size is known up front (ETOO_SMALL).
 */
export function planFlash(src: SourceFacts, resolved: ResolvedTarget[], o: { forceFile?: boolean; allowLarge?: boolean } = {}): FlashPlan {
  if (resolved.length === 0) throw new FlashError('ENO_DEVICE', 'no target device given: run nodeos-bsp drives, then pass --device');
  const targets = resolved.map((r): FlashTarget => {
    if ('file' in r) {
      if (!o.forceFile) throw new FlashError('ENOT_BLOCK', `${r.device} is not a block device: pass --force-file to write an image file`, r.device);
      return { device: r.device, file: true, size: Number.MAX_SAFE_INTEGER };
    }
    if (r.isSystem) throw new FlashError('ESYSTEM_DRIVE', `${r.device} is a system drive (${r.systemReasons.join('; ')}): refusing to write it`, r.device);
    if (r.readOnly) throw new FlashError('EREAD_ONLY', `${r.device} is read-only (write-protect switch on the card or adapter?)`, r.device);
    if (r.size > LARGE_DRIVE_BYTES && !o.allowLarge) throw new FlashError('ELARGE_DRIVE', `${r.device} is ${(r.size / 1e9).toFixed(0)} GB, larger than any SD card you likely meant: pass --allow-large if it is the right drive`, r.device);
    return { device: r.device, file: false, size: r.size, drive: r };
  });
  if (new Set(targets.map((t) => t.device)).size !== targets.length) throw new FlashError('ENO_DEVICE', 'the same device is given twice');
  // Sizes known up front (a raw image, or a bmap's image size) are checked before reading anything.
  if (src.size !== undefined) for (const t of targets) if (t.size < src.size) throw tooSmall(t, src.size);
  const smallest = targets.reduce((m, t) => (t.size < m.size ? t : m));
  const limit: StreamLimit =
    src.bmap && src.bmap.imageSize <= smallest.size
      ? { bytes: src.bmap.imageSize, error: (n) => new FlashError('EBMAP', `${src.path} decompresses to more than the ${src.bmap!.imageSize} bytes ${src.bmapPath} describes (at least ${n}): wrong bmap for this image; nothing was written`) }
      : { bytes: smallest.size, error: () => tooSmall(smallest, Infinity) };
  return { targets, limit };
}
