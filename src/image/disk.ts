/** Disk images: an MBR, partitions written as extents, holes everywhere else. */
import { closeSync, ftruncateSync, fsyncSync, openSync, writeSync } from 'node:fs';
import type { Extent } from './fat.js';

export const SECTOR = 512;

/** An MBR partition's PARTUUID as the kernel names it: the disk signature and the partition number (`%08x-%02x`). */
export const mbrPartUuid = (signature: number, partition: number): string => `${(signature >>> 0).toString(16).padStart(8, '0')}-${partition.toString(16).padStart(2, '0')}`;

/** An MBR partition entry. */
export interface MbrPartition {
  /** First sector (LBA). */
  start: number;
  /** Length in sectors. */
  sectors: number;
  /** Partition type, e.g. 0x0c (FAT32 LBA) or 0x83 (Linux). */
  type: number;
  bootable?: boolean;
}

/** CHS triple as fdisk writes it (255 heads, 63 sectors; saturated beyond 1024 cylinders). */
function chs(lba: number): [number, number, number] {
  const spt = 63;
  const heads = 255;
  const c = Math.floor(lba / (spt * heads));
  if (c > 1023) return [0xfe, 0xff, 0xff];
  const h = Math.floor(lba / spt) % heads;
  const s = (lba % spt) + 1;
  return [h, s | ((c >> 2) & 0xc0), c & 0xff];
}

/** The 512-byte MBR sector. */
export function buildMbr(parts: MbrPartition[], diskId: number): Buffer {
  const mbr = Buffer.alloc(SECTOR);
  mbr.writeUInt32LE(diskId >>> 0, 440);
  parts.forEach((p, i) => {
    const o = 446 + 16 * i;
    mbr[o] = p.bootable ? 0x80 : 0;
    mbr.set(chs(p.start), o + 1);
    mbr[o + 4] = p.type;
    mbr.set(chs(p.start + p.sectors - 1), o + 5);
    mbr.writeUInt32LE(p.start, o + 8);
    mbr.writeUInt32LE(p.sectors, o + 12);
  });
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  return mbr;
}

/** Write a sparse image of `size` bytes with the extents; returns the mapped byte ranges. */
export function writeSparseImage(path: string, size: number, extents: Extent[]): [number, number][] {
  const fd = openSync(path, 'w', 0o644);
  try {
    ftruncateSync(fd, size);
    for (const e of extents) {
      let done = 0;
      while (done < e.data.length) done += writeSync(fd, e.data, done, e.data.length - done, e.offset + done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const ranges = extents.map((e): [number, number] => [e.offset, e.offset + e.data.length]).sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged.at(-1);
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([...r]);
  }
  return merged;
}
