/** The MBR partition table: written by the builder, read by everything else through the layout. */

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

/** A used entry of a parsed MBR, with its 1-based number. */
export interface MbrEntry extends MbrPartition {
  number: number;
}

/** What {@link parseMbr} found. */
export interface MbrTable {
  /** Disk signature at byte 440. */
  signature: number;
  /** Entries whose type is not 0, in slot order. */
  entries: MbrEntry[];
  /** True when an entry has type 0xee: the disk is a GPT, the MBR only protects it. */
  protective: boolean;
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

/** The 16-byte entry for a partition. */
export function mbrEntry(p: MbrPartition): Buffer {
  const e = Buffer.alloc(16);
  e[0] = p.bootable ? 0x80 : 0;
  e.set(chs(p.start), 1);
  e[4] = p.type;
  e.set(chs(p.start + p.sectors - 1), 5);
  e.writeUInt32LE(p.start, 8);
  e.writeUInt32LE(p.sectors, 12);
  return e;
}

/** The 512-byte MBR sector. */
export function buildMbr(parts: MbrPartition[], diskId: number): Buffer {
  const mbr = Buffer.alloc(SECTOR);
  mbr.writeUInt32LE(diskId >>> 0, 440);
  parts.forEach((p, i) => mbr.set(mbrEntry(p), 446 + 16 * i));
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  return mbr;
}

/** Parse a first sector; undefined when it carries no MBR signature (0x55aa). */
export function parseMbr(sector: Buffer): MbrTable | undefined {
  if (sector.length < SECTOR || sector[510] !== 0x55 || sector[511] !== 0xaa) return undefined;
  const entries: MbrEntry[] = [];
  let protective = false;
  for (let i = 0; i < 4; i++) {
    const o = 446 + 16 * i;
    const type = sector[o + 4]!;
    if (type === 0xee) protective = true;
    if (type === 0) continue;
    entries.push({ number: i + 1, type, bootable: sector[o] === 0x80, start: sector.readUInt32LE(o + 8), sectors: sector.readUInt32LE(o + 12) });
  }
  return { signature: sector.readUInt32LE(440), entries, protective };
}
