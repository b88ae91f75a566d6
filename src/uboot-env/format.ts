/**
 * The environment block: CRC-32 (little-endian) over the data area, an optional flags
 * byte (redundant environments), then `name=value\0` pairs ending with an extra `\0`,
 * then padding to the block size.
 */
import { EnvCrcError, EnvError } from '../errors.js';
import { crc32 } from './crc32.js';

/** Variables in their stored order. */
export type EnvVars = Map<string, string>;

/** How copies of a redundant environment say which one is current. */
export type FlagScheme = 'incremental' | 'boolean';

/** One decoded copy. */
export interface EnvBlock {
  vars: EnvVars;
  /** The stored (and verified) CRC. */
  crc: number;
  /** Flags byte of a redundant copy; undefined for a single environment. */
  flags?: number;
  /** Byte found after the terminator (U-Boot pads with 0x00, mkenvimage with 0xff). */
  pad: number;
  /** Bytes used by the variables, terminator included. */
  used: number;
}

/** Size of the header before the data area. */
export const headerSize = (redundant: boolean): number => (redundant ? 5 : 4);

/** Check a variable name: non-empty, no `=`, no NUL. */
export function checkName(name: string): void {
  if (name.length === 0) throw new EnvError('EENV_FORMAT', 'empty variable name');
  if (name.includes('=')) throw new EnvError('EENV_FORMAT', `variable name "${name}" contains "=": names cannot contain it`);
  if (name.includes('\0')) throw new EnvError('EENV_FORMAT', `variable name ${JSON.stringify(name)} contains a NUL byte`);
}

/** The data area's text: `name=value\0...\0`. */
export function encodeData(vars: Iterable<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of vars) {
    checkName(name);
    if (value.includes('\0')) throw new EnvError('EENV_FORMAT', `value of "${name}" contains a NUL byte`);
    parts.push(Buffer.from(`${name}=${value}\0`, 'utf8'));
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** Options for {@link encodeEnv}. */
export interface EncodeOptions {
  /** Block size in bytes (CONFIG_ENV_SIZE; 0x4000 on the Raspberry Pi). */
  size: number;
  /** Add the flags byte of a redundant copy. Default false. */
  redundant?: boolean;
  /** Flags byte value for a redundant copy. Default 1. */
  flags?: number;
  /** Padding byte after the terminator. Default 0x00 (as U-Boot writes). */
  pad?: number;
}

/** Encode variables into one block; EENV_FULL (nothing produced) when they do not fit. */
export function encodeEnv(vars: Iterable<[string, string]>, o: EncodeOptions): Buffer {
  return sealBlock(encodeData(vars), o);
}

/** Put already-encoded data (ending with the double NUL) into a block with its CRC. */
export function sealBlock(data: Buffer, o: EncodeOptions): Buffer {
  const redundant = o.redundant ?? false;
  const hs = headerSize(redundant);
  if (!Number.isInteger(o.size) || o.size < hs + 2) throw new EnvError('EENV_SIZE', `environment size ${o.size} is too small (minimum ${hs + 2} bytes)`);
  const room = o.size - hs;
  if (data.length > room) {
    throw new EnvError('EENV_FULL', `the environment needs ${data.length} bytes but ${o.size} bytes hold only ${room}: remove or shorten variables, or use a larger size`);
  }
  const block = Buffer.alloc(o.size, o.pad ?? 0);
  data.copy(block, hs);
  block.writeUInt32LE(crc32(block.subarray(hs)), 0);
  if (redundant) block[4] = (o.flags ?? 1) & 0xff;
  return block;
}

/**
 * Decode one block. A CRC mismatch is EnvCrcError; data without `=` in an entry or
 * without the terminating double NUL is EENV_FORMAT. Never returns a partial result.
 */
export function decodeEnv(block: Uint8Array, o: { redundant?: boolean; where?: string } = {}): EnvBlock {
  const redundant = o.redundant ?? false;
  const where = o.where ?? 'the given block';
  const hs = headerSize(redundant);
  const buf = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  if (buf.length < hs + 2) throw new EnvError('EENV_SIZE', `${where}: ${buf.length} bytes cannot hold an environment`);
  const stored = buf.readUInt32LE(0);
  const computed = crc32(buf.subarray(hs));
  if (stored !== computed) throw new EnvCrcError(computed, stored, where);
  const vars: EnvVars = new Map();
  let pos = hs;
  for (;;) {
    if (pos >= buf.length) throw new EnvError('EENV_FORMAT', `${where}: the variables are not terminated by a double NUL`);
    if (buf[pos] === 0) break;
    const end = buf.indexOf(0, pos);
    if (end < 0) throw new EnvError('EENV_FORMAT', `${where}: the last variable is not NUL-terminated`);
    const entry = buf.toString('utf8', pos, end);
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new EnvError('EENV_FORMAT', `${where}: entry ${JSON.stringify(entry.slice(0, 40))} at byte ${pos} has no name=value form`);
    vars.set(entry.slice(0, eq), entry.slice(eq + 1));
    pos = end + 1;
  }
  const result: EnvBlock = { vars, crc: stored, pad: pos + 1 < buf.length ? buf[pos + 1]! : 0, used: pos + 1 - hs };
  if (redundant) result.flags = buf[4]!;
  return result;
}

/** Which copy of a redundant pair is current, given each copy's flags (both CRCs valid). */
export function currentCopy(flags0: number, flags1: number, scheme: FlagScheme): 0 | 1 {
  if (scheme === 'boolean') {
    // NOR scheme: 1 = active, 0 = obsolete; an erased (0xff) copy loses.
    if (flags0 === 1 && flags1 !== 1) return 0;
    if (flags1 === 1 && flags0 !== 1) return 1;
    if (flags0 === 0xff && flags1 !== 0xff) return 1;
    if (flags1 === 0xff && flags0 !== 0xff) return 0;
    return 0;
  }
  // Incremental: the higher counter wins, and 0 follows 255.
  if (flags0 === 255 && flags1 === 0) return 1;
  if (flags1 === 255 && flags0 === 0) return 0;
  if (flags1 > flags0) return 1;
  return 0;
}

/** The flags value the next write gets. */
export const nextFlags = (current: number, scheme: FlagScheme): number => (scheme === 'boolean' ? 1 : (current + 1) & 0xff);
