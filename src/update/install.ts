/**
 * Installing a bundle into a slot, the same steps for a card in a reader (flash/update.ts)
 * and for the running board (runtime/update.ts), which differ only in how they reach the
 * card ({@link SlotTarget}):
 *
 *   1. the signature and the layout are checked (before anything is written);
 *   2. the slot is emptied in the environment (a cut from here on leaves it never picked);
 *   3. the system image goes to the slot's partition, hashed as it is written, read back;
 *   4. the kernel and initramfs go to the slot's folder on the boot partition, read back;
 *   5. the slot is activated: preferred, with `bootlimit` tries; the running system is untouched.
 */
import { createHash } from 'node:crypto';
import { BspError } from '../errors.js';
import type { ReadAt } from '../fat/index.js';
import { activateSlot, beginInstall, partitionBytes, systemPartition, type ImageLayout, type Slot } from '../layout/index.js';
import { checkCompatible, openBundle, verifyBundle, type Bundle } from './bundle.js';
import type { TrustedKey } from './keys.js';

/** How an install reaches the card. */
export interface SlotTarget {
  /** The card's layout. */
  layout: ImageLayout;
  /** The keys the card's running (or preferred) system trusts. */
  trustedKeys(): TrustedKey[];
  /** The version of the system the card runs (or boots next); undefined when no version is recorded. */
  runningVersion?(): number | undefined;
  /** The U-Boot environment (uboot.env, or its copy when uboot.env is unreadable). */
  readEnv(): Map<string, string>;
  /** Write the whole environment (the copy first, then uboot.env). */
  writeEnv(vars: Map<string, string>): void;
  /** Write / read bytes of a slot's system partition (offsets within the partition). */
  writeSystem(slot: Slot, offset: number, data: Buffer): void;
  readSystem(slot: Slot, offset: number, length: number): Buffer;
  /** Make the system partition's writes durable. */
  syncSystem(slot: Slot): void;
  /** Replace / read a file on the boot partition (e.g. slot-b/Image.gz). */
  writeBootFile(path: string, data: Buffer): void;
  readBootFile(path: string): Buffer;
}

/** Progress of an install, by step. */
export type InstallStep = 'verify' | 'prepare' | 'system' | 'boot-files' | 'activate';

/** What an install did. */
export interface InstallResult {
  slot: Slot;
  build: string;
  signedBy: string;
  bytes: number;
}

const CHUNK = 4 << 20;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Check a bundle against the target (signature, board, layout) without writing: EUPDATE_* on any problem. */
export function checkBundle(read: ReadAt, size: number, label: string, target: SlotTarget): { bundle: Bundle; key: TrustedKey } {
  const bundle = openBundle(read, size, label);
  const key = verifyBundle(bundle, target.trustedKeys(), label);
  checkCompatible(bundle, target.layout, label);
  return { bundle, key };
}

/** Let other work run between chunks (the board's REPL stays responsive while a slot is written). */
const yieldNow = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A signed bundle older than the running system (an old build with a known hole, replayed) is
 * refused unless the user says --allow-downgrade: EUPDATE_DOWNGRADE, nothing written.
 */
export function downgradeProblem(bundleVersion: number | undefined, running: number | undefined, label: string): BspError | undefined {
  if (running === undefined) return undefined;
  const v = bundleVersion ?? 0;
  if (v >= running) return undefined;
  const when = (n: number): string => new Date(n * 1000).toISOString().replace('.000Z', 'Z');
  return new BspError('EUPDATE_DOWNGRADE', `${label} is version ${v}${v ? ` (${when(v)})` : ' (none recorded)'}, older than the running system's ${running} (${when(running)}): nothing was written; pass --allow-downgrade (board.system.update(src, { allowDowngrade: true })) to go back on purpose`);
}

/** Install the bundle into `slot` (the one not running). */
export async function installBundle(read: ReadAt, size: number, label: string, target: SlotTarget, slot: Slot, onStep: (s: InstallStep) => void = () => undefined, o: { allowDowngrade?: boolean } = {}): Promise<InstallResult> {
  onStep('verify');
  const { bundle, key } = checkBundle(read, size, label, target);
  const h = bundle.header;
  // After the signature: the version is one the signer set.
  const older = o.allowDowngrade ? undefined : downgradeProblem(h.version, target.runningVersion?.(), label);
  if (older) throw older;
  const part = partitionBytes(systemPartition(target.layout, slot));
  if (h.files.system.size > part.size) throw new BspError('EUPDATE_LAYOUT', `${label}: the system is ${h.files.system.size} bytes but slot ${slot} holds ${part.size}`);

  onStep('prepare');
  target.writeEnv(beginInstall(target.readEnv(), slot));

  onStep('system');
  const hash = createHash('sha256');
  for (let done = 0; done < h.files.system.size; ) {
    const n = Math.min(CHUNK, h.files.system.size - done);
    const data = read(h.files.system.offset + done, n);
    if (data.length !== n) throw new BspError('EUPDATE_BUNDLE', `${label} ends early (truncated?): slot ${slot} is left empty, the running system is unchanged`);
    hash.update(data);
    target.writeSystem(slot, done, data);
    done += n;
    await yieldNow();
  }
  if (hash.digest('hex') !== h.files.system.sha256) throw new BspError('EUPDATE_HASH', `${label}: the system image does not match its signed hash (damaged bundle): slot ${slot} is left empty, the running system is unchanged`);
  target.syncSystem(slot);
  const back = createHash('sha256');
  for (let done = 0; done < h.files.system.size; ) {
    const n = Math.min(CHUNK, h.files.system.size - done);
    back.update(target.readSystem(slot, done, n));
    done += n;
    await yieldNow();
  }
  if (back.digest('hex') !== h.files.system.sha256) throw new BspError('EVERIFY', `slot ${slot}'s partition reads back different from what was written: the card may be failing; slot ${slot} is left empty`);

  onStep('boot-files');
  const files = target.layout.boot.slots[slot];
  for (const [f, path] of [['kernel', files.kernel], ['initramfs', files.initramfs]] as const) {
    const data = read(h.files[f].offset, h.files[f].size);
    if (sha(data) !== h.files[f].sha256) throw new BspError('EUPDATE_HASH', `${label}: the ${f} does not match its signed hash (damaged bundle): slot ${slot} is left empty`);
    await yieldNow();
    target.writeBootFile(path, data);
    if (sha(target.readBootFile(path)) !== h.files[f].sha256) throw new BspError('EVERIFY', `${path} reads back different from what was written: slot ${slot} is left empty`);
  }

  onStep('activate');
  target.writeEnv(activateSlot(target.readEnv(), slot, h.build, target.layout.bootlimit, h.version));
  return { slot, build: h.build, signedBy: key.id, bytes: h.files.system.size + h.files.kernel.size + h.files.initramfs.size };
}
