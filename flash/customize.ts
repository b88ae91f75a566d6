/**
 * Customisation at flash time: hostname, console, extra kernel arguments and U-Boot
 * variables, written into the card's uboot.env (through uboot-env and the kit's FAT code)
 * and verified by reading them back from the card.
 */
import type { FileHandle } from 'node:fs/promises';
import { FlashError } from '../src/errors.js';
import { bootPartition } from '../src/emulate/index.js';
import { Fat32Reader } from '../src/image/fat-read.js';
import { decodeEnv, encodeEnv } from '../src/uboot-env/index.js';

/** What to change on the card. */
export interface Customization {
  /** Host name (RFC 1123 label): `nodeos.hostname=` on the kernel command line and U-Boot's `hostname`. */
  hostname?: string;
  /** Console for the kernel, e.g. `ttyS1,115200`: replaces every `console=`. */
  console?: string;
  /** Extra kernel arguments appended to bootargs. */
  cmdline?: string[];
  /** U-Boot variables to set (empty value deletes). */
  env?: Record<string, string>;
}

const ENV_FILE = 'uboot.env';

/** Check customisation values before anything is flashed. */
export function validateCustomization(c: Customization): void {
  if (c.hostname !== undefined && !/^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/.test(c.hostname)) {
    throw new FlashError('ECUSTOMIZE', `hostname "${c.hostname}" is not valid: 1-63 letters, digits and dashes, not starting or ending with a dash`);
  }
  if (c.console !== undefined && !/^[A-Za-z0-9]+(,\d+[noe]?\d?)?$/.test(c.console)) {
    throw new FlashError('ECUSTOMIZE', `console "${c.console}" is not like ttyS1,115200`);
  }
  for (const a of c.cmdline ?? []) if (/\s/.test(a) || a === '') throw new FlashError('ECUSTOMIZE', `kernel argument ${JSON.stringify(a)} must be one word`);
  for (const k of Object.keys(c.env ?? {})) if (!k || k.includes('=')) throw new FlashError('ECUSTOMIZE', `U-Boot variable name "${k}" is not valid`);
}

/** Apply the customisation to an environment's variables. */
export function applyCustomization(vars: Map<string, string>, c: Customization): Map<string, string> {
  const out = new Map(vars);
  let args = (out.get('bootargs') ?? '').split(/\s+/).filter(Boolean);
  if (c.console !== undefined) args = [...args.filter((a) => !a.startsWith('console=')), `console=${c.console}`];
  if (c.hostname !== undefined) {
    args = [...args.filter((a) => !a.startsWith('nodeos.hostname=')), `nodeos.hostname=${c.hostname}`];
    out.set('hostname', c.hostname);
  }
  args.push(...(c.cmdline ?? []));
  if (c.console !== undefined || c.hostname !== undefined || (c.cmdline?.length ?? 0) > 0) out.set('bootargs', args.join(' '));
  for (const [k, v] of Object.entries(c.env ?? {})) {
    if (v === '') out.delete(k);
    else out.set(k, v);
  }
  return out;
}

/** Rewrite uboot.env on the card in place and read it back. */
export async function customizeCard(fh: FileHandle, device: string, c: Customization, flush: () => void): Promise<Map<string, string>> {
  const part = bootPartition(device);
  const fat = new Fat32Reader(device, part.offset);
  let extents: { offset: number; length: number }[];
  let raw: Buffer;
  try {
    extents = fat.fileExtents(ENV_FILE);
    raw = fat.readFile(ENV_FILE);
  } catch (err) {
    throw new FlashError('ECUSTOMIZE', `${device}: the boot partition has no readable ${ENV_FILE} to customise (${(err as Error).message})`, device, { cause: err });
  } finally {
    fat.close();
  }
  const before = decodeEnv(raw);
  const wanted = applyCustomization(before.vars, c);
  const block = encodeEnv([...wanted], { size: raw.length, pad: before.pad });
  let pos = 0;
  for (const e of extents) {
    await fh.write(block, pos, e.length, part.offset + e.offset);
    pos += e.length;
  }
  await fh.datasync();
  flush();
  const check = new Fat32Reader(device, part.offset);
  try {
    const back = decodeEnv(check.readFile(ENV_FILE));
    for (const [k, v] of wanted) {
      if (back.vars.get(k) !== v) throw new FlashError('ECUSTOMIZE', `${device}: ${k} reads back as ${JSON.stringify(back.vars.get(k))}, not ${JSON.stringify(v)}`, device);
    }
    for (const k of before.vars.keys()) if (!wanted.has(k) && back.vars.has(k)) throw new FlashError('ECUSTOMIZE', `${device}: ${k} should be deleted but reads back`, device);
    return back.vars;
  } finally {
    check.close();
  }
}
