/**
 * Reading an image as pieces: the mapped ranges of a raw image read directly (holes never
 * read), or a decompressed stream cut along the bmap's ranges, with reads kept in flight.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { FlashError } from '../src/errors.js';
import type { ReadAt } from '../src/fat/index.js';
import type { StreamLimit } from './plan.js';
import { openStream, type Source } from './source.js';

const MiB = 1 << 20;
/** Bytes per read of a raw image or a card. */
export const CHUNK = 4 * MiB;

/** Image bytes at an offset. */
export interface Piece {
  offset: number;
  data: Buffer;
}

/** A byte range of the image; `digest` is its hash from the check pass. */
export interface Range {
  start: number;
  end: number;
  /** The range's digest from the check pass (the bmap's checksum type, else SHA-256). */
  digest?: string;
}

/** Asynchronous reads at an offset: fewer bytes than asked only at the end. */
export type ReadAtAsync = (offset: number, length: number) => Promise<Buffer>;

/** Read up to `length` bytes at `offset` of an open file handle. */
export async function handleReadAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/**
 * Read (offset, length) jobs in order, keeping a few reads in flight so the disk works
 * while the caller hashes or compares the previous piece.
 */
export async function* readAhead(read: ReadAtAsync, jobs: { offset: number; length: number; tag: number }[], depth = 3): AsyncGenerator<{ offset: number; data: Buffer; tag: number }> {
  const queue: Promise<{ offset: number; data: Buffer; tag: number }>[] = [];
  let next = 0;
  const fill = (): void => {
    while (queue.length < depth && next < jobs.length) {
      const j = jobs[next++]!;
      queue.push(read(j.offset, j.length).then((data) => ({ offset: j.offset, data, tag: j.tag })));
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
export const chunkJobs = (ranges: { start: number; end: number }[]): { offset: number; length: number; tag: number }[] =>
  ranges.flatMap((r, tag) => {
    const out: { offset: number; length: number; tag: number }[] = [];
    for (let p = r.start; p < r.end; p += CHUNK) out.push({ offset: p, length: Math.min(CHUNK, r.end - p), tag });
    return out;
  });

/** A sparse image over pieces: reads of unmapped bytes give zeros. */
export const pieceReader =
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

/** Called with each piece of a range, in order. */
export type OnPiece = (rangeIndex: number, offset: number, data: Buffer) => void | Promise<void>;

/**
 * Walk the source and hand each mapped piece to `onPiece`. Ranges are in bytes;
 * `onRangeEnd` is called when a range is complete. A decompressed stream is never read
 * past `limit` (the bmap's image size, or the smallest target). Gives the image's size.
 */
export async function walkMapped(src: Source, ranges: Range[] | undefined, onPiece: OnPiece, onRangeEnd?: (rangeIndex: number) => void, o: { limit?: StreamLimit; onFileBytes?: (chunk: Buffer) => void } = {}): Promise<number> {
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

/** A raw image with a bmap: read only the mapped ranges (holes are never read). */
async function walkRawRanges(src: Source, ranges: Range[], onPiece: OnPiece, onRangeEnd?: (rangeIndex: number) => void): Promise<number> {
  const fh = await open(src.path, 'r');
  try {
    for await (const { offset, data, tag } of readAhead((at, n) => handleReadAt(fh, at, n), chunkJobs(ranges))) {
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
