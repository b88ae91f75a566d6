/**
 * Passes 2 to 4 of a flash, over destinations that stay independent: one failing card is
 * marked failed and the others go on. Write the mapped ranges with the first MiB (the
 * partition table) last, read back and compare, then write and read back customisation.
 */
import { createHash, type Hash } from 'node:crypto';
import { BspError, FlashError, VerifyError } from '../src/errors.js';
import type { CheckedImage } from './check.js';
import { customizeCard, type CustomizationPlan } from './customize.js';
import type { Destination } from './destination.js';
import { chunkJobs, readAhead, walkMapped, type Range } from './pieces.js';
import { phaseReporter, type FlashProgress } from './progress.js';

const MiB = 1 << 20;
/** The first MiB (MBR, partition table) is written last, so a card cut short does not look like a whole image. */
const HEAD = MiB;
/** Writes in flight per destination. */
const QUEUE_DEPTH = 4;

/** Outcome for one target. */
export interface TargetResult {
  device: string;
  ok: boolean;
  error?: FlashError;
  bytesWritten: number;
  verified: boolean;
  customized: boolean;
}

/** A destination and how it fares; stages skip cards that already failed. */
export interface Card {
  dest: Destination;
  result: TargetResult;
}

/** A card for a destination, nothing done yet. */
export const cardFor = (dest: Destination): Card => ({ dest, result: { device: dest.device, ok: false, bytesWritten: 0, verified: false, customized: false } });

/** Mark a card failed with its first error; codes are kept, unexpected I/O errors become EWRITE. */
export function failCard(c: Card, err: unknown): void {
  if (c.result.error) return;
  const d = c.dest.device;
  c.result.error = err instanceof FlashError ? err : err instanceof BspError ? new FlashError(err.code, `${d}: ${err.message}`, d, { cause: err }) : new FlashError('EWRITE', `${d}: ${(err as Error).message}`, d, { cause: err });
}

const live = (cards: Card[]): Card[] => cards.filter((c) => !c.result.error);

/**
 * Write the checked image's mapped ranges to every card. Held data is written from memory;
 * otherwise the source is read again and hashed on the way, and a source that changed since
 * the check fails every card with ESOURCE_CHANGED. The first MiB goes last, then a sync.
 */
export async function writeImage(img: CheckedImage, cards: Card[], o: { onProgress?: (p: FlashProgress) => void } = {}): Promise<void> {
  const src = img.source;
  const head = Buffer.alloc(Math.min(HEAD, img.size));
  const report = phaseReporter('flashing', src.bmap?.mappedBytes ?? src.size ?? img.mappedBytes, o.onProgress);
  const inflight = new Map<Card, Promise<unknown>[]>(cards.map((c) => [c, []]));
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
      // Pieces are never reused, so every card can write the same buffer.
      for (const c of live(cards)) {
        const q = inflight.get(c)!;
        q.push(
          c.dest.write(piece, at).then(
            () => (c.result.bytesWritten += piece.length),
            (e: unknown) => failCard(c, e),
          ),
        );
        if (q.length >= QUEUE_DEPTH) await q.shift();
      }
    }
    written += data.length;
    report(written);
  };
  if (img.held) for (const p of img.held) await writePiece(p.offset, p.data);
  else {
    const again: Hash[] = [];
    await walkMapped(src, src.bmap ? img.ranges : undefined, (ri, offset, data) => {
      (again[ri] ??= createHash(img.algorithm)).update(data);
      return writePiece(offset, data);
    }, undefined, img.limit ? { limit: img.limit } : {});
    const changed = img.ranges.findIndex((r, i) => (again[i] ?? createHash(img.algorithm)).digest('hex') !== r.digest);
    if (changed >= 0) {
      const r = img.ranges[changed]!;
      const msg = `${src.path} changed while it was being written (bytes ${r.start}-${r.end - 1} differ from the checked image): the card holds an unchecked image; flash it again from a file nobody writes to`;
      for (const c of live(cards)) failCard(c, new FlashError('ESOURCE_CHANGED', `${c.dest.device}: ${msg}`, c.dest.device));
    }
  }
  for (const q of inflight.values()) await Promise.all(q.splice(0));
  for (const c of live(cards)) {
    try {
      for (const r of img.ranges.filter((x) => x.start < HEAD)) {
        const end = Math.min(r.end, HEAD);
        await c.dest.write(head.subarray(r.start, end), r.start);
        c.result.bytesWritten += end - r.start;
      }
      await c.dest.sync();
    } catch (e) {
      failCard(c, e);
    }
  }
  report(written, true);
}

/** Find the first differing byte of range `ri` between the source and a card (-1: none). */
async function firstDifference(img: CheckedImage, ri: number, dest: Destination): Promise<number> {
  let found = -1;
  const src = img.source;
  await walkMapped(src, src.bmap ? img.ranges : undefined, async (i, offset, data) => {
    if (found >= 0 || i !== (src.bmap ? ri : 0)) return;
    const back = await dest.read(offset, data.length);
    for (let k = 0; k < data.length; k++) {
      if (back[k] !== data[k]) {
        found = offset + k;
        return;
      }
    }
  });
  return found;
}

/** Read every card back, its cache dropped first, and compare with the checked image: EVERIFY names the first bad offset. */
export async function verifyImage(img: CheckedImage, cards: Card[], o: { onProgress?: (p: FlashProgress) => void } = {}): Promise<void> {
  const report = phaseReporter('verifying', img.mappedBytes * live(cards).length, o.onProgress);
  let done = 0;
  for (const c of live(cards)) {
    c.dest.dropCache();
    try {
      if (img.held) {
        const pieces = img.held;
        for await (const { data: back, tag } of readAhead(c.dest.read, pieces.map((p, i) => ({ offset: p.offset, length: p.data.length, tag: i })))) {
          const p = pieces[tag]!;
          if (!back.equals(p.data)) {
            let k = 0;
            while (k < back.length && back[k] === p.data[k]) k++;
            throw new VerifyError(c.dest.device, p.offset + k);
          }
          done += p.data.length;
          report(done);
        }
      } else {
        for (const [ri, r] of img.ranges.entries()) {
          if (!(await rangeMatches(c.dest, r, img.algorithm, (n) => report((done += n))))) {
            const at = await firstDifference(img, ri, c.dest);
            throw new VerifyError(c.dest.device, at >= 0 ? at : r.start);
          }
        }
      }
      c.result.verified = true;
    } catch (e) {
      failCard(c, e);
    }
  }
  report(done, true);
}

/** Hash a range of a card in CHUNK reads (a few in flight) and compare with its digest. */
async function rangeMatches(dest: Destination, r: Required<Range>, algorithm: string, onBytes: (n: number) => void): Promise<boolean> {
  const h = createHash(algorithm);
  for await (const { data } of readAhead(dest.read, chunkJobs([r]))) {
    h.update(data);
    onBytes(data.length);
  }
  return h.digest('hex') === r.digest;
}

/** Write a planned customisation to every card and read it back (ECUSTOMIZE when it does not). */
export async function customizeCards(plan: CustomizationPlan, cards: Card[], o: { onProgress?: (p: FlashProgress) => void } = {}): Promise<void> {
  const report = phaseReporter('customizing', live(cards).length, o.onProgress);
  let n = 0;
  for (const c of live(cards)) {
    try {
      await customizeCard(c.dest, plan);
      c.result.customized = true;
    } catch (e) {
      failCard(c, e);
    }
    report(++n, true);
  }
}
