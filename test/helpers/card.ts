/** Small test cards laid out as the kit lays them out: an MBR and a boot partition with layout.json. */
import { closeSync, openSync, readSync } from 'node:fs';
import { buildFat32, buildMbr, getBoard, layoutFor, mbrPartitions, type Extent, type FatFile, type ImageLayout } from '../../src/index.js';

const MiB = 1 << 20;

/**
 * A layout for a small card: the boot partition where the test wants it, then 1 MiB system
 * slots A and B right after it (a real board's are 256 MiB).
 */
export function smallLayout(bootStartMiB: number, bootSizeMiB: number, signature: number, board = 'qemu-virt'): ImageLayout {
  const l = layoutFor(getBoard(board).profile, signature);
  const end = bootStartMiB + bootSizeMiB;
  const [boot, a, b] = [l.partitions.find((p) => p.role === 'boot')!, l.partitions.find((p) => p.slot === 'A')!, l.partitions.find((p) => p.slot === 'B')!];
  return { ...l, partitions: [{ ...boot, startMiB: bootStartMiB, sizeMiB: bootSizeMiB }, { ...a, startMiB: end, sizeMiB: 1 }, { ...b, startMiB: end + 1, sizeMiB: 1 }] };
}

/** The MBR and boot-partition extents of a card with `layout` and `files` (layout.json added). */
export function cardExtents(layout: ImageLayout, files: FatFile[], o: { volumeId?: number; mtime?: number } = {}): Extent[] {
  const boot = layout.partitions.find((p) => p.role === 'boot')!;
  const start = boot.startMiB * MiB;
  const fat = buildFat32([...files, { path: layout.boot.layoutFile, data: Buffer.from(JSON.stringify(layout, null, 2) + '\n') }], {
    size: (boot.sizeMiB as number) * MiB,
    volumeId: o.volumeId ?? 1,
    mtime: o.mtime ?? 0,
    hiddenSectors: start / 512,
  });
  return [{ offset: 0, data: buildMbr(mbrPartitions(layout), parseInt(layout.diskSignature, 16)) }, ...fat.extents.map((e) => ({ offset: e.offset + start, data: e.data }))];
}

/** `size` bytes of a file or device at byte `at` (fewer at its end). */
export function readAt(file: string, at: number, size: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size);
    return buf.subarray(0, readSync(fd, buf, 0, size, at));
  } finally {
    closeSync(fd);
  }
}
