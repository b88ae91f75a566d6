/**
 * The users' partition: created on first boot in the free space after the boot partition,
 * formatted ext4 (journalled) and mounted as /home. It never repartitions or formats
 * anything that already holds a filesystem: a second boot only mounts.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { fileReadAt } from '../fat/index.js';
import { mbrEntry, parseMbr, type LayoutPartition } from '../layout/index.js';

const BUSYBOX = '/bin/busybox';
const MiB = 1 << 20;

/** Outcome, for the one line init prints. */
export type UsersResult = { state: 'mounted' | 'created'; device: string } | { state: 'skipped'; reason: string };

/** Bytes of a device (fewer only at its end). */
const read = (dev: string, offset: number, length: number): Buffer => fileReadAt(dev)(offset, length);

/** Bytes {@link signatureIn} looks at. */
export const SIGNATURE_BYTES = 0x10100;

/**
 * The filesystem, container or partition table whose signature a region starts with, if
 * any: at least what blkid recognises for the common types. `b` holds the region's first
 * {@link SIGNATURE_BYTES} bytes.
 */
export function signatureIn(b: Buffer): string | undefined {
  const at = (off: number, s: string): boolean => off + s.length <= b.length && b.toString('latin1', off, off + s.length) === s;
  const u32 = (off: number): number => (off + 4 <= b.length ? b.readUInt32LE(off) : 0);
  if (b.length >= 1082 && b.readUInt16LE(1080) === 0xef53) return 'ext2/3/4';
  if (at(0, 'LUKS\xba\xbe') || at(0, 'SKUL\xba\xbe')) return 'LUKS';
  for (let k = 0; k < 4; k++) if (at(512 * k, 'LABELONE') && at(512 * k + 24, 'LVM2 001')) return 'LVM2 physical volume';
  if (at(0, 'XFSB')) return 'XFS';
  if (u32(1024) === 0xf2f52010) return 'F2FS';
  if (at(0, 'hsqs') || at(0, 'sqsh')) return 'squashfs';
  if (at(0x10040, '_BHRfS_M')) return 'btrfs';
  if (u32(0) === 0xa92b4efc || u32(4096) === 0xa92b4efc) return 'Linux RAID member';
  for (const page of [4096, 8192, 16384, 65536]) if (at(page - 10, 'SWAPSPACE2') || at(page - 10, 'SWAP-SPACE')) return 'swap';
  for (const off of [0x8001, 0x8801, 0x9001]) if (at(off, 'CD001')) return 'ISO9660';
  if (at(3, 'NTFS    ')) return 'NTFS';
  if (at(3, 'EXFAT   ')) return 'exFAT';
  if (at(512, 'EFI PART')) return 'GPT partition table';
  if (b.length >= 512 && b[510] === 0x55 && b[511] === 0xaa) {
    if (at(54, 'FAT') || at(82, 'FAT')) return 'FAT';
    return 'MBR partition table or boot sector';
  }
  return undefined;
}

/** The filesystem (or container) whose signature starts at `offset` of a device, if any. */
export function signatureAt(dev: string, offset: number): string | undefined {
  return signatureIn(read(dev, offset, SIGNATURE_BYTES));
}

/** What to do about the users' partition, decided from the partition table alone. */
export type UsersPlan = { action: 'mount' } | { action: 'create'; start: number; end: number } | { action: 'skip'; reason: string };

const EXTENDED = new Set([0x05, 0x0f, 0x85]);

/**
 * Where the users' partition may go: in its MBR entry (the layout's number), from its start to the
 * next partition or the end of the disk, and only in space no other slot uses (an extended
 * partition's whole range counts as used). Anything unusual means: do nothing, say why.
 */
export function planUsersPartition(sector: Buffer, diskBytes: number, spec: LayoutPartition): UsersPlan {
  const mbr = parseMbr(sector);
  if (!mbr) return { action: 'skip', reason: 'the card has no MBR partition table' };
  if (mbr.protective) return { action: 'skip', reason: 'the card has a GPT (protective MBR): the kit only adds MBR partitions' };
  const entries = mbr.entries.map((e) => ({ number: e.number, type: e.type, start: e.start * 512, size: e.sectors * 512 }));
  if (entries.some((e) => e.number === spec.number)) return { action: 'mount' };
  const start = spec.startMiB * MiB;
  for (const e of entries) {
    if (e.size === 0) return { action: 'skip', reason: `partition ${e.number} has type 0x${e.type.toString(16)} but no size: not guessing what it holds` };
    if (start < e.start + e.size && e.start < start + 64 * MiB) {
      return { action: 'skip', reason: `partition ${e.number}${EXTENDED.has(e.type) ? ' (extended)' : ''} uses the space at ${spec.startMiB} MiB (${e.start / MiB}-${(e.start + e.size) / MiB} MiB): not touching it` };
    }
  }
  const next = Math.min(diskBytes, ...entries.filter((e) => e.start >= start).map((e) => e.start));
  const end = Math.floor(next / MiB) * MiB;
  if (end - start < 64 * MiB) return { action: 'skip', reason: `no room for the users' partition (${Math.max(0, end - start) / MiB} MiB free after ${spec.startMiB} MiB)` };
  return { action: 'create', start, end };
}

/** The disk a partition belongs to (mmcblk0p1 -> mmcblk0) and how its partitions are named. */
export function diskOf(partition: string): { disk: string; part: (n: number) => string } {
  const name = partition.replace('/dev/', '');
  const m = /^(.*\d)p\d+$/.exec(name) ?? /^(.*\D)\d+$/.exec(name);
  if (!m) throw new Error(`cannot tell the disk of ${partition}`);
  return partitionsOf(`/dev/${m[1]!}`);
}

/** How a disk's partitions are named (a disk whose name ends in a digit gets a "p"). */
export function partitionsOf(disk: string): { disk: string; part: (n: number) => string } {
  return { disk, part: (n) => `${disk}${/\d$/.test(disk) ? 'p' : ''}${n}` };
}

/**
 * What {@link setupUsers} does to the system, one seam so its rules are tested on made-up
 * partition tables in files (test/runtime/usersfs.test.ts); {@link LINUX_USERS} is the board's.
 */
export interface UsersHost {
  /** Bytes of the disk. */
  diskBytes(disk: string): number;
  read(dev: string, offset: number, length: number): Buffer;
  /** Write `data` at `offset` and flush it to the device. */
  writeAt(dev: string, offset: number, data: Buffer): void;
  exists(path: string): boolean;
  sleep(ms: number): void;
  /** Tell the kernel of partition `n` of `disk` (BLKPG); an error text, or undefined. */
  addPartition(disk: string, n: number): string | undefined;
  /** mke2fs an ext4 labelled nodeos-users; an error text, or undefined. */
  makeExt4(dev: string): string | undefined;
  /** Mount an ext4 `dev` on `at` (made if missing); an error text, or undefined. */
  mount(dev: string, at: string): string | undefined;
  writeFile(path: string, text: string): void;
  sync(): void;
}

const errorOf = (r: ReturnType<typeof spawnSync>): string | undefined =>
  r.status === 0 ? undefined : r.error?.message ?? (r.stderr?.toString().trim() || `exit ${r.status}`);

/** The board's: sysfs, the block device, busybox, partx and mke2fs from the system slot. */
export const LINUX_USERS: UsersHost = {
  diskBytes: (disk) => Number(readFileSync(`/sys/class/block/${disk.replace('/dev/', '')}/size`, 'utf8').trim()) * 512,
  read,
  writeAt(dev, offset, data) {
    const fd = openSync(dev, 'r+');
    try {
      writeSync(fd, data, 0, data.length, offset);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  },
  exists: existsSync,
  sleep: (ms) => void spawnSync(BUSYBOX, ['sleep', String(ms / 1000)]),
  // partx: BLKPG adds one partition while others of the card are mounted, which a re-read of the whole table would refuse.
  addPartition: (disk, n) => errorOf(spawnSync('/bin/partx', ['--add', '--nr', String(n), disk], { stdio: ['ignore', 'ignore', 'pipe'] })),
  makeExt4: (dev) => errorOf(spawnSync('/bin/mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'nodeos-users', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', dev], { stdio: ['ignore', 'ignore', 'pipe'] })),
  mount(dev, at) {
    mkdirSync(at, { recursive: true });
    return errorOf(spawnSync(BUSYBOX, ['mount', '-t', 'ext4', dev, at], { stdio: ['ignore', 'ignore', 'pipe'] }));
  },
  writeFile: (path, text) => writeFileSync(path, text),
  sync: () => void spawnSync(BUSYBOX, ['sync']),
};

function waitFor(host: UsersHost, path: string, ms: number): boolean {
  for (let waited = 0; !host.exists(path); waited += 100) {
    if (waited >= ms) return false;
    host.sleep(100);
  }
  return true;
}

/**
 * Mount the users' partition, creating it first if the partition table has no entry for it:
 * only in free space that holds no filesystem signature, and announced to the kernel alone.
 */
export function setupUsers(diskPath: string, spec: LayoutPartition, build: string, host: UsersHost = LINUX_USERS): UsersResult {
  const { disk, part } = partitionsOf(diskPath);
  const target = part(spec.number);
  const mountAt = spec.mount ?? '/home';
  const entry = 446 + 16 * (spec.number - 1);
  const plan = planUsersPartition(host.read(disk, 0, 512), host.diskBytes(disk), spec);
  if (plan.action === 'skip') return { state: 'skipped', reason: plan.reason };
  if (plan.action === 'mount') {
    if (!waitFor(host, target, 3000)) return { state: 'skipped', reason: `${target} is in the partition table but has no device node` };
    const err = host.mount(target, mountAt);
    return err ? { state: 'skipped', reason: `cannot mount ${target} on ${mountAt}: ${err}` } : { state: 'mounted', device: target };
  }
  const { start, end } = plan;
  const found = signatureIn(host.read(disk, start, SIGNATURE_BYTES));
  if (found) return { state: 'skipped', reason: `the free space at ${spec.startMiB} MiB already holds a ${found} filesystem: not touching it` };
  host.writeAt(disk, entry, mbrEntry({ start: start / 512, sectors: (end - start) / 512, type: parseInt(spec.mbrType, 16) }));
  const added = host.addPartition(disk, spec.number);
  if (added !== undefined || !waitFor(host, target, 5000)) return { state: 'skipped', reason: `created ${target} but the kernel did not pick it up: ${added ?? 'no device node'}` };
  const mk = host.makeExt4(target);
  if (mk !== undefined) return { state: 'skipped', reason: `mke2fs ${target} failed: ${mk}` };
  const err = host.mount(target, mountAt);
  if (err) return { state: 'skipped', reason: `formatted ${target} but cannot mount it: ${err}` };
  host.writeFile(`${mountAt}/.nodeos`, JSON.stringify({ createdBy: build, created: new Date().toISOString() }) + '\n');
  host.sync();
  return { state: 'created', device: target };
}
