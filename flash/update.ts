/**
 * `nodeos-bsp update BUNDLE --device D`: install an update bundle into the slot a card in a
 * reader does not boot, through the same steps as the board (src/update/install.ts). The
 * card's layout.json says where everything is; its uboot.env and uboot.bak are rewritten in
 * place (their size never changes), the slot's kernel and initramfs through mtools (FAT
 * allocation is mtools' job), the system image straight to its partition.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, fsyncSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BspError, FlashError } from '../src/errors.js';
import { Fat32Reader, fileReadAt, readFullyAt } from '../src/fat/index.js';
import { nextBoot, otherSlot, partitionBytes, readCardEnv, readLayoutAt, slotVersion, systemPartition, type ImageLayout, type Slot } from '../src/layout/index.js';
import { encodeEnv, storageSize } from '../src/uboot-env/index.js';
import { installBundle, parseTrustedKeys, TRUSTED_KEYS_PATH, type InstallResult, type InstallStep, type SlotTarget, type TrustedKey } from '../src/update/index.js';
import { listDrives, resolveTarget, type ScanOptions } from './drives.js';

/** Options of {@link updateCard}. */
export interface CardUpdateOptions {
  /** Allow a regular file (an image) as the target. */
  forceFile?: boolean;
  scan?: ScanOptions;
  onStep?: (s: InstallStep) => void;
  /** Install a bundle older than the card's running system (EUPDATE_DOWNGRADE otherwise). */
  allowDowngrade?: boolean;
}

/** mtools on the card's boot partition (MTOOLS_SKIP_CHECK: the kit's FAT geometry is not a floppy's). */
function mtools(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) throw new BspError('ETOOL', `${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.toString().trim()} (apt-get install mtools)`);
}

/** The keys the card's preferred system trusts, read from its squashfs with unsquashfs. */
function cardTrustedKeys(device: string, layout: ImageLayout, slot: Slot): TrustedKey[] {
  const part = partitionBytes(systemPartition(layout, slot));
  const read = fileReadAt(device);
  const sb = read(part.offset, 96);
  if (sb.toString('latin1', 0, 4) !== 'hsqs') throw new BspError('EUPDATE', `${device}: slot ${slot} holds no system to take the trusted keys from`);
  const dir = mkdtempSync(join(tmpdir(), 'nodeos-update-'));
  try {
    const img = join(dir, 'system.squashfs');
    writeFileSync(img, read(part.offset, Math.ceil(Number(sb.readBigUInt64LE(40)) / 4096) * 4096));
    const r = spawnSync('unsquashfs', ['-cat', img, TRUSTED_KEYS_PATH], { stdio: ['ignore', 'pipe', 'pipe'] });
    // A system built before signed updates has no list: it trusts nothing.
    if (r.status !== 0) return [];
    return parseTrustedKeys(r.stdout.toString('utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A card (block device or image file) as an install target. */
function cardTarget(device: string): { target: SlotTarget; slot: Slot; close: () => void } {
  const { layout, boot } = readLayoutAt(device);
  const fd = openSync(device, 'r+');
  const readAt = (pos: number, len: number): Buffer => readFullyAt(fd, pos, len);
  const write = (pos: number, data: Buffer): void => {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, pos + done);
  };
  const fat = (): Fat32Reader => new Fat32Reader(readAt, boot.offset);
  const cardEnv = (): Map<string, string> | undefined => readCardEnv((f) => fat().readFile(f), layout);
  const vars = cardEnv();
  if (!vars) throw new BspError('EENV_CRC', `${device}: neither ${layout.env.file} nor ${layout.env.backup} is readable: reflash the card`);
  // The slot U-Boot boots next is the running one; the update goes to the other.
  const slot = otherSlot(nextBoot(vars, layout.bootlimit).slot);
  const img = `${device}@@${boot.offset}`;
  const target: SlotTarget = {
    layout,
    trustedKeys: () => cardTrustedKeys(device, layout, otherSlot(slot)),
    runningVersion: () => slotVersion(cardEnv() ?? new Map(), otherSlot(slot)),
    readEnv: () => cardEnv()!,
    writeEnv: (v) => {
      const block = encodeEnv([...v].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), { size: layout.env.size, pad: 0 });
      // The copy first, then uboot.env, each in place and read back.
      for (const file of [layout.env.backup, layout.env.file]) {
        const f = fat();
        let pos = 0;
        for (const e of f.fileExtents(file)) {
          write(boot.offset + e.offset, block.subarray(pos, pos + e.length));
          pos += e.length;
        }
        fsyncSync(fd);
        if (!fat().readFile(file).equals(block)) throw new BspError('EVERIFY', `${device}: ${file} reads back different from what was written`);
      }
    },
    writeSystem: (s, offset, data) => write(partitionBytes(systemPartition(layout, s)).offset + offset, data),
    readSystem: (s, offset, length) => readAt(partitionBytes(systemPartition(layout, s)).offset + offset, length),
    syncSystem: () => {
      fsyncSync(fd);
      // A card: drop its cached pages so that the read-back reads the card (as flash verifies).
      if (!fstatSync(fd).isBlockDevice()) return;
      const r = spawnSync('blockdev', ['--flushbufs', device], { encoding: 'utf8' });
      if (r.status !== 0) throw new BspError('EVERIFY', `${device}: blockdev --flushbufs failed (${r.error?.message ?? r.stderr.trim()}): cannot read the slot back from the card`);
    },
    writeBootFile: (path, data) => {
      fsyncSync(fd);
      const dir = path.split('/').slice(0, -1).join('/');
      if (dir && !fat().stat(dir)) mtools('mmd', ['-i', img, `::${dir}`]);
      const tmp = mkdtempSync(join(tmpdir(), 'nodeos-update-'));
      try {
        writeFileSync(join(tmp, 'f'), data);
        mtools('mcopy', ['-o', '-i', img, join(tmp, 'f'), `::${path}`]);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
    readBootFile: (path) => fat().readFile(path),
  };
  return { target, slot, close: () => closeSync(fd) };
}

/** Install `bundle` into the card's other slot. */
export async function updateCard(bundle: string, device: string, o: CardUpdateOptions = {}): Promise<InstallResult> {
  const t = resolveTarget(device, listDrives(o.scan));
  if ('file' in t) {
    if (!o.forceFile) throw new FlashError('ENOT_BLOCK', `${device} is not a block device: pass --force-file to update an image file`, device);
  } else {
    if (t.isSystem) throw new FlashError('ESYSTEM_DRIVE', `${t.device} is a system drive (${t.systemReasons.join('; ')}): refusing to write it`, t.device);
    if (t.readOnly) throw new FlashError('EREAD_ONLY', `${t.device} is read-only (write-protect switch on the card or adapter?)`, t.device);
  }
  const { target, slot, close } = cardTarget(device);
  const bfd = openSync(bundle, 'r');
  try {
    const size = fstatSync(bfd).isBlockDevice() ? storageSize(bundle) : fstatSync(bfd).size;
    return await installBundle((p, n) => readFullyAt(bfd, p, n), size, bundle, target, slot, o.onStep, { allowDowngrade: Boolean(o.allowDowngrade) });
  } finally {
    closeSync(bfd);
    close();
  }
}
