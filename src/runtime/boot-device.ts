/**
 * Which partition is this system's boot partition. The image's kernel command line names it
 * (`nodeos.boot=PARTUUID=<disk signature>-<number>`, written by the build), so a second
 * NodeOS card in a USB reader is never taken for /boot or given a users' partition. When the
 * name matches several partitions (two cards flashed from one image) none is chosen.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileReadAt } from '../fat/index.js';
import { mbrPartUuid, parseMbr } from '../layout/index.js';

/** A partition as sysfs and its disk's first sector describe it. */
export interface PartitionInfo {
  /** /dev path of the partition. */
  device: string;
  /** /dev path of its disk. */
  disk: string;
  /** Partition number (sysfs `partition`). */
  number: number;
  /** MBR PARTUUID (`%08x-%02x`), when the disk has an MBR that is not a GPT's protective one. */
  partuuid?: string;
  /** FAT volume label, when it is FAT32. */
  label?: string;
}

/** The outcome of {@link chooseBootPartition}. */
export type BootChoice = { ok: true; partition: PartitionInfo; how: string } | { ok: false; final: boolean; reason: string };

/** The value of `nodeos.boot=` on a kernel command line. */
export function bootArgument(cmdline: string): string | undefined {
  return /(?:^|\s)nodeos\.boot=(\S+)/.exec(cmdline)?.[1];
}

/** The first bytes of a device, or undefined when it cannot be read (yet). */
function head(path: string, length: number): Buffer | undefined {
  try {
    return fileReadAt(path)(0, length);
  } catch {
    return undefined;
  }
}

/** Every partition of every disk, from `<root>/sys/class/block` and the disks' first sectors under `<root>/dev`. */
export function scanPartitions(root = '/'): PartitionInfo[] {
  const sys = join(root, 'sys/class/block');
  if (!existsSync(sys)) return [];
  const out: PartitionInfo[] = [];
  for (const name of readdirSync(sys)) {
    if (/^(loop|ram|zram)/.test(name)) continue;
    const partFile = join(sys, name, 'partition');
    if (!existsSync(partFile)) continue;
    const number = Number(readFileSync(partFile, 'utf8').trim());
    // /sys/class/block/<p> links into the device tree, where a partition's directory sits in its disk's.
    let diskName: string;
    try {
      diskName = basename(dirname(realpathSync(join(sys, name))));
    } catch {
      continue;
    }
    const info: PartitionInfo = { device: `/dev/${name}`, disk: `/dev/${diskName}`, number };
    const sector = head(join(root, 'dev', diskName), 512);
    const mbr = sector ? parseMbr(sector) : undefined;
    if (mbr && !mbr.protective) info.partuuid = mbrPartUuid(mbr.signature, number);
    const bs = head(join(root, 'dev', name), 512);
    if (bs && bs.length === 512 && bs.toString('latin1', 82, 87) === 'FAT32') info.label = bs.toString('latin1', 71, 82).trim();
    out.push(info);
  }
  return out.sort((a, b) => (a.device < b.device ? -1 : 1));
}

/**
 * Pick the boot partition: the one `nodeos.boot=PARTUUID=...` names, exactly once; without
 * the argument (an image from before it existed), the one FAT32 partition labelled NODEOS.
 * `final` says waiting longer cannot help (an ambiguity, or a malformed argument).
 */
export function chooseBootPartition(parts: PartitionInfo[], cmdline: string): BootChoice {
  const arg = bootArgument(cmdline);
  if (arg !== undefined) {
    const m = /^PARTUUID=([0-9a-fA-F]{8}-[0-9a-fA-F]{2})$/.exec(arg);
    if (!m) return { ok: false, final: true, reason: `nodeos.boot=${arg} is not PARTUUID=<8 hex digits>-<2 hex digits>` };
    const want = m[1]!.toLowerCase();
    const hits = parts.filter((p) => p.partuuid === want);
    if (hits.length === 1) return { ok: true, partition: hits[0]!, how: `PARTUUID=${want}` };
    if (hits.length > 1) {
      return { ok: false, final: true, reason: `${hits.map((h) => h.device).join(' and ')} all have PARTUUID=${want} (cards flashed from the same image?): using none of them; remove the other card and reboot` };
    }
    return { ok: false, final: false, reason: `no partition has PARTUUID=${want} (the card the kernel booted from)` };
  }
  const labelled = parts.filter((p) => p.label === 'NODEOS');
  if (labelled.length === 1) return { ok: true, partition: labelled[0]!, how: 'the only FAT32 partition labelled NODEOS' };
  if (labelled.length > 1) return { ok: false, final: true, reason: `${labelled.map((h) => h.device).join(' and ')} are all labelled NODEOS and the kernel command line has no nodeos.boot=: using none` };
  return { ok: false, final: false, reason: 'no FAT32 partition labelled NODEOS' };
}
