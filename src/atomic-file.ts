/**
 * Replacing a file without a window where it is half-written, and without following a
 * planted link: the temporary sibling gets an unpredictable name and is created with
 * O_EXCL | O_NOFOLLOW (a name someone else made, or a symlink, makes the open fail),
 * written, synced and renamed over the target.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Atomically replace (or create) `path` with `data`; throws the underlying error, leaving `path` as it was. */
export function replaceFileAtomically(path: string, data: Uint8Array, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp); // ours: created exclusively above
    } catch {
      /* already renamed or gone */
    }
    throw err;
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some filesystems (vfat on older kernels) refuse fsync on directories; the rename stands.
  }
}
