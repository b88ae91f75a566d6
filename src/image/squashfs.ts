/**
 * The system slot's filesystem: squashfs, written by Debian's mksquashfs from a staging
 * tree. Why squashfs and this tool: Debian's kernel has it (module `squashfs`, with zstd),
 * the kernel pages it in on demand instead of holding it in RAM like the initramfs did, and
 * squashfs-tools writes it reproducibly (same files, times and owner: the same bytes), where
 * bookworm's erofs-utils 1.5 compresses only with lz4 or lzma (about 45% larger than zstd,
 * or slower to read, on this system).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Cache } from '../artifacts/index.js';
import { BspError } from '../errors.js';
import type { CpioEntry } from '../cpio/index.js';

/** zstd level 19 in 1 MiB blocks: a 41 MB system for a Pi 3, against 45 MB in 128 KiB blocks (docs/updates.md). */
export const SQUASHFS_OPTIONS = ['-comp', 'zstd', '-Xcompression-level', '19', '-b', '1M'];

/** Write the entries (files, directories, symlinks; device nodes are refused) to a directory. */
function stage(entries: CpioEntry[], root: string): void {
  // Parents before children, whatever the input order.
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const p = join(root, e.path.replace(/^\/+/, ''));
    mkdirSync(dirname(p), { recursive: true });
    switch (e.type) {
      case 'dir':
        mkdirSync(p, { recursive: true });
        chmodSync(p, e.mode ?? 0o755);
        break;
      case 'file':
        writeFileSync(p, e.data);
        chmodSync(p, e.mode ?? 0o644);
        break;
      case 'symlink':
        symlinkSync(e.target, p);
        break;
      default:
        throw new BspError('EIMAGE', `${e.path}: device nodes do not belong in the system slot (devtmpfs provides them)`);
    }
  }
}

/** A squashfs image of the entries, every time `mtime` and every owner root; cached by content. */
export function squashfsImage(entries: CpioEntry[], mtime: number, cache: Cache): Buffer {
  const h = createHash('sha256').update(JSON.stringify([SQUASHFS_OPTIONS, mtime]));
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    h.update(JSON.stringify([e.path, e.type, 'mode' in e ? (e.mode ?? null) : null, e.type === 'symlink' ? e.target : null]));
    if (e.type === 'file') h.update(createHash('sha256').update(e.data).digest());
  }
  return cache.derivedFile(`system-${h.digest('hex')}.squashfs`, () => {
    mkdirSync(cache.namedPath('tmp'), { recursive: true });
    const dir = mkdtempSync(join(cache.namedPath('tmp'), 'squashfs-'));
    try {
      const root = join(dir, 'root');
      mkdirSync(root);
      stage(entries, root);
      chmodSync(root, 0o755);
      const out = join(dir, 'system.squashfs');
      const r = spawnSync('mksquashfs', [root, out, '-noappend', '-quiet', '-no-progress', '-all-root', '-no-xattrs', '-mkfs-time', String(mtime), '-all-time', String(mtime), ...SQUASHFS_OPTIONS], {
        stdio: ['ignore', 'pipe', 'pipe'],
        // The times are given on the command line; mksquashfs refuses both.
        env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'SOURCE_DATE_EPOCH')),
      });
      if (r.error || r.status !== 0) throw new BspError('ETOOL', `mksquashfs failed: ${r.error?.message ?? r.stderr.toString().trim()} (apt-get install squashfs-tools)`);
      return readFileSync(out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
