/**
 * The users' partition: created on first boot in the free space after the boot partition,
 * formatted ext4 (journalled) and mounted as /home. It never repartitions or formats
 * anything that already holds a filesystem: a second boot only mounts.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import type { PartitionSpec } from '../boards/schema.js';

const BUSYBOX = '/bin/busybox';
const MiB = 1 << 20;

/** Outcome, for the one line init prints. */
export type UsersResult = { state: 'mounted' | 'created'; device: string } | { state: 'skipped'; reason: string };

function read(dev: string, offset: number, length: number): Buffer {
  const fd = openSync(dev, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The filesystem (or container) whose signature starts at `offset`, if any. */
export function signatureAt(dev: string, offset: number): string | undefined {
  const b = read(dev, offset, 0x10100);
  if (b.readUInt16LE(1080) === 0xef53) return 'ext2/3/4';
  if (b.toString('latin1', 3, 11) === 'NTFS    ') return 'NTFS';
  if (b[510] === 0x55 && b[511] === 0xaa && /FAT/.test(b.toString('latin1', 54, 62) + b.toString('latin1', 82, 90))) return 'FAT';
  if (b.toString('latin1', 0, 6) === 'LUKS\xba\xbe') return 'LUKS';
  if (b.toString('latin1', 4086, 4096).startsWith('SWAPSPACE2')) return 'swap';
  if (b.toString('latin1', 0x10040, 0x10048) === '_BHRfS_M') return 'btrfs';
  if (b.toString('latin1', 0, 4) === 'XFSB') return 'XFS';
  return undefined;
}

/** The disk a partition belongs to (mmcblk0p1 -> mmcblk0) and how its partitions are named. */
export function diskOf(partition: string): { disk: string; part: (n: number) => string } {
  const name = partition.replace('/dev/', '');
  const m = /^(.*\d)p\d+$/.exec(name) ?? /^(.*\D)\d+$/.exec(name);
  if (!m) throw new Error(`cannot tell the disk of ${partition}`);
  const disk = m[1]!;
  return { disk: `/dev/${disk}`, part: (n) => `/dev/${disk}${/\d$/.test(disk) ? 'p' : ''}${n}` };
}

function waitFor(path: string, ms: number): boolean {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > end) return false;
    spawnSync(BUSYBOX, ['sleep', '0.1']);
  }
  return true;
}

function mount(dev: string, at: string): string | undefined {
  mkdirSync(at, { recursive: true });
  const r = spawnSync(BUSYBOX, ['mount', '-t', 'ext4', dev, at], { stdio: ['ignore', 'ignore', 'pipe'] });
  return r.status === 0 ? undefined : r.stderr.toString().trim() || `exit ${r.status}`;
}

/**
 * Mount the users' partition, creating it first if the partition table has no entry for it.
 * Runs before /boot is mounted, because re-reading the table needs the disk unused.
 */
export function setupUsers(bootPartition: string, spec: PartitionSpec, index: number, build: string): UsersResult {
  const { disk, part } = diskOf(bootPartition);
  const target = part(index + 1);
  const mountAt = spec.mount ?? '/home';
  const mbr = read(disk, 0, 512);
  const entry = 446 + 16 * index;
  if (mbr[entry + 4] !== 0) {
    if (!waitFor(target, 3000)) return { state: 'skipped', reason: `${target} is in the partition table but has no device node` };
    const err = mount(target, mountAt);
    return err ? { state: 'skipped', reason: `cannot mount ${target} on ${mountAt}: ${err}` } : { state: 'mounted', device: target };
  }
  const name = disk.replace('/dev/', '');
  const diskBytes = Number(readFileSync(`/sys/class/block/${name}/size`, 'utf8').trim()) * 512;
  const start = spec.startMiB * MiB;
  const end = Math.floor(diskBytes / MiB) * MiB;
  if (end - start < 64 * MiB) return { state: 'skipped', reason: `no room for the users' partition (${Math.max(0, end - start) / MiB} MiB free after ${spec.startMiB} MiB)` };
  const found = signatureAt(disk, start);
  if (found) return { state: 'skipped', reason: `the free space at ${spec.startMiB} MiB already holds a ${found} filesystem: not touching it` };
  // The new entry: type, start and size in sectors; CHS saturated (LBA only).
  const e = Buffer.alloc(16);
  e.set([0xfe, 0xff, 0xff], 1);
  e[4] = parseInt(spec.mbrType, 16);
  e.set([0xfe, 0xff, 0xff], 5);
  e.writeUInt32LE(start / 512, 8);
  e.writeUInt32LE((end - start) / 512, 12);
  const fd = openSync(disk, 'r+');
  try {
    writeSync(fd, e, 0, 16, entry);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const rr = spawnSync(BUSYBOX, ['blockdev', '--rereadpt', disk], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (rr.status !== 0 || !waitFor(target, 5000)) return { state: 'skipped', reason: `created ${target} but the kernel did not pick it up: ${rr.stderr.toString().trim()}` };
  const mk = spawnSync('/bin/mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'nodeos-users', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', target], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (mk.status !== 0) return { state: 'skipped', reason: `mke2fs ${target} failed: ${mk.stderr.toString().trim()}` };
  const err = mount(target, mountAt);
  if (err) return { state: 'skipped', reason: `formatted ${target} but cannot mount it: ${err}` };
  writeFileSync(`${mountAt}/.nodeos`, JSON.stringify({ createdBy: build, created: new Date().toISOString() }) + '\n');
  spawnSync(BUSYBOX, ['sync']);
  return { state: 'created', device: target };
}
