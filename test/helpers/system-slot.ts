/** Files of an image's system slot A (a squashfs), read with Debian's unsquashfs. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLayoutAt, systemImage } from '../../src/index.js';

/** Run `fn` with slot A's squashfs as a file. */
export function withSystemImage<T>(image: string, fn: (squashfs: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'nodeos-system-'));
  try {
    const p = join(dir, 'system.squashfs');
    writeFileSync(p, systemImage(image, readLayoutAt(image).layout));
    return fn(p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One file of slot A. */
export const systemFile = (image: string, path: string): Buffer => withSystemImage(image, (sq) => execFileSync('unsquashfs', ['-cat', sq, path], { maxBuffer: 1 << 28 }));

/** Every path in slot A (no leading slash). */
export const systemList = (image: string): string[] =>
  withSystemImage(image, (sq) => execFileSync('unsquashfs', ['-lc', '-d', '', sq], { maxBuffer: 1 << 26 }).toString().split('\n').map((l) => l.replace(/^\/+/, '')).filter(Boolean));
