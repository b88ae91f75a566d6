/**
 * The image layout: one declarative description of the card (partitions, system slots, the
 * boot files of each slot, where the U-Boot environment lives), made from the board profile
 * by the builder and written to the boot partition as layout.json. emulate, flash, update and
 * the board's init read it from there (or from the copy in the initramfs) instead of parsing
 * the card their own way.
 */
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';
import { Fat32Reader, fileReadAt, type ReadAt } from '../fat/index.js';
import { mbrPartUuid, parseMbr, SECTOR, type MbrPartition } from './mbr.js';
import { decodeEnv } from '../uboot-env/index.js';

/** A system slot. */
export type Slot = 'A' | 'B';
export const SLOTS: readonly Slot[] = ['A', 'B'];
export const otherSlot = (s: Slot): Slot => (s === 'A' ? 'B' : 'A');

/** Format tag of layout.json; a reader refuses any other. */
export const LAYOUT_FORMAT = 'nodeos-layout/1';

/** A partition of the card and what it is for. */
export interface LayoutPartition {
  /** MBR entry number, 1-4 (the N of PARTUUID <signature>-0N). */
  number: number;
  name: string;
  role: 'boot' | 'system' | 'users';
  /** The system slot a system partition holds. */
  slot?: Slot;
  filesystem: 'fat32' | 'squashfs' | 'ext4';
  /** MBR partition type, e.g. "0x83". */
  mbrType: string;
  startMiB: number;
  /** Size, or "fill" for the partition created on first boot to fill the card. */
  sizeMiB: number | 'fill';
  bootable?: boolean;
  /** Created by the board's init on first boot (never formatted over data), not by the builder. */
  createdOnFirstBoot?: boolean;
  /** Where the running system mounts it. */
  mount?: string;
}

/**
 * A range of the card's raw sectors the image writes: a boot loader piece (`file`, under the
 * U-Boot package's usr/lib/u-boot), or zeros where U-Boot would read an environment of its own
 * (`zeros`; `file` then says what the range is).
 */
export interface RawRegion {
  file: string;
  offset: number;
  size: number;
  zeros?: true;
}

/** The card's layout (layout.json). */
export interface ImageLayout {
  format: typeof LAYOUT_FORMAT;
  board: string;
  /** MBR disk signature, 8 hex digits; a partition's PARTUUID is `<signature>-<number, 2 hex digits>`. */
  diskSignature: string;
  partitions: LayoutPartition[];
  /** Boot loader pieces on raw sectors before the first partition (profile boot.uboot.raw). */
  raw?: RawRegion[];
  /** Files on the boot partition. */
  boot: {
    /** U-Boot's name for the boot partition, e.g. "mmc 0:1". */
    ubootDevice: string;
    /** U-Boot script that picks the slot and counts tries. */
    script: string;
    /** This description. */
    layoutFile: string;
    /** The device tree the firmware loads (shared by both slots), when the kit installs one. */
    dtb: string;
    /**
     * boot.scr loads `dtb` to ${fdt_addr_r} and hands that to Linux: boards whose U-Boot is the
     * firmware carry a tree of their own in it, which would ignore the kit's and its
     * overlays. Unset: Linux gets ${fdtcontroladdr}, the tree the firmware handed U-Boot (the
     * Pi's firmware loads the kit's; QEMU virt makes its own).
     */
    loadDtb?: boolean;
    /** U-Boot itself. */
    uboot: string;
    /** Each slot's kernel and initramfs. */
    slots: Record<Slot, { kernel: string; initramfs: string }>;
  };
  /** The U-Boot environment: a file on the boot partition and a backup copy beside it. */
  env: { file: string; backup: string; size: number };
  /** Tries an unconfirmed slot gets before U-Boot falls back to the other one (1-9). */
  bootlimit: number;
}

/** Boot-partition names of the shared files. */
export const BOOT_FILES = { script: 'boot.scr', layout: 'layout.json', dtb: 'nodeos.dtb', uboot: 'u-boot.bin', env: 'uboot.env', envBackup: 'uboot.bak' } as const;

/** Each slot's folder on the boot partition, and the file names inside it. */
export const slotDir = (s: Slot): string => `slot-${s.toLowerCase()}`;
const SLOT_KERNEL = 'Image.gz';
const SLOT_INITRAMFS = 'initrd.zst';

/** Variables of uboot.env the kit writes itself (and every nodeos_* one); a profile adds others through boot.uboot.env. */
export const KIT_ENV = ['arch', 'baudrate', 'board_name', 'bootargs', 'bootcmd', 'bootdelay'] as const;
export const isKitEnvVar = (name: string): boolean => (KIT_ENV as readonly string[]).includes(name) || name.startsWith('nodeos_');

/** Set (to 1) in the environment of the REPL init runs on the screen's virtual terminal. */
export const SCREEN_REPL_ENV = 'NODEOS_SCREEN';

/** The system's init inside a system slot (the small initramfs hands over to it). */
export const SYSTEM_INIT = '/usr/lib/nodeos/init';

/** The system image a direct boot (emulate --direct) appends to the initramfs; the small initramfs's /init uses it instead of the card. */
export const DIRECT_SYSTEM = 'system.squashfs';
/** Where apps built into the image live in the system slot (one directory each). */
export const APPS_DIR = '/usr/lib/nodeos/apps';

/** An app built into the image, as the system's /etc/nodeos/image.json lists it for init. */
export interface ImageApp {
  name: string;
  version: string;
  /** Absolute path of the app's directory on the board. */
  dir: string;
  /** The file Node runs, relative to dir. */
  main: string;
  /** Start once the board has an address. */
  network: boolean;
  /** Run as root instead of the app user. */
  root: boolean;
}

/** Set (to 1) in the system init's environment by the small initramfs when the system came from the initramfs: no card to wait for. */
export const DIRECT_BOOT_ENV = 'NODEOS_DIRECT_BOOT';

/**
 * Size of the environment the kit writes (uboot.env) when the board's U-Boot build does not
 * keep its own there (its CONFIG_ENV_SIZE then decides: layoutFor's `envSize`); U-Boot's rpi and
 * qemu builds use this one. Cards written before the layout said a size have it too.
 */
export const ENV_SIZE = 0x4000;
/** Tries a freshly installed slot gets. */
export const DEFAULT_BOOTLIMIT = 3;

/**
 * The layout for a board: its profile's partitions, in MBR order, with their roles. Boards
 * booted by U-Boot need a boot partition, system slots A and B, and at most one users
 * partition created on first boot. `envSize`: the environment's size, U-Boot's own where it
 * keeps its environment in the card's uboot.env (CONFIG_ENV_IS_IN_FAT with CONFIG_ENV_SIZE);
 * `raw`: the boot loader pieces written before the first partition.
 */
export function layoutFor(profile: BoardProfile, diskSignature: number, o: { envSize?: number; raw?: RawRegion[] } = {}): ImageLayout {
  const uboot = profile.boot.uboot;
  if (!uboot) throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} has no boot.uboot: the kit's images boot through U-Boot`);
  const partitions = profile.partitions.map((p, i): LayoutPartition => {
    const role = p.slot ? 'system' : p.createdOnFirstBoot ? 'users' : 'boot';
    return {
      number: i + 1,
      name: p.name,
      role,
      ...(p.slot ? { slot: p.slot } : {}),
      filesystem: p.filesystem,
      mbrType: p.mbrType,
      startMiB: p.startMiB,
      sizeMiB: p.sizeMiB,
      ...(p.bootable ? { bootable: true } : {}),
      ...(p.createdOnFirstBoot ? { createdOnFirstBoot: true } : {}),
      ...(p.mount ? { mount: p.mount } : {}),
    };
  });
  const layout: ImageLayout = {
    format: LAYOUT_FORMAT,
    board: profile.id,
    diskSignature: (diskSignature >>> 0).toString(16).padStart(8, '0'),
    partitions,
    ...(o.raw?.length ? { raw: o.raw } : {}),
    boot: {
      ubootDevice: uboot.device,
      script: BOOT_FILES.script,
      layoutFile: BOOT_FILES.layout,
      dtb: BOOT_FILES.dtb,
      ...(profile.boot.method === 'uboot' && profile.devicetree.dtb !== undefined ? { loadDtb: true } : {}),
      uboot: BOOT_FILES.uboot,
      slots: { A: { kernel: `${slotDir('A')}/${SLOT_KERNEL}`, initramfs: `${slotDir('A')}/${SLOT_INITRAMFS}` }, B: { kernel: `${slotDir('B')}/${SLOT_KERNEL}`, initramfs: `${slotDir('B')}/${SLOT_INITRAMFS}` } },
    },
    env: { file: BOOT_FILES.env, backup: BOOT_FILES.envBackup, size: o.envSize ?? ENV_SIZE },
    bootlimit: DEFAULT_BOOTLIMIT,
  };
  const problem = layoutProblem(layout);
  if (problem) throw new BspError('EPROFILE_INVALID', `${profile.id}: ${problem}`);
  return layout;
}

/** What is wrong with a layout, or undefined: the checks every reader relies on. */
export function layoutProblem(l: ImageLayout): string | undefined {
  const boots = l.partitions.filter((p) => p.role === 'boot');
  if (boots.length !== 1 || boots[0]!.filesystem !== 'fat32' || boots[0]!.sizeMiB === 'fill') return 'the layout needs exactly one boot partition, FAT32 with a fixed size';
  for (const s of SLOTS) {
    const sys = l.partitions.filter((p) => p.role === 'system' && p.slot === s);
    if (sys.length !== 1) return `the layout needs exactly one system partition for slot ${s} (partitions: slot: ${s})`;
    if (sys[0]!.sizeMiB === 'fill' || sys[0]!.createdOnFirstBoot) return `system slot ${s} needs a fixed size and must be written by the build`;
  }
  if (l.partitions.filter((p) => p.role === 'users').length > 1) return 'the layout has more than one users partition';
  if (l.partitions.length > 4) return 'an MBR holds at most 4 primary partitions';
  if (!/^[0-9a-f]{8}$/.test(l.diskSignature)) return `disk signature ${l.diskSignature} is not 8 hex digits`;
  const first = Math.min(...l.partitions.map((p) => p.startMiB)) * MiB;
  let rawEnd = SECTOR;
  for (const r of [...(l.raw ?? [])].sort((a, b) => a.offset - b.offset)) {
    if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.size) || r.offset % SECTOR !== 0 || r.offset < rawEnd || r.offset + r.size > first) return `raw piece ${r.file} (${r.size} bytes at ${r.offset}) overlaps the MBR, another piece or the first partition`;
    rawEnd = r.offset + r.size;
  }
  if (!Number.isSafeInteger(l.env?.size) || l.env.size < 0x400 || l.env.size > 0x100000 || l.env.size % 0x200 !== 0) return `environment size ${l.env?.size} is not a whole number of 512-byte sectors between 1 KiB and 1 MiB`;
  if (!Number.isInteger(l.bootlimit) || l.bootlimit < 1 || l.bootlimit > 9) return `bootlimit ${l.bootlimit} is not 1-9 (U-Boot's test compares single decimal digits)`;
  return undefined;
}

const MiB = 1 << 20;

/** The boot partition. */
export const bootPartition = (l: ImageLayout): LayoutPartition => l.partitions.find((p) => p.role === 'boot')!;
/** A slot's system partition. */
export const systemPartition = (l: ImageLayout, s: Slot): LayoutPartition => l.partitions.find((p) => p.role === 'system' && p.slot === s)!;
/** The users' partition, when the layout has one. */
export const usersPartition = (l: ImageLayout): LayoutPartition | undefined => l.partitions.find((p) => p.role === 'users');
/** A partition's PARTUUID. */
export const partUuid = (l: ImageLayout, p: LayoutPartition): string => mbrPartUuid(parseInt(l.diskSignature, 16), p.number);
/** Byte offset and size of a fixed-size partition. */
export const partitionBytes = (p: LayoutPartition): { offset: number; size: number } => {
  if (p.sizeMiB === 'fill') throw new BspError('ELAYOUT', `partition ${p.name} has no fixed size`);
  return { offset: p.startMiB * MiB, size: p.sizeMiB * MiB };
};
/** Bytes of the image file: up to the end of the last partition the build writes. */
export const imageBytes = (l: ImageLayout): number => Math.max(...l.partitions.filter((p) => !p.createdOnFirstBoot).map((p) => { const b = partitionBytes(p); return b.offset + b.size; }));

/** The MBR entries the build writes (partitions created on first boot are left out). */
export function mbrPartitions(l: ImageLayout): MbrPartition[] {
  return l.partitions.filter((p) => !p.createdOnFirstBoot).map((p) => {
    const b = partitionBytes(p);
    return { start: b.offset / SECTOR, sectors: b.size / SECTOR, type: parseInt(p.mbrType, 16), ...(p.bootable ? { bootable: true } : {}) };
  });
}

/** The first FAT32 partition of an MBR sector: where the boot partition is, before layout.json is read. */
export function fatPartitionOf(sector: Buffer, label: string): { offset: number; size: number } {
  const mbr = parseMbr(sector);
  if (!mbr) throw new BspError('EIMAGE', `${label} has no MBR partition table: is it a nodeos-bsp image?`);
  const fat = mbr.entries.find((e) => e.type === 0x0c || e.type === 0x0b);
  if (!fat) throw new BspError('EIMAGE', `${label} has no FAT32 boot partition`);
  return { offset: fat.start * SECTOR, size: fat.sectors * SECTOR };
}

/** Parse and check layout.json text. */
export function parseLayout(text: string, label: string): ImageLayout {
  let l: ImageLayout;
  try {
    l = JSON.parse(text) as ImageLayout;
  } catch (err) {
    throw new BspError('ELAYOUT', `${label}: layout.json is not JSON (${(err as Error).message})`);
  }
  if (l?.format !== LAYOUT_FORMAT) throw new BspError('ELAYOUT', `${label}: layout.json is ${JSON.stringify(l?.format)}, not ${LAYOUT_FORMAT}: this kit cannot use it`);
  const problem = layoutProblem(l);
  if (problem) throw new BspError('ELAYOUT', `${label}: ${problem}`);
  return l;
}

/** A card or image's layout, read from layout.json on its boot partition, checked against its MBR. */
export function readLayout(read: ReadAt, label: string): { layout: ImageLayout; boot: { offset: number; size: number } } {
  const sector = read(0, SECTOR);
  const boot = fatPartitionOf(sector, label);
  const fat = new Fat32Reader(read, boot.offset);
  let text: string;
  try {
    if (!fat.stat(BOOT_FILES.layout)) {
      throw new BspError('ELAYOUT', `${label} has no ${BOOT_FILES.layout} on its boot partition: it was built by an older nodeos-bsp (one initramfs, no system slots); rebuild it with this one`);
    }
    text = fat.readFile(BOOT_FILES.layout).toString('utf8');
  } finally {
    fat.close();
  }
  const layout = parseLayout(text, label);
  const mbr = parseMbr(sector)!;
  if (mbr.signature.toString(16).padStart(8, '0') !== layout.diskSignature) {
    throw new BspError('ELAYOUT', `${label}: the MBR's disk signature ${mbr.signature.toString(16).padStart(8, '0')} is not layout.json's ${layout.diskSignature}`);
  }
  for (const p of layout.partitions.filter((x) => !x.createdOnFirstBoot)) {
    const e = mbr.entries.find((x) => x.number === p.number);
    const b = partitionBytes(p);
    if (!e || e.start * SECTOR !== b.offset || e.sectors * SECTOR !== b.size) {
      throw new BspError('ELAYOUT', `${label}: partition ${p.number} (${p.name}) in the MBR does not match layout.json (${p.startMiB} MiB + ${p.sizeMiB} MiB)`);
    }
  }
  return { layout, boot };
}

/** {@link readLayout} of an image file or a card's device node. */
export const readLayoutAt = (path: string): { layout: ImageLayout; boot: { offset: number; size: number } } => readLayout(fileReadAt(path), path);

/** Where an image's or card's boot partition is (the first FAT32 partition), without needing layout.json. */
export const bootPartitionIn = (path: string): { offset: number; size: number } => fatPartitionOf(fileReadAt(path)(0, SECTOR), path);

/**
 * The card's U-Boot environment as boot.scr reads it: the layout's uboot.env, else its copy
 * (a write cut short leaves one of them whole); undefined when neither decodes.
 */
export function readCardEnv(readFile: (name: string) => Buffer, layout: ImageLayout): Map<string, string> | undefined {
  for (const file of [layout.env.file, layout.env.backup]) {
    try {
      return decodeEnv(readFile(file)).vars;
    } catch {
      // Damaged or missing: the next copy.
    }
  }
  return undefined;
}
