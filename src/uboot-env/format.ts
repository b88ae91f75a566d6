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
  /** Stored entries without `=`: skipped as U-Boot's tools do, and not written back. */
  skipped: string[];
}

/**
 * Environments are bytes, and U-Boot keeps whatever bytes a value holds. Bytes that are not
 * UTF-8 are carried in strings as lone surrogates U+DC80..U+DCFF (Python's
 * "surrogateescape"), so decode -> edit -> encode writes every other variable back
 * byte for byte, as fw_setenv does.
 */
export function bytesToText(buf: Uint8Array, start = 0, end = buf.length): string {
  let out = '';
  let i = start;
  const cont = (k: number): boolean => k < end && (buf[k]! & 0xc0) === 0x80;
  while (i < end) {
    const b = buf[i]!;
    let cp = -1;
    let n = 1;
    if (b < 0x80) cp = b;
    else if (b >= 0xc2 && b <= 0xdf && cont(i + 1)) {
      cp = ((b & 0x1f) << 6) | (buf[i + 1]! & 0x3f);
      n = 2;
    } else if (b >= 0xe0 && b <= 0xef && cont(i + 1) && cont(i + 2)) {
      cp = ((b & 0x0f) << 12) | ((buf[i + 1]! & 0x3f) << 6) | (buf[i + 2]! & 0x3f);
      n = 3;
      if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) cp = -1; // overlong, or a surrogate
    } else if (b >= 0xf0 && b <= 0xf4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      cp = ((b & 0x07) << 18) | ((buf[i + 1]! & 0x3f) << 12) | ((buf[i + 2]! & 0x3f) << 6) | (buf[i + 3]! & 0x3f);
      n = 4;
      if (cp < 0x10000 || cp > 0x10ffff) cp = -1;
    }
    if (cp < 0) {
      out += String.fromCharCode(0xdc00 + b);
      i += 1;
    } else {
      out += String.fromCodePoint(cp);
      i += n;
    }
  }
  return out;
}

/** The bytes of a string from {@link bytesToText}: escaped bytes come back as they were. */
export function textToBytes(s: string): Buffer {
  const parts: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff && !(i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff)) {
      parts.push(c - 0xdc00);
      continue;
    }
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    parts.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
  }
  return Buffer.from(parts);
}

/** Size of the header before the data area. */
export const headerSize = (redundant: boolean): number => (redundant ? 5 : 4);

/** Whether a string holds a control character (C0 or DEL). */
export const hasControl = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** Check a variable name to be written: non-empty, no `=`, no whitespace or control characters. */
export function checkName(name: string): void {
  if (name.length === 0) throw new EnvError('EENV_FORMAT', 'empty variable name');
  if (name.includes('=')) throw new EnvError('EENV_FORMAT', `variable name "${name}" contains "=": names cannot contain it`);
  if (/\s/.test(name) || hasControl(name)) throw new EnvError('EENV_FORMAT', `variable name ${JSON.stringify(name)} contains whitespace or a control character: U-Boot could not set or print it`);
}

/** The data area's text: `name=value\0...\0`. */
export function encodeData(vars: Iterable<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of vars) {
    // Only what cannot be stored is refused here; new names are checked with checkName
    // where they come in, so an entry read from the card (even an odd one) is kept.
    if (name.includes('=') || name.includes('\0')) throw new EnvError('EENV_FORMAT', `variable name ${JSON.stringify(name)} cannot be stored (it holds "=" or a NUL byte)`);
    if (value.includes('\0')) throw new EnvError('EENV_FORMAT', `value of "${name}" contains a NUL byte`);
    parts.push(textToBytes(`${name}=${value}\0`));
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
  const skipped: string[] = [];
  let pos = hs;
  for (;;) {
    if (pos >= buf.length) throw new EnvError('EENV_FORMAT', `${where}: the variables are not terminated by a double NUL`);
    if (buf[pos] === 0) break;
    const end = buf.indexOf(0, pos);
    if (end < 0) throw new EnvError('EENV_FORMAT', `${where}: the last variable is not NUL-terminated`);
    const entry = bytesToText(buf, pos, end);
    const eq = entry.indexOf('=');
    // As libubootenv's fw_printenv: an entry without "=" is skipped (we say so), one with an
    // empty name is kept (and written back, as fw_setenv does).
    if (eq < 0) skipped.push(entry);
    else vars.set(entry.slice(0, eq), entry.slice(eq + 1));
    pos = end + 1;
  }
  const result: EnvBlock = { vars, crc: stored, pad: pos + 1 < buf.length ? buf[pos + 1]! : 0, used: pos + 1 - hs, skipped };
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
