/** Reading files back from a FAT32 partition in an image (emulate, verify, tests). */
import { closeSync, openSync, readSync } from 'node:fs';
import { BspError } from '../errors.js';

/** A directory entry. */
export interface FatDirEntry {
  name: string;
  /** The 8.3 name as stored (upper case, e.g. `START.ELF`): what the Pi's boot ROM and firmware match. */
  shortName: string;
  isDir: boolean;
  cluster: number;
  size: number;
}

/** Reads `length` bytes at an absolute position of an image (fewer only at its end). */
export type ReadAt = (position: number, length: number) => Buffer;

/** Read up to `length` bytes at `position` of an open file, fewer only at its end. */
export function readFullyAt(fd: number, position: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, b, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return b.subarray(0, got);
}

/** A {@link ReadAt} over a file (opened for each read: nothing stays open). */
export const fileReadAt =
  (path: string): ReadAt =>
  (position, length) => {
    const fd = openSync(path, 'r');
    try {
      return readFullyAt(fd, position, length);
    } finally {
      closeSync(fd);
    }
  };

/** A FAT32 volume inside an image (a file, or any byte source) at a byte offset. */
export class Fat32Reader {
  private readonly fd: number | undefined;
  private readonly readAt: ReadAt;
  private readonly spc: number;
  private readonly fatStart: number;
  private readonly dataStart: number;
  private readonly rootCluster: number;
  private readonly fatCache = new Map<number, Buffer>();

  constructor(
    image: string | ReadAt,
    private readonly offset: number,
  ) {
    if (typeof image === 'string') {
      const fd = (this.fd = openSync(image, 'r'));
      this.readAt = (pos, len) => readFullyAt(fd, pos, len);
    } else this.readAt = image;
    const bpb = this.read(0, 512);
    if (bpb[510] !== 0x55 || bpb[511] !== 0xaa || bpb.toString('latin1', 82, 87) !== 'FAT32') {
      this.close();
      throw new BspError('EFAT', `no FAT32 filesystem at byte ${offset} of ${typeof image === 'string' ? image : 'the image'}`);
    }
    const bytesPerSector = bpb.readUInt16LE(11);
    if (bytesPerSector !== 512) throw new BspError('EFAT', `unsupported sector size ${bytesPerSector}`);
    this.spc = bpb[13]!;
    const reserved = bpb.readUInt16LE(14);
    const fats = bpb[16]!;
    const fatSectors = bpb.readUInt32LE(36);
    this.rootCluster = bpb.readUInt32LE(44);
    this.fatStart = reserved * 512;
    this.dataStart = (reserved + fats * fatSectors) * 512;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }

  private read(pos: number, len: number): Buffer {
    const b = this.readAt(this.offset + pos, len);
    if (b.length < len) throw new BspError('EFAT', 'image truncated inside the FAT filesystem');
    return b;
  }

  private next(cluster: number): number {
    const sector = Math.floor((cluster * 4) / 512);
    let s = this.fatCache.get(sector);
    if (!s) this.fatCache.set(sector, (s = this.read(this.fatStart + sector * 512, 512)));
    return s.readUInt32LE((cluster * 4) % 512) & 0x0fffffff;
  }

  private chain(first: number): number[] {
    const out: number[] = [];
    for (let c = first; c >= 2 && c < 0x0ffffff8; c = this.next(c)) {
      out.push(c);
      if (out.length > 1 << 24) throw new BspError('EFAT', 'cluster chain loops');
    }
    return out;
  }

  private readChain(first: number, size?: number): Buffer {
    const bytes = this.spc * 512;
    const chain = this.chain(first);
    const out = Buffer.alloc(size ?? chain.length * bytes);
    let pos = 0;
    // Contiguous runs are read in one call: the kit writes files contiguously.
    for (let i = 0; i < chain.length && pos < out.length; ) {
      let j = i;
      while (j + 1 < chain.length && chain[j + 1] === chain[j]! + 1) j++;
      const len = Math.min((j - i + 1) * bytes, out.length - pos);
      this.read(this.dataStart + (chain[i]! - 2) * bytes, len).copy(out, pos);
      pos += len;
      i = j + 1;
    }
    return out;
  }

  /** Entries of a directory (root when `cluster` is omitted). */
  list(cluster = this.rootCluster): FatDirEntry[] {
    const raw = this.readChain(cluster);
    const out: FatDirEntry[] = [];
    let lfn: string[] = [];
    for (let p = 0; p + 32 <= raw.length; p += 32) {
      const first = raw[p]!;
      if (first === 0) break;
      if (first === 0xe5) {
        lfn = [];
        continue;
      }
      const attr = raw[p + 11]!;
      if (attr === 0x0f) {
        let part = '';
        for (const off of [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]) {
          const c = raw.readUInt16LE(p + off);
          if (c === 0 || c === 0xffff) break;
          part += String.fromCharCode(c);
        }
        lfn.unshift(part);
        continue;
      }
      if (attr & 0x08) {
        lfn = [];
        continue;
      }
      const base = raw.toString('latin1', p, p + 8).trimEnd();
      const ext = raw.toString('latin1', p + 8, p + 11).trimEnd();
      const shortName = ext ? `${base}.${ext}` : base;
      // NT case flags (byte 12): base (0x08) and extension (0x10) are shown in lower case.
      const flags = raw[p + 12]!;
      const cased = (flags & 0x08 ? base.toLowerCase() : base) + (ext ? '.' + (flags & 0x10 ? ext.toLowerCase() : ext) : '');
      const name = lfn.length ? lfn.join('') : cased;
      lfn = [];
      if (name === '.' || name === '..') continue;
      out.push({ name, shortName, isDir: (attr & 0x10) !== 0, cluster: (raw.readUInt16LE(p + 20) << 16) | raw.readUInt16LE(p + 26), size: raw.readUInt32LE(p + 28) });
    }
    return out;
  }

  /** Find an entry by path (case-insensitive, like FAT). */
  stat(path: string): FatDirEntry | undefined {
    let dir = this.rootCluster;
    const parts = path.replace(/^\/+/, '').split('/').filter(Boolean);
    let hit: FatDirEntry | undefined;
    for (const [i, part] of parts.entries()) {
      hit = this.list(dir).find((e) => e.name.toLowerCase() === part.toLowerCase());
      if (!hit || (i < parts.length - 1 && !hit.isDir)) return undefined;
      dir = hit.cluster;
    }
    return hit;
  }

  /** Where a file's bytes are, relative to the partition start: contiguous runs, in order. */
  fileExtents(path: string): { offset: number; length: number }[] {
    const e = this.stat(path);
    if (!e || e.isDir) throw new BspError('EFAT', `${path} is not a file on the boot partition`);
    const bytes = this.spc * 512;
    const out: { offset: number; length: number }[] = [];
    let left = e.size;
    for (const c of e.size ? this.chain(e.cluster) : []) {
      if (left <= 0) break;
      const offset = this.dataStart + (c - 2) * bytes;
      const length = Math.min(bytes, left);
      const prev = out.at(-1);
      if (prev && prev.offset + prev.length === offset) prev.length += length;
      else out.push({ offset, length });
      left -= length;
    }
    return out;
  }

  /** A file's content; EFAT if it does not exist. */
  readFile(path: string): Buffer {
    const e = this.stat(path);
    if (!e || e.isDir) throw new BspError('EFAT', `${path} is not a file on the boot partition`);
    return e.size === 0 ? Buffer.alloc(0) : this.readChain(e.cluster, e.size);
  }
}
