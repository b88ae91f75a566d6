/**
 * Read and write an environment where it lives: a file (written atomically: temporary
 * file, fsync, rename) or a region of a disk image / block device (written in place,
 * fsynced, read back and compared). A redundant write goes to the inactive copy only.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { replaceFileAtomically } from '../atomic-file.js';
import { EnvCrcError, EnvError } from '../errors.js';
import type { EnvConfig, EnvLocation } from './config.js';
import { checkName, currentCopy, decodeEnv, encodeData, headerSize, nextFlags, sealBlock, type EnvBlock, type EnvVars } from './format.js';

/** What {@link readEnv} found. */
export interface EnvReadResult {
  vars: EnvVars;
  /** Index of the copy the variables came from. */
  copy: 0 | 1;
  /** Flags byte of that copy (redundant only). */
  flags?: number;
  /** Padding byte of that copy, reused on the next write. */
  pad: number;
  /** Per copy: the decoded block or the error that copy gave. */
  copies: (EnvBlock | EnvError)[];
  /** True when every copy was bad and the caller's default was used. */
  usedDefault: boolean;
  /** Stored entries that are not name=value (skipped, as fw_printenv does). */
  skipped?: string[];
}

/** Options for reading. */
export interface ReadOptions {
  /** Use these variables when no copy is valid (never implicit). */
  default?: EnvVars;
}

const isBlockDevice = (path: string): boolean => {
  try {
    return statSync(path).isBlockDevice();
  } catch {
    return false;
  }
};

/** Size in bytes of a file or block device (block devices report 0 in stat). */
export function storageSize(path: string): number {
  const st = statSync(path);
  if (!st.isBlockDevice()) return st.size;
  const rdev = st.rdev;
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((Math.floor(rdev / 4096) & 0xfff00) >>> 0);
  const sectors = Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim());
  return sectors * 512;
}

function absoluteOffset(loc: EnvLocation): number {
  if (loc.offset >= 0) return loc.offset;
  return storageSize(loc.path) + loc.offset;
}

const describe = (loc: EnvLocation): string => `${loc.path}${loc.offset ? ` @ ${loc.offset < 0 ? '-' : ''}0x${Math.abs(loc.offset).toString(16)}` : ''}`;

function ioError(what: string, loc: EnvLocation, err: unknown): EnvError {
  return new EnvError('EENV_IO', `cannot ${what} ${describe(loc)}: ${(err as Error).message}`, { cause: err });
}

/** Read one copy's raw bytes; EENV_SIZE when the storage is too small for it. */
export function readRaw(loc: EnvLocation): Buffer {
  let fd: number;
  try {
    fd = openSync(loc.path, 'r');
  } catch (err) {
    throw ioError('open', loc, err);
  }
  try {
    const st = fstatSync(fd);
    const total = st.isBlockDevice() ? storageSize(loc.path) : st.size;
    const off = loc.offset >= 0 ? loc.offset : total + loc.offset;
    if (off < 0 || off + loc.size > total) {
      throw new EnvError(
        'EENV_SIZE',
        `${describe(loc)}: a 0x${loc.size.toString(16)}-byte environment does not fit in ${total} bytes of storage; check the size and offset`,
      );
    }
    const buf = Buffer.alloc(loc.size);
    let got = 0;
    while (got < loc.size) {
      const n = readSync(fd, buf, got, loc.size - got, off + got);
      if (n === 0) break;
      got += n;
    }
    if (got !== loc.size) throw new EnvError('EENV_SIZE', `${describe(loc)}: short read (${got} of ${loc.size} bytes)`);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** A file whose whole content is the environment (as opposed to a region of an image). */
function isWholeFile(config: EnvConfig): boolean {
  if (config.wholeFile) return true;
  const p = config.copies[0].path;
  if (isBlockDevice(p)) return false;
  if (!config.copies.every((c) => c.path === p && c.offset >= 0)) return false;
  const end = Math.max(...config.copies.map((c) => c.offset + c.size));
  try {
    return statSync(p).size === end;
  } catch {
    return false;
  }
}

/**
 * Read the environment. A single copy must be valid; of a redundant pair the valid copy
 * wins, and if both are valid the flags decide. If none is valid this throws (EENV_CRC
 * or EENV_FORMAT) unless `options.default` is given.
 */
export function readEnv(config: EnvConfig, options: ReadOptions = {}): EnvReadResult {
  const redundant = config.copies.length === 2;
  if (config.wholeFile) {
    // A plain env file must be exactly its blocks: a mismatch is a wrong --size, not corruption.
    const loc = config.copies[0];
    const want = loc.size * config.copies.length;
    let have: number;
    try {
      have = statSync(loc.path).size;
    } catch (err) {
      throw ioError('read', loc, err);
    }
    if (have !== want) {
      throw new EnvError('EENV_SIZE', `${loc.path} is ${have} bytes but ${redundant ? 'two copies' : 'one copy'} of a 0x${loc.size.toString(16)}-byte environment need ${want}: pass the right --size${redundant ? '' : ' (or --redundant)'}`);
    }
  }
  const copies = config.copies.map((loc): EnvBlock | EnvError => {
    const raw = readRaw(loc);
    try {
      return decodeEnv(raw, { redundant, where: describe(loc) });
    } catch (err) {
      if (err instanceof EnvError) return err;
      throw err;
    }
  });
  const ok = copies.map((c) => !(c instanceof EnvError));
  let pick: 0 | 1 | undefined;
  if (redundant) {
    const [a, b] = copies as [EnvBlock | EnvError, EnvBlock | EnvError];
    if (ok[0] && ok[1]) pick = currentCopy((a as EnvBlock).flags ?? 0, (b as EnvBlock).flags ?? 0, config.scheme);
    else if (ok[0]) pick = 0;
    else if (ok[1]) pick = 1;
  } else if (ok[0]) pick = 0;

  if (pick === undefined) {
    if (options.default) return { vars: new Map(options.default), copy: 0, pad: 0, copies, usedDefault: true };
    const first = copies[0] as EnvError;
    if (redundant && first instanceof EnvCrcError && copies[1] instanceof EnvError) {
      throw new EnvError('EENV_CRC', `both copies of the redundant environment are bad: ${first.message}; ${copies[1].message}`, { cause: first });
    }
    throw first;
  }
  const block = copies[pick] as EnvBlock;
  const r: EnvReadResult = { vars: block.vars, copy: pick, pad: block.pad, copies, usedDefault: false, skipped: block.skipped };
  if (block.flags !== undefined) r.flags = block.flags;
  return r;
}

function writeAt(loc: EnvLocation, data: Buffer): void {
  let fd: number;
  try {
    fd = openSync(loc.path, 'r+');
  } catch (err) {
    throw ioError('open for writing', loc, err);
  }
  try {
    const off = absoluteOffset(loc);
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, off + done);
    fsyncSync(fd);
  } catch (err) {
    throw err instanceof EnvError ? err : ioError('write', loc, err);
  } finally {
    closeSync(fd);
  }
  const back = readRaw(loc);
  if (!back.equals(data)) throw new EnvError('EENV_VERIFY', `${describe(loc)}: the environment read back differs from what was written; the storage may be failing`);
}

/** Replace a whole file atomically: write a sibling temp file, fsync, rename, fsync the directory. */
function replaceFile(path: string, content: Buffer): void {
  try {
    replaceFileAtomically(path, content, statSync(path).mode & 0o777);
  } catch (err) {
    throw new EnvError('EENV_IO', `cannot replace ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Where a write will go and with which flags. */
export interface WritePlan {
  copy: 0 | 1;
  flags?: number;
}

/**
 * Write variables (in the given order) to the environment: a single copy is replaced, a
 * redundant write goes to the inactive copy with the next flags. Encoding happens before
 * any I/O, so EENV_FULL or EENV_FORMAT leaves the storage untouched.
 */
export function writeEnv(config: EnvConfig, vars: Iterable<[string, string]>, previous?: EnvReadResult): WritePlan {
  const data = encodeData(vars);
  const redundant = config.copies.length === 2;
  const size = config.copies[0].size;
  const room = size - headerSize(redundant);
  if (data.length > room) {
    throw new EnvError('EENV_FULL', `the environment needs ${data.length} bytes but ${size} bytes hold only ${room}: nothing was written`);
  }
  const prev = previous ?? readEnv(config);
  const plan: WritePlan = { copy: 0 };
  if (redundant) {
    plan.copy = prev.usedDefault ? 0 : prev.copy === 0 ? 1 : 0;
    plan.flags = prev.usedDefault ? 1 : nextFlags(prev.flags ?? 0, config.scheme);
  }
  const block = sealBlock(data, { size, redundant, pad: prev.pad, ...(plan.flags !== undefined ? { flags: plan.flags } : {}) });
  const target = config.copies[plan.copy]!;
  if (isWholeFile(config)) {
    const whole = readFileSync(target.path);
    block.copy(whole, target.offset);
    if (redundant && config.scheme === 'boolean') whole[config.copies[plan.copy === 0 ? 1 : 0]!.offset + 4] = 0;
    if (config.inPlace) writeAt({ path: target.path, offset: 0, size: whole.length }, whole);
    else replaceFile(target.path, whole);
    const back = readRaw(target);
    if (!back.equals(block)) throw new EnvError('EENV_VERIFY', `${describe(target)}: the environment read back differs from what was written`);
  } else {
    writeAt(target, block);
    if (redundant && config.scheme === 'boolean') {
      // NOR: mark the old copy obsolete only after the new one is safely written.
      const old = config.copies[plan.copy === 0 ? 1 : 0]!;
      const raw = readRaw(old);
      raw[4] = 0;
      writeAt(old, raw);
    }
  }
  return plan;
}

/** A change: set `name` to a value, or delete it (undefined). */
export type EnvChange = [name: string, value: string | undefined];

/** Options for {@link updateEnv}. */
export interface UpdateOptions extends ReadOptions {
  /** Keep the stored order (new names appended). Default false: sorted, as U-Boot's saveenv and fw_setenv write. */
  keepOrder?: boolean;
}

/** Read, apply changes, write back; returns the new variables and where they went. */
export function updateEnv(config: EnvConfig, changes: EnvChange[], o: UpdateOptions = {}): { vars: EnvVars; plan: WritePlan } {
  for (const [name] of changes) checkName(name);
  const prev = readEnv(config, o);
  const vars: EnvVars = new Map(prev.vars);
  for (const [name, value] of changes) {
    if (value === undefined || value === '') vars.delete(name);
    else vars.set(name, value);
  }
  const ordered = o.keepOrder ? [...vars] : [...vars].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const plan = writeEnv(config, ordered, prev);
  return { vars: new Map(ordered), plan };
}
