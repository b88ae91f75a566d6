/**
 * Customisation at flash time: the first-boot settings (host name, SSH keys, time zone,
 * Wi-Fi: src/settings), console, extra kernel arguments and U-Boot variables, written into the card's uboot.env and its copy uboot.bak (the files the image's
 * layout names; through uboot-env and the kit's FAT code) and verified by reading them back.
 */
import { FlashError } from '../src/errors.js';
import { Fat32Reader, type ReadAt } from '../src/fat/index.js';
import { readLayout } from '../src/layout/index.js';
import { parseIpConfig } from '../src/net/ip-config.js';
import { applySettings, backslashProblem, settingsProblems, splitCmdline, type Settings } from '../src/settings/index.js';
import { decodeEnv, encodeEnv, hasControl } from '../src/uboot-env/index.js';
import type { Destination } from './destination.js';

/** What to change on the card: the first-boot settings, and U-Boot's own. */
export interface Customization extends Settings {
  /** Console for the kernel, e.g. `ttyS1,115200`: replaces every `console=`. */
  console?: string;
  /** Extra kernel arguments appended to bootargs. */
  cmdline?: string[];
  /** U-Boot variables to set (empty value deletes). */
  env?: Record<string, string>;
}

/** The longest kernel command line arm64 and arm kernels take (COMMAND_LINE_SIZE). */
export const KERNEL_CMDLINE_MAX = 2048;

/** Check customisation values before anything is flashed. */
export function validateCustomization(c: Customization): void {
  const problem = settingsProblems(c)[0];
  if (problem) throw new FlashError('ECUSTOMIZE', `${problem.field}: ${problem.message}`);
  if (c.console !== undefined && !/^[A-Za-z0-9]+(,\d+[noe]?\d?)?$/.test(c.console)) {
    throw new FlashError('ECUSTOMIZE', `console "${c.console}" is not like ttyS1,115200`);
  }
  for (const a of c.cmdline ?? []) {
    if (a === '' || hasControl(a)) throw new FlashError('ECUSTOMIZE', `kernel argument ${JSON.stringify(a)} is empty or holds a control character`);
    const bs = backslashProblem(a);
    if (bs) throw new FlashError('ECUSTOMIZE', `kernel argument ${JSON.stringify(a)} ${bs} (bootargs is a U-Boot variable)`);
    // The kernel splits its command line at spaces outside double quotes (lib/cmdline.c).
    if ((a.match(/"/g) ?? []).length % 2 !== 0) throw new FlashError('ECUSTOMIZE', `kernel argument ${JSON.stringify(a)} has an unbalanced double quote: the kernel would run it into the next argument`);
    if (/\s/.test(a.replace(/"[^"]*"/g, ''))) throw new FlashError('ECUSTOMIZE', `kernel argument ${JSON.stringify(a)} must be one word (quote spaces: name="a b")`);
    // The board's init reads ip= (the kernel's syntax): a value it could not use is refused here.
    if (a.startsWith('ip=')) {
      const c = parseIpConfig(a.slice(3));
      if ('error' in c) throw new FlashError('ECUSTOMIZE', c.error);
    }
  }
  for (const [k, v] of Object.entries(c.env ?? {})) {
    if (!k || /[\s=]/.test(k) || hasControl(k)) throw new FlashError('ECUSTOMIZE', `U-Boot variable name ${JSON.stringify(k)} is not valid: no "=", spaces or control characters`);
    if (v.includes('\0')) throw new FlashError('ECUSTOMIZE', `U-Boot variable ${k}: a value cannot hold a NUL byte`);
    const bs = backslashProblem(v);
    if (bs) throw new FlashError('ECUSTOMIZE', `U-Boot variable ${k}: its value ${bs}`);
  }
}

/** Apply the customisation to an environment's variables. */
export function applyCustomization(vars: Map<string, string>, c: Customization): Map<string, string> {
  const consoleSet = new Map(vars);
  if (c.console !== undefined) consoleSet.set('bootargs', [...splitCmdline(vars.get('bootargs') ?? '').filter((a) => !a.startsWith('console=')), `console=${c.console}`].join(' '));
  const out = applySettings(consoleSet, c);
  if (c.cmdline?.length) out.set('bootargs', [...splitCmdline(out.get('bootargs') ?? ''), ...c.cmdline].join(' '));
  for (const [k, v] of Object.entries(c.env ?? {})) {
    if (v === '') out.delete(k);
    else out.set(k, v);
  }
  return out;
}

/** What customisation will write: the new uboot.env bytes and where they go on the card. */
export interface CustomizationPlan {
  /** Byte ranges of the card (absolute) with their new content. */
  writes: { offset: number; data: Buffer }[];
  /** The variables as they must read back. */
  wanted: Map<string, string>;
  /** Variables that must no longer be there. */
  deleted: string[];
  /** The environment files written, each read back. */
  files: string[];
}

/**
 * Work out the customisation from the image itself, before any card is touched: the
 * card's uboot.env must exist, the new variables must fit its size (EENV_FULL) and the
 * kernel command line must stay within the kernel's limit (ECUSTOMIZE).
 */
export function planCustomization(read: ReadAt, label: string, c: Customization): CustomizationPlan {
  validateCustomization(c);
  let layout;
  try {
    layout = readLayout(read, label);
  } catch (err) {
    throw new FlashError('ECUSTOMIZE', `${label}: cannot customise: ${(err as Error).message}`, undefined, { cause: err });
  }
  const part = layout.boot;
  const { file, backup } = layout.layout.env;
  let fat: Fat32Reader | undefined;
  let extents: { offset: number; length: number }[];
  let backupExtents: { offset: number; length: number }[];
  let raw: Buffer;
  try {
    fat = new Fat32Reader(read, part.offset);
    extents = fat.fileExtents(file);
    backupExtents = fat.fileExtents(backup);
    raw = fat.readFile(file);
  } catch (err) {
    throw new FlashError('ECUSTOMIZE', `${label}: the boot partition has no readable ${file} and ${backup} to customise (${(err as Error).message})`, undefined, { cause: err });
  } finally {
    fat?.close();
  }
  const before = decodeEnv(raw, { where: `${label}: ${file}` });
  const wanted = applyCustomization(before.vars, c);
  const bootargs = wanted.get('bootargs') ?? '';
  if (Buffer.byteLength(bootargs) >= KERNEL_CMDLINE_MAX) {
    throw new FlashError('ECUSTOMIZE', `the kernel command line would be ${Buffer.byteLength(bootargs)} bytes; the kernel takes at most ${KERNEL_CMDLINE_MAX - 1}: shorten --cmdline`);
  }
  // EENV_FULL (its own code) when the variables do not fit the card's environment.
  const block = encodeEnv([...wanted], { size: raw.length, pad: before.pad });
  const writes: CustomizationPlan['writes'] = [];
  // The copy first, then uboot.env: a cut at any point leaves one of them whole (boot.scr reads either).
  for (const ex of [backupExtents, extents]) {
    let pos = 0;
    for (const e of ex) {
      writes.push({ offset: part.offset + e.offset, data: block.subarray(pos, pos + e.length) });
      pos += e.length;
    }
  }
  return { writes, wanted, deleted: [...before.vars.keys()].filter((k) => !wanted.has(k)), files: [backup, file] };
}

/** Write a planned customisation to a card and read it back. */
export async function customizeCard(card: Pick<Destination, 'device' | 'write' | 'sync' | 'dropCache' | 'readSync'>, plan: CustomizationPlan): Promise<Map<string, string>> {
  const { device } = card;
  for (const w of plan.writes) await card.write(w.data, w.offset);
  await card.sync();
  card.dropCache();
  const { boot } = readLayout(card.readSync, device);
  const check = new Fat32Reader(card.readSync, boot.offset);
  try {
    let vars = new Map<string, string>();
    for (const file of plan.files) {
      const back = decodeEnv(check.readFile(file), { where: `${device}: ${file}` });
      for (const [k, v] of plan.wanted) {
        if (back.vars.get(k) !== v) throw new FlashError('ECUSTOMIZE', `${device}: ${k} reads back from ${file} as ${JSON.stringify(back.vars.get(k))}, not ${JSON.stringify(v)}`, device);
      }
      for (const k of plan.deleted) if (back.vars.has(k)) throw new FlashError('ECUSTOMIZE', `${device}: ${k} should be deleted but reads back from ${file}`, device);
      vars = back.vars;
    }
    return vars;
  } finally {
    check.close();
  }
}
