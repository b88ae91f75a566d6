/**
 * FAT32, written by the kit itself (no npm package can create one): deterministic bytes
 * for the same files and timestamp, long file names, subdirectories, contiguous files.
 * The result is a list of extents; everything else in the partition is a hole, so the
 * image stays sparse and its .bmap maps only what matters.
 */
import { BspError } from '../errors.js';

const SECTOR = 512;
const RESERVED = 32;
const EOC = 0x0fffffff;

/** A file to put on the filesystem; `path` uses `/` (e.g. `overlays/foo.dtbo`). */
export interface FatFile {
  path: string;
  data: Buffer;
}

/** Options of {@link buildFat32}. */
export interface Fat32Options {
  /** Partition size in bytes. */
  size: number;
  /** Volume label, up to 11 characters. Default "NODEOS". */
  label?: string;
  /** Volume serial number. */
  volumeId: number;
  /** Timestamp for every entry, seconds since the epoch (SOURCE_DATE_EPOCH). */
  mtime: number;
  /** Partition's first LBA (BPB "hidden sectors"). */
  hiddenSectors: number;
}

/** A byte range of the partition with its content. */
export interface Extent {
  offset: number;
  data: Buffer;
}

/** Sectors per cluster as Microsoft's FAT32 table picks them. */
function sectorsPerCluster(sectors: number): number {
  const mib = (sectors * SECTOR) / (1 << 20);
  if (mib <= 260) return 1;
  if (mib <= 8192) return 8;
  if (mib <= 16384) return 16;
  if (mib <= 32768) return 32;
  return 64;
}

/** Geometry of a FAT32 volume of a given size. */
export interface Fat32Geometry {
  sectors: number;
  spc: number;
  fatSectors: number;
  clusters: number;
  dataStart: number;
}

export function fat32Geometry(size: number): Fat32Geometry {
  const sectors = Math.floor(size / SECTOR);
  const spc = sectorsPerCluster(sectors);
  let fatSectors = 1;
  for (;;) {
    const clusters = Math.floor((sectors - RESERVED - 2 * fatSectors) / spc);
    const need = Math.ceil(((clusters + 2) * 4) / SECTOR);
    if (need <= fatSectors) {
      if (clusters < 65525) throw new BspError('EFAT', `a ${size}-byte partition is too small for FAT32 (${clusters} clusters; at least 65525 needed)`);
      return { sectors, spc, fatSectors, clusters, dataStart: RESERVED + 2 * fatSectors };
    }
    fatSectors = need;
  }
}

/** DOS date and time of a Unix timestamp (UTC; clamped to 1980). */
function dosTime(mtime: number): { date: number; time: number } {
  const d = new Date(Math.max(mtime, 315532800) * 1000);
  return {
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
  };
}

const SHORT_OK = /^[A-Z0-9!#$%&'()@^_`{}~-]+$/;

/** Whether `name` needs long-name entries (anything but an upper-case 8.3 name). */
function needsLfn(name: string): boolean {
  const dot = name.lastIndexOf('.');
  const base = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot + 1) : '';
  return !(base.length <= 8 && ext.length <= 3 && SHORT_OK.test(base) && (ext === '' || SHORT_OK.test(ext)));
}

/** The 11-byte short name for `name`, and whether a long name entry is needed. */
function shortName(name: string, taken: Set<string>): { short: string; lfn: boolean } {
  const dot = name.lastIndexOf('.');
  const base = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot + 1) : '';
  if (!needsLfn(name)) {
    const s = base.padEnd(8) + ext.padEnd(3);
    taken.add(s);
    return { short: s, lfn: false };
  }
  const clean = (x: string): string => x.toUpperCase().replace(/[^A-Z0-9!#$%&'()@^_`{}~-]/g, '');
  const b = clean(base) || 'FILE';
  const e = clean(ext).slice(0, 3);
  for (let n = 1; n < 1000000; n++) {
    const tail = `~${n}`;
    const s = (b.slice(0, 8 - tail.length) + tail).padEnd(8) + e.padEnd(3);
    if (!taken.has(s)) {
      taken.add(s);
      return { short: s, lfn: true };
    }
  }
  throw new BspError('EFAT', `too many similar names for ${name}`);
}

function lfnChecksum(short: string): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short.charCodeAt(i)) & 0xff;
  return sum;
}

/** Directory entries (LFN entries then the short entry) for one name. */
function dirEntries(name: string, short: string, lfn: boolean, attr: number, cluster: number, size: number, stamp: { date: number; time: number }): Buffer {
  const parts: Buffer[] = [];
  if (lfn) {
    const chars: number[] = [];
    for (let i = 0; i < name.length; i++) chars.push(name.charCodeAt(i));
    chars.push(0);
    while (chars.length % 13 !== 0) chars.push(0xffff);
    const count = chars.length / 13;
    const sum = lfnChecksum(short);
    for (let n = count; n >= 1; n--) {
      const e = Buffer.alloc(32);
      e[0] = n | (n === count ? 0x40 : 0);
      const c = chars.slice((n - 1) * 13, n * 13);
      const offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
      offsets.forEach((off, i) => e.writeUInt16LE(c[i]!, off));
      e[11] = 0x0f;
      e[13] = sum;
      parts.push(e);
    }
  }
  const e = Buffer.alloc(32);
  e.write(short, 0, 11, 'latin1');
  e[11] = attr;
  e.writeUInt16LE(stamp.time, 14);
  e.writeUInt16LE(stamp.date, 16);
  e.writeUInt16LE(stamp.date, 18);
  e.writeUInt16LE((cluster >>> 16) & 0xffff, 20);
  e.writeUInt16LE(stamp.time, 22);
  e.writeUInt16LE(stamp.date, 24);
  e.writeUInt16LE(cluster & 0xffff, 26);
  e.writeUInt32LE(size, 28);
  parts.push(e);
  return Buffer.concat(parts);
}

interface DirNode {
  name: string;
  dirs: Map<string, DirNode>;
  files: FatFile[];
  cluster: number;
  clusters: number;
  content?: Buffer;
}

/** Build a FAT32 filesystem holding `files`; returns the extents to write. */
export function buildFat32(files: FatFile[], o: Fat32Options): { extents: Extent[]; geometry: Fat32Geometry; freeClusters: number } {
  const g = fat32Geometry(o.size);
  const clusterBytes = g.spc * SECTOR;
  const stamp = dosTime(o.mtime);
  const root: DirNode = { name: '', dirs: new Map(), files: [], cluster: 2, clusters: 0 };
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of sorted) {
    const parts = f.path.replace(/^\/+/, '').split('/');
    let dir = root;
    for (const p of parts.slice(0, -1)) {
      let d = dir.dirs.get(p);
      if (!d) dir.dirs.set(p, (d = { name: p, dirs: new Map(), files: [], cluster: 0, clusters: 0 }));
      dir = d;
    }
    dir.files.push({ path: parts.at(-1)!, data: f.data });
  }

  // Directory sizes depend only on names, so allocate directories first, then files.
  const entryBytes = (name: string): number => 32 * (1 + (needsLfn(name) ? Math.ceil((name.length + 1) / 13) : 0));
  const dirList: DirNode[] = [];
  const sizeDirs = (d: DirNode, isRoot: boolean): void => {
    let bytes = isRoot ? 32 : 64; // volume label, or "." and ".."
    for (const n of [...d.dirs.keys(), ...d.files.map((f) => f.path)]) bytes += entryBytes(n);
    d.clusters = Math.max(1, Math.ceil(bytes / clusterBytes));
    dirList.push(d);
    for (const c of d.dirs.values()) sizeDirs(c, false);
  };
  sizeDirs(root, true);
  const fat = new Uint32Array(g.clusters + 2);
  fat[0] = 0x0ffffff8;
  fat[1] = 0x0fffffff;
  let next = 2;
  const alloc = (count: number): number => {
    if (next + count > g.clusters + 2) throw new BspError('EFAT', `the files do not fit in the ${o.size}-byte boot partition: make it larger in the profile`);
    const first = next;
    for (let i = 0; i < count; i++) fat[first + i] = i === count - 1 ? EOC : first + i + 1;
    next += count;
    return first;
  };
  for (const d of dirList) d.cluster = alloc(d.clusters);
  const fileExtents: Extent[] = [];
  const fileCluster = new Map<FatFile, number>();
  const placeFiles = (d: DirNode): void => {
    for (const f of d.files) {
      if (f.data.length === 0) {
        fileCluster.set(f, 0);
        continue;
      }
      const c = alloc(Math.ceil(f.data.length / clusterBytes));
      fileCluster.set(f, c);
      fileExtents.push({ offset: (g.dataStart + (c - 2) * g.spc) * SECTOR, data: f.data });
    }
    for (const c of d.dirs.values()) placeFiles(c);
  };
  placeFiles(root);

  const dirExtents: Extent[] = [];
  const writeDir = (d: DirNode, parent: DirNode | undefined): void => {
    const taken = new Set<string>();
    const parts: Buffer[] = [];
    if (!parent) {
      const label = Buffer.alloc(32);
      label.write((o.label ?? 'NODEOS').toUpperCase().slice(0, 11).padEnd(11), 0, 11, 'latin1');
      label[11] = 0x08;
      label.writeUInt16LE(stamp.time, 22);
      label.writeUInt16LE(stamp.date, 24);
      parts.push(label);
    } else {
      parts.push(dirEntries('.', '.          ', false, 0x10, d.cluster, 0, stamp));
      parts.push(dirEntries('..', '..         ', false, 0x10, parent === root ? 0 : parent.cluster, 0, stamp));
    }
    for (const [name, sub] of d.dirs) {
      const { short, lfn } = shortName(name, taken);
      parts.push(dirEntries(name, short, lfn, 0x10, sub.cluster, 0, stamp));
    }
    for (const f of d.files) {
      const { short, lfn } = shortName(f.path, taken);
      parts.push(dirEntries(f.path, short, lfn, 0x20, fileCluster.get(f)!, f.data.length, stamp));
    }
    const content = Buffer.alloc(d.clusters * clusterBytes);
    const used = Buffer.concat(parts);
    if (used.length > content.length) throw new BspError('EFAT', `directory ${d.name || '/'} overflows its clusters`);
    used.copy(content);
    dirExtents.push({ offset: (g.dataStart + (d.cluster - 2) * g.spc) * SECTOR, data: content });
    for (const c of d.dirs.values()) writeDir(c, d);
  };
  writeDir(root, undefined);

  const free = g.clusters + 2 - next;
  const boot = Buffer.alloc(SECTOR);
  boot.set([0xeb, 0x58, 0x90], 0);
  boot.write('NODEOS  ', 3, 8, 'latin1');
  boot.writeUInt16LE(SECTOR, 11);
  boot[13] = g.spc;
  boot.writeUInt16LE(RESERVED, 14);
  boot[16] = 2;
  boot[21] = 0xf8;
  boot.writeUInt16LE(32, 24);
  boot.writeUInt16LE(64, 26);
  boot.writeUInt32LE(o.hiddenSectors, 28);
  boot.writeUInt32LE(g.sectors, 32);
  boot.writeUInt32LE(g.fatSectors, 36);
  boot.writeUInt32LE(2, 44);
  boot.writeUInt16LE(1, 48);
  boot.writeUInt16LE(6, 50);
  boot[64] = 0x80;
  boot[66] = 0x29;
  boot.writeUInt32LE(o.volumeId >>> 0, 67);
  boot.write((o.label ?? 'NODEOS').toUpperCase().slice(0, 11).padEnd(11), 71, 11, 'latin1');
  boot.write('FAT32   ', 82, 8, 'latin1');
  boot[510] = 0x55;
  boot[511] = 0xaa;
  const fsinfo = Buffer.alloc(SECTOR);
  fsinfo.writeUInt32LE(0x41615252, 0);
  fsinfo.writeUInt32LE(0x61417272, 484);
  fsinfo.writeUInt32LE(free, 488);
  fsinfo.writeUInt32LE(next, 492);
  fsinfo.writeUInt32LE(0xaa550000, 508);
  const reserved = Buffer.alloc(RESERVED * SECTOR);
  boot.copy(reserved, 0);
  fsinfo.copy(reserved, SECTOR);
  boot.copy(reserved, 6 * SECTOR);
  fsinfo.copy(reserved, 7 * SECTOR);
  const fatBytes = Buffer.alloc(g.fatSectors * SECTOR);
  Buffer.from(fat.buffer, fat.byteOffset, fat.byteLength).copy(fatBytes);
  const extents: Extent[] = [
    { offset: 0, data: reserved },
    { offset: RESERVED * SECTOR, data: fatBytes },
    { offset: (RESERVED + g.fatSectors) * SECTOR, data: fatBytes },
    ...dirExtents,
    ...fileExtents,
  ];
  return { extents: extents.sort((a, b) => a.offset - b.offset), geometry: g, freeClusters: free };
}
