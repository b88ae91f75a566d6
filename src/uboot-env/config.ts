/** `fw_env.config`: where the environment lives (`device offset size [sector size [sectors]]`). */
import { EnvError } from '../errors.js';
import type { FlagScheme } from './format.js';

/** One copy's location. */
export interface EnvLocation {
  /** File, disk image or block device. */
  path: string;
  /** Byte offset; negative counts from the end of the device or file. */
  offset: number;
  /** Environment size in bytes. */
  size: number;
  /** Erase sector size (MTD only; kept for fidelity). */
  sectorSize?: number;
  /** Number of sectors (MTD only). */
  sectors?: number;
}

/** A single environment or a redundant pair. */
export interface EnvConfig {
  copies: [EnvLocation] | [EnvLocation, EnvLocation];
  /** Flag scheme of a redundant pair. Default incremental (NAND, files, block devices). */
  scheme: FlagScheme;
  /** The file holds exactly the environment (uboot.env); it is replaced atomically on write. */
  wholeFile?: boolean;
  /**
   * Overwrite the file where it is instead of replacing it (a file on FAT whose copy beside it
   * keeps a cut write safe): a replacement lands in new clusters and the old ones, freed but
   * not cleared, keep what the old environment held (a Wi-Fi PSK moved off the card).
   */
  inPlace?: boolean;
}

function num(text: string, hexDefault: boolean, what: string, line: number): number {
  const t = text.trim();
  const neg = t.startsWith('-');
  const body = neg ? t.slice(1) : t;
  let v: number;
  if (/^0x[0-9a-f]+$/i.test(body)) v = parseInt(body.slice(2), 16);
  else if (hexDefault && /^[0-9a-f]+$/i.test(body)) v = parseInt(body, 16);
  else if (/^0[0-7]+$/.test(body)) v = parseInt(body, 8);
  else if (/^\d+$/.test(body)) v = parseInt(body, 10);
  else throw new EnvError('EENV_CONFIG', `fw_env.config line ${line}: ${what} "${text}" is not a number`);
  return neg ? -v : v;
}

/**
 * Parse fw_env.config text. Offsets are C integers (0x hex, 0 octal, decimal, may be
 * negative); sizes are hex with or without 0x, as fw_env.c and libubootenv read them.
 * One line is a single environment, two lines a redundant pair.
 */
export function parseFwEnvConfig(text: string): EnvConfig {
  const copies: EnvLocation[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const f = line.split(/\s+/);
    if (f.length < 3) throw new EnvError('EENV_CONFIG', `fw_env.config line ${i + 1}: need "device offset size", got "${line}"`);
    const loc: EnvLocation = { path: f[0]!, offset: num(f[1]!, false, 'offset', i + 1), size: num(f[2]!, true, 'size', i + 1) };
    if (loc.size <= 0) throw new EnvError('EENV_CONFIG', `fw_env.config line ${i + 1}: size must be positive`);
    if (f[3] !== undefined) loc.sectorSize = num(f[3], true, 'sector size', i + 1);
    if (f[4] !== undefined) loc.sectors = num(f[4], true, 'sector count', i + 1);
    copies.push(loc);
  });
  if (copies.length === 0) throw new EnvError('EENV_CONFIG', 'fw_env.config names no environment: add a "device offset size" line');
  if (copies.length > 2) throw new EnvError('EENV_CONFIG', `fw_env.config has ${copies.length} lines; one (single) or two (redundant) are allowed`);
  if (copies.length === 2 && copies[0]!.size !== copies[1]!.size) {
    throw new EnvError('EENV_CONFIG', `the two copies have different sizes (0x${copies[0]!.size.toString(16)} and 0x${copies[1]!.size.toString(16)})`);
  }
  return { copies: copies as EnvConfig['copies'], scheme: 'incremental' };
}

/**
 * The environment of a plain file such as the Raspberry Pi's `uboot.env`: the whole file
 * is one block, or, when redundant, two blocks back to back.
 */
export function fileConfig(path: string, size = 0x4000, redundant = false): EnvConfig {
  const first: EnvLocation = { path, offset: 0, size };
  return { copies: redundant ? [first, { path, offset: size, size }] : [first], scheme: 'incremental', wholeFile: true };
}
