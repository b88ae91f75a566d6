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

/** Characters allowed in a short (8.3) name besides A-Z and 0-9. */
const SHORT_CHARS = /^[A-Z0-9!#$%&'()@^_`{}~-]*$/;
/** NT case flags in a short entry's byte 12: base and extension stored upper, shown lower. */
const LOWER_BASE = 0x08;
const LOWER_EXT = 0x10;

/** How a name is stored: its 11-byte short name, the NT case flags, and whether LFN entries are needed. */
export interface ShortName {
  short: string;
  flags: number;
  lfn: boolean;
}

const split = (name: string): [string, string] => {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? [name.slice(0, dot), name.slice(dot + 1)] : [name, ''];
};

/** A part is all lower-case (1), all upper-case or caseless (0), or mixed (-1). */
const caseOf = (s: string): number => (s === s.toUpperCase() ? 0 : s === s.toLowerCase() ? 1 : -1);

/**
 * The short name for `name` the way Windows and mtools choose it: a name that fits 8.3
 * once upper-cased is stored as such, with the NT lower-case flags when its base or
 * extension is all lower-case, and needs long-name entries only for mixed case; other
 * names get a basis (upper-cased, invalid characters replaced by `_`, dots and spaces
 * dropped, cut to 8.3) with the first free `~N` tail. `taken` holds the directory's short names.
 */
export function shortName(name: string, taken: Set<string>): ShortName {
  const [base, ext] = split(name);
  const upBase = base.toUpperCase();
  const upExt = ext.toUpperCase();
  const fits = base.length >= 1 && base.length <= 8 && ext.length <= 3 && SHORT_CHARS.test(upBase) && SHORT_CHARS.test(upExt) && !name.endsWith('.');
  if (fits) {
    const short = upBase.padEnd(8) + upExt.padEnd(3);
    const cb = caseOf(base);
    const ce = caseOf(ext);
    if (!taken.has(short)) {
      taken.add(short);
      if (cb >= 0 && ce >= 0) return { short, flags: (cb ? LOWER_BASE : 0) | (ce ? LOWER_EXT : 0), lfn: false };
      return { short, flags: 0, lfn: true };
    }
  }
  // Basis name: upper case, spaces and leading/embedded dots dropped, others replaced by '_'.
  const clean = (x: string): string =>
    [...x.toUpperCase().replace(/[ .]/g, '')].map((c) => (SHORT_CHARS.test(c) && c.charCodeAt(0) < 0x80 ? c : '_')).join('');
  const lead = name.replace(/^[ .]+/, '');
  const [lb, le] = split(lead);
  const b = clean(lb).slice(0, 8);
  const e = clean(le).slice(0, 3);
  for (let n = 1; n < 1000000; n++) {
    const tail = `~${n}`;
    const s = (b.slice(0, 8 - tail.length) + tail).padEnd(8) + e.padEnd(3);
    if (!taken.has(s)) {
      taken.add(s);
      return { short: s, flags: 0, lfn: true };
    }
  }
  throw new BspError('EFAT', `too many similar names for ${name}`);
}

/** Whether `name` needs long-name entries (case or characters an 8.3 name cannot hold). */
function needsLfn(name: string): boolean {
  return shortName(name, new Set()).lfn;
}

function lfnChecksum(short: string): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short.charCodeAt(i)) & 0xff;
  return sum;
}

/** Directory entries (LFN entries then the short entry) for one name. */
function dirEntries(name: string, { short, flags, lfn }: ShortName, attr: number, cluster: number, size: number, stamp: { date: number; time: number }): Buffer {
  const parts: Buffer[] = [];
  if (lfn) {
    const chars: number[] = [];
    for (let i = 0; i < name.length; i++) chars.push(name.charCodeAt(i));
    // The NUL terminator only when the name does not fill its last entry exactly.
    if (chars.length % 13 !== 0) chars.push(0);
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
  e[12] = flags;
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
    const leaf = parts.at(-1)!;
    if (dir.files.some((x) => x.path.toLowerCase() === leaf.toLowerCase()) || dir.dirs.has(leaf)) throw new BspError('EFAT', `${f.path} is given twice (FAT names ignore case)`);
    if (leaf.length > 255) throw new BspError('EFAT', `${f.path}: a FAT name has at most 255 characters`);
    dir.files.push({ path: leaf, data: f.data });
  }

  // Directory sizes depend only on names, so allocate directories first, then files.
  const entryBytes = (name: string): number => 32 * (1 + (needsLfn(name) ? Math.ceil(name.length / 13) : 0));
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
      parts.push(dirEntries('.', { short: '.          ', flags: 0, lfn: false }, 0x10, d.cluster, 0, stamp));
      parts.push(dirEntries('..', { short: '..         ', flags: 0, lfn: false }, 0x10, parent === root ? 0 : parent.cluster, 0, stamp));
    }
    for (const [name, sub] of d.dirs) {
      parts.push(dirEntries(name, shortName(name, taken), 0x10, sub.cluster, 0, stamp));
    }
    for (const f of d.files) {
      parts.push(dirEntries(f.path, shortName(f.path, taken), 0x20, fileCluster.get(f)!, f.data.length, stamp));
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
