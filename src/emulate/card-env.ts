/**
 * The emulated card's kernel arguments. Through U-Boot the kernel gets the card's `bootargs`
 * (uboot.env, which boot.scr imports), so what an emulated boot adds (the console QEMU's
 * model of the board can carry, the profile's emulation arguments, `emulate --append`) is
 * written into the environment on the emulated card: the qcow2 overlay, never the image,
 * as `flash --cmdline` would on a real card. The card's own bootargs are kept beside them
 * (CARD_BOOTARGS), so a kept overlay gets the same change again, not a longer one each run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BspError } from '../errors.js';
import { Fat32Reader, type ReadAt } from '../fat/index.js';
import type { ImageLayout } from '../layout/index.js';
import { decodeEnv, encodeEnv } from '../uboot-env/index.js';
import { backslashProblem } from '../settings/env.js';

/** The variable that keeps the card's own bootargs once an emulated boot changed them. */
export const CARD_BOOTARGS = 'emulate_card_bootargs';

/**
 * The environment an emulated boot through U-Boot starts with: bootargs are the card's own
 * followed by `args`; undefined when nothing changes (no arguments, and none added before).
 */
export function emulatedEnv(vars: Map<string, string>, args: string[]): Map<string, string> | undefined {
  for (const a of args) {
    const bs = backslashProblem(a);
    if (bs) throw new BspError('EUSAGE', `--append ${JSON.stringify(a)} ${bs} (through U-Boot it goes into bootargs; --direct passes it as it is)`);
  }
  const own = vars.get(CARD_BOOTARGS);
  if (own === undefined && args.length === 0) return undefined;
  const base = own ?? vars.get('bootargs') ?? '';
  const out = new Map(vars);
  if (args.length === 0) {
    // Back to the card's own: nothing of an earlier emulated run stays.
    out.set('bootargs', base);
    out.delete(CARD_BOOTARGS);
  } else {
    out.set(CARD_BOOTARGS, base);
    out.set('bootargs', [base, ...args].filter(Boolean).join(' '));
  }
  return out;
}

function run(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new BspError('ETOOL', `${cmd} (${what}): ${r.error?.message ?? r.stderr.trim()} (apt-get install qemu-utils)`);
}

/**
 * Bytes of a qcow2 file as the guest sees them, at any offset: QEMU's raw driver with an
 * offset and size over the qcow2 node (qemu-img dd counts its skipped blocks in count=).
 */
export function qcow2ReadAt(file: string, tmp: string): ReadAt {
  const path = file.replace(/,/g, ',,');
  return (position, length) => {
    const first = Math.floor(position / 512) * 512;
    const size = Math.ceil((position + length) / 512) * 512 - first;
    const out = join(tmp, 'read');
    run('qemu-img', ['convert', '-O', 'raw', '--image-opts', `driver=raw,offset=${first},size=${size},file.driver=qcow2,file.file.driver=file,file.file.filename=${path}`, out], `reading ${file}`);
    const b = readFileSync(out);
    rmSync(out);
    return b.subarray(position - first, position - first + length);
  };
}

/** Write `data` at `position` of a qcow2 file as the guest will read it (qemu-io). */
function qcow2Write(file: string, position: number, data: Buffer, tmp: string): void {
  const src = join(tmp, 'write');
  writeFileSync(src, data);
  run('qemu-io', ['-f', 'qcow2', '-c', `write -s ${src} ${position} ${data.length}`, file], `writing ${file}`);
  rmSync(src);
}

/**
 * Put `args` after the card's own bootargs in each readable copy of the environment on the
 * emulated card `overlay` (its boot partition at `bootOffset`). Returns the bootargs the
 * kernel will get, or undefined when nothing was to change. EENV_CRC when no copy is readable
 * and there are arguments to add (boot.scr would boot with the build's defaults, without them).
 */
export function setEmulatedBootargs(overlay: string, layout: ImageLayout, bootOffset: number, args: string[]): string | undefined {
  const tmp = mkdtempSync(join(tmpdir(), 'nodeos-card-env-'));
  try {
    const readAt = qcow2ReadAt(overlay, tmp);
    const fat = new Fat32Reader(readAt, bootOffset);
    let bootargs: string | undefined;
    let readable = 0;
    for (const file of [layout.env.file, layout.env.backup]) {
      if (!fat.stat(file)) continue;
      let vars: Map<string, string>;
      try {
        vars = decodeEnv(fat.readFile(file), { where: file }).vars;
      } catch {
        continue; // Damaged: boot.scr does not use it either; left as it is.
      }
      readable++;
      const next = emulatedEnv(vars, args);
      if (!next) continue;
      const block = encodeEnv(next, { size: layout.env.size });
      const extents = fat.fileExtents(file);
      if (extents.reduce((n, e) => n + e.length, 0) !== block.length) throw new BspError('EENV_SIZE', `${file} on the emulated card is not ${block.length} bytes: rebuild the image`);
      let at = 0;
      for (const e of extents) {
        qcow2Write(overlay, bootOffset + e.offset, block.subarray(at, at + e.length), tmp);
        at += e.length;
      }
      bootargs ??= next.get('bootargs');
    }
    if (readable === 0 && args.length > 0) {
      throw new BspError('EENV_CRC', `neither ${layout.env.file} nor ${layout.env.backup} on the emulated card is readable, so the kernel arguments ${args.join(' ')} cannot reach the kernel: rebuild or reflash, or start again without --overlay`);
    }
    return bootargs;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
