/**
 * What a U-Boot build does with a card, read from its own artifacts: the build's `.config`
 * (Debian ships it as usr/share/doc/<package>/configs/config.<build>.gz) says where the
 * environment lives; the binary's compatible tables say which controllers it drives; the
 * device tree it is handed numbers them. Sources (U-Boot v2025.01): env/fat.c (the device
 * string is used as given unless it starts with ':'), drivers/core/device.c and uclass.c
 * (a device's sequence number is its `mmcN` alias when DM_SEQ_ALIAS is set, else the next
 * number after the highest alias and every number taken, in bind order), lib/fdtdec.c
 * (an alias matches a node by the last component of its path only), drivers/core/root.c
 * (disabled nodes are not bound; the walk is depth first in tree order).
 */
import { aliases, isEnabled, propStrings, type FdtNode } from './fdt.js';

/** A U-Boot (Kconfig) `.config`: CONFIG_X=value, with `# CONFIG_X is not set` as "n" and strings unquoted. */
export function parseKconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const off = /^# CONFIG_(\w+) is not set$/.exec(line);
    if (off) {
      out.set(off[1]!, 'n');
      continue;
    }
    const m = /^CONFIG_(\w+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!.startsWith('"') ? m[2]!.slice(1, -1).replace(/\\(.)/g, '$1') : m[2]!);
  }
  return out;
}

/** Where a U-Boot build keeps its environment. */
export type UbootEnvLocation =
  | { kind: 'fat'; interface: string; device: string; file: string; size: number; redundant: boolean }
  /** Raw sectors of an MMC device: `device` is U-Boot's `mmc N`, `part` its hardware partition (0: the user area), `offsets` bytes from its start (two when redundant). */
  | { kind: 'mmc'; device: number; part: number; offsets: number[]; size: number; redundant: boolean }
  | { kind: 'other'; where: string; size: number; redundant: boolean };

/**
 * The environment's home from the build configuration (CONFIG_ENV_IS_IN_*, ENV_FAT_*,
 * SYS_MMC_ENV_DEV/PART, ENV_OFFSET[_REDUND], ENV_SIZE). FAT comes before MMC, as in U-Boot's
 * env/env.c location list.
 */
export function ubootEnvLocation(config: ReadonlyMap<string, string>): UbootEnvLocation {
  const size = Number(config.get('ENV_SIZE') ?? NaN);
  const redundant = config.get('SYS_REDUNDAND_ENVIRONMENT') === 'y';
  if (config.get('ENV_IS_IN_FAT') === 'y') {
    return { kind: 'fat', interface: config.get('ENV_FAT_INTERFACE') ?? '', device: config.get('ENV_FAT_DEVICE_AND_PART') ?? '', file: config.get('ENV_FAT_FILE') ?? '', size, redundant };
  }
  if (config.get('ENV_IS_IN_MMC') === 'y') {
    const offsets = [config.get('ENV_OFFSET'), ...(redundant ? [config.get('ENV_OFFSET_REDUND')] : [])].map((v) => Number(v ?? NaN));
    return { kind: 'mmc', device: Number(config.get('SYS_MMC_ENV_DEV') ?? 0), part: Number(config.get('SYS_MMC_ENV_PART') ?? 0), offsets, size, redundant };
  }
  const where = [...config].filter(([k, v]) => /^ENV_IS_IN_/.test(k) && v === 'y').map(([k]) => k.replace('ENV_IS_IN_', '').toLowerCase());
  return { kind: 'other', where: where.join(', ') || 'nowhere (ENV_IS_NOWHERE)', size, redundant };
}

/**
 * The card's raw ranges where this U-Boot reads its environment: its location is raw MMC
 * sectors of the user area of the device the card is (`device`, the profile's
 * boot.uboot.device, "mmc 1:1"). An environment another system left there would be loaded,
 * bootcmd and all, instead of U-Boot's built-in one; the image clears these ranges.
 */
export function envRangesOnCard(loc: UbootEnvLocation, device: string): { offset: number; size: number }[] {
  const m = /^mmc (\d+):\d+$/.exec(device);
  if (loc.kind !== 'mmc' || !m || Number(m[1]) !== loc.device || loc.part !== 0) return [];
  return loc.offsets.map((offset) => ({ offset, size: loc.size }));
}

/** An MMC controller as this U-Boot numbers it. */
export interface UbootMmc {
  path: string;
  compatible: string;
  /** U-Boot's device number: `mmc <number>:<part>`. */
  number: number;
  /** From an `mmcN` alias, or the next free number in bind order. */
  by: 'alias' | 'order';
}

/** The compatible strings a U-Boot binary carries (its drivers' of_match tables): whole NUL-terminated strings. */
export function drives(binary: Buffer): (compatible: string) => boolean {
  return (c) => {
    const needle = Buffer.from(`${c}\0`, 'latin1');
    for (let at = binary.indexOf(needle); at >= 0; at = binary.indexOf(needle, at + 1)) {
      const before = at === 0 ? 0 : binary[at - 1]!;
      if (before < 0x20 || before > 0x7e) return true;
    }
    return false;
  };
}

const MMC_NODE = /^(mmc|sdhci)@/;

/**
 * The `mmc N` number of each enabled MMC controller U-Boot binds, in bind order (depth first,
 * disabled nodes and their subtrees skipped). `aliasSeq`: the build's DM_SEQ_ALIAS.
 */
export function ubootMmcNumbers(root: FdtNode, isDriven: (compatible: string) => boolean, aliasSeq: boolean): UbootMmc[] {
  const mmcAliases = [...aliases(root)].flatMap(([k, v]) => {
    const m = /^mmc(\d+)$/.exec(k);
    return m ? [{ n: Number(m[1]), last: v.split('/').pop()! }] : [];
  });
  const highestAlias = aliasSeq && mmcAliases.length ? Math.max(...mmcAliases.map((a) => a.n)) : -1;
  const out: UbootMmc[] = [];
  const visit = (n: FdtNode): void => {
    if (!isEnabled(n)) return;
    const compatible = propStrings(n, 'compatible').find(isDriven);
    if (MMC_NODE.test(n.name) && compatible) {
      const alias = aliasSeq ? mmcAliases.find((a) => a.last === n.name) : undefined;
      if (alias) out.push({ path: n.path, compatible, number: alias.n, by: 'alias' });
      else out.push({ path: n.path, compatible, number: Math.max(highestAlias, ...out.map((d) => d.number)) + 1, by: 'order' });
    }
    for (const c of n.children) visit(c);
  };
  visit(root);
  return out;
}
