/**
 * Drive discovery: block devices from `lsblk --json`, marked as system drives when they
 * hold a mounted root, boot, home, usr or var, an active swap, or the disk the kit runs from.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { FlashError } from '../src/errors.js';
import { packageRoot } from '../src/paths.js';

/** A whole disk the user might flash. */
export interface Drive {
  /** /dev path. */
  device: string;
  size: number;
  model: string;
  /** usb, mmc, sata, nvme, ... or '' (loop, virtio). */
  transport: string;
  removable: boolean;
  readOnly: boolean;
  /** disk or loop. */
  type: string;
  /** Mount points of the disk and its partitions. */
  mountpoints: string[];
  /** Partitions (/dev paths) with their mount points. */
  partitions: { device: string; mountpoints: string[]; fstype: string }[];
  isSystem: boolean;
  /** Why it is a system drive. */
  systemReasons: string[];
}

/** One node of `lsblk --json`. */
export interface LsblkNode {
  name: string;
  path: string;
  size: number;
  model: string | null;
  tran: string | null;
  rm: boolean;
  ro: boolean;
  type: string;
  mountpoints?: (string | null)[];
  mountpoint?: string | null;
  hotplug: boolean;
  fstype: string | null;
  'maj:min'?: string;
  children?: LsblkNode[];
}

/** Mount points that make a drive a system drive. */
export const SYSTEM_MOUNTS = ['/', '/boot', '/boot/efi', '/boot/firmware', '/home', '/usr', '/var', '/etc'];

const mounts = (n: LsblkNode): string[] => (n.mountpoints ?? [n.mountpoint ?? null]).filter((m): m is string => Boolean(m));

function activeSwaps(): Set<string> {
  try {
    return new Set(
      readFileSync('/proc/swaps', 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0] ?? '')
        .filter(Boolean)
        .map((p) => {
          try {
            return realpathSync(p);
          } catch {
            return p;
          }
        }),
    );
  } catch {
    return new Set();
  }
}

/**
 * The block device holding `path`'s filesystem: matched by st_dev against lsblk's
 * MAJ:MIN, else asked of findmnt (overlay and btrfs report anonymous device numbers).
 */
function deviceOf(path: string, byMajMin: Map<string, string>): string | undefined {
  try {
    const dev = statSync(path).dev;
    const hit = byMajMin.get(`${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((Math.floor(dev / 4096) & 0xfff00) >>> 0)}`);
    if (hit) return hit;
  } catch {
    return undefined;
  }
  const r = spawnSync('findmnt', ['-n', '-o', 'SOURCE', '--target', path], { encoding: 'utf8' });
  const src = r.stdout?.trim().replace(/\[.*\]$/, '');
  return src?.startsWith('/dev/') ? src : undefined;
}

/** Options for {@link listDrives}. */
export interface ScanOptions {
  /** Paths whose disks count as system drives. Default: the kit's own directory and cwd. */
  systemPaths?: string[];
  /** Include loop devices (tests flash them). Default true. */
  includeLoop?: boolean;
}

/** What makes a disk a system drive besides its mounts: active swaps and the disks holding given paths. */
export interface SystemContext {
  /** Devices that are active swaps (/proc/swaps, resolved). */
  swaps: Set<string>;
  /** Devices holding the kit's directory or the working directory. */
  held: Set<string>;
}

/** `lsblk --json` output as the kit asks for it. */
export interface LsblkTree {
  blockdevices: LsblkNode[];
}

/**
 * The drives in an lsblk tree, system drives marked. Every descendant counts: a root, home
 * or swap on LVM, LUKS or RAID (a grandchild or deeper) makes the whole disk a system drive.
 */
export function drivesFromLsblk(tree: LsblkTree, ctx: SystemContext, o: { includeLoop?: boolean } = {}): Drive[] {
  const drives: Drive[] = [];
  for (const d of tree.blockdevices) {
    if (d.type !== 'disk' && d.type !== 'loop') continue;
    if (d.type === 'loop' && o.includeLoop === false) continue;
    if (d.size === 0) continue;
    const parts = (d.children ?? []).filter((c) => c.type === 'part').map((c) => ({ device: c.path, mountpoints: mounts(c), fstype: c.fstype ?? '' }));
    const reasons: string[] = [];
    const mountpoints: string[] = [];
    const walk = (n: LsblkNode, via: string[]): void => {
      const where = via.length ? `${n.path} (on ${via.join(' on ')})` : n.path;
      for (const m of mounts(n)) {
        mountpoints.push(m);
        if (SYSTEM_MOUNTS.includes(m) || m === '[SWAP]') reasons.push(`${where} is ${m === '[SWAP]' ? 'an active swap' : `mounted on ${m}`}`);
      }
      if (ctx.swaps.has(n.path) && !mounts(n).includes('[SWAP]')) reasons.push(`${where} is an active swap`);
      if (ctx.held.has(n.path)) reasons.push(`${where} holds the directory nodeos-bsp runs from`);
      for (const c of n.children ?? []) walk(c, [n.path, ...via]);
    };
    walk(d, []);
    drives.push({
      device: d.path,
      size: d.size,
      model: (d.model ?? '').trim(),
      transport: d.tran ?? '',
      // An SD slot (mmcblk) often reports neither RM nor a transport.
      removable: d.rm || d.hotplug || d.tran === 'usb' || d.tran === 'mmc' || /^mmcblk\d+$/.test(d.name),
      readOnly: d.ro,
      type: d.type,
      mountpoints,
      partitions: parts,
      isSystem: reasons.length > 0,
      systemReasons: [...new Set(reasons)],
    });
  }
  return drives;
}

/** All disks with their partitions, system drives marked. */
export function listDrives(o: ScanOptions = {}): Drive[] {
  const r = spawnSync('lsblk', ['--json', '--bytes', '-o', 'NAME,PATH,SIZE,MODEL,TRAN,RM,RO,TYPE,MOUNTPOINTS,HOTPLUG,FSTYPE,MAJ:MIN'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new FlashError('ENO_DEVICE', `lsblk failed: ${r.error?.message ?? r.stderr} (apt-get install util-linux)`);
  const tree = JSON.parse(r.stdout) as LsblkTree;
  const byMajMin = new Map<string, string>();
  const index = (n: LsblkNode): void => {
    if (n['maj:min']) byMajMin.set(n['maj:min'], n.path);
    n.children?.forEach(index);
  };
  tree.blockdevices.forEach(index);
  const held = new Set((o.systemPaths ?? [packageRoot(), process.cwd()]).map((p) => deviceOf(p, byMajMin)).filter((d): d is string => Boolean(d)));
  return drivesFromLsblk(tree, { swaps: activeSwaps(), held }, o.includeLoop === undefined ? {} : { includeLoop: o.includeLoop });
}

/** Candidates to offer when no --device is given: removable, writable, not system. */
export function candidateDrives(drives: Drive[]): Drive[] {
  return drives.filter((d) => d.removable && !d.isSystem && !d.readOnly && d.type === 'disk');
}

/** Look up a target: a drive from the scan, or a regular file (only with forceFile). */
export function resolveTarget(path: string, drives: Drive[]): Drive | { device: string; file: true; size: number } {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new FlashError('ENO_DEVICE', `${path} does not exist: run nodeos-bsp drives to see the cards`, path);
  }
  if (st.isBlockDevice()) {
    const real = realpathSync(path);
    const d = drives.find((x) => x.device === real || x.device === path);
    if (d) return d;
    const part = drives.find((x) => x.partitions.some((p) => p.device === real));
    if (part) throw new FlashError('ENOT_BLOCK', `${path} is a partition of ${part.device}: flash the whole disk`, path);
    throw new FlashError('ENO_DEVICE', `${path} is not a disk lsblk knows`, path);
  }
  return { device: path, file: true, size: st.size };
}
