/** Disk images: extents written where they go, holes everywhere else. */
import { closeSync, ftruncateSync, fsyncSync, openSync, writeSync } from 'node:fs';
import type { Extent } from '../fat/index.js';

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
