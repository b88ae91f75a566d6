/**
 * The download cache: a content-addressed store (`blobs/sha256/<hex>`) that only ever
 * holds verified files, plus verified index files by name. Downloads land in a temporary
 * file next to the store and are renamed in only after every check passed.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ArtifactError } from '../errors.js';

/** Cache root: $NODEOS_BSP_CACHE, else $XDG_CACHE_HOME/nodeos-bsp, else ~/.cache/nodeos-bsp. */
export function defaultCacheDir(): string {
  if (process.env.NODEOS_BSP_CACHE) return process.env.NODEOS_BSP_CACHE;
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(xdg, 'nodeos-bsp');
}

export class Cache {
  constructor(readonly root: string = defaultCacheDir()) {}

  /** Path of a verified blob by its SHA-256, whether or not it exists. */
  blobPath(sha256: string): string {
    return join(this.root, 'blobs', 'sha256', sha256);
  }

  has(sha256: string): boolean {
    return existsSync(this.blobPath(sha256));
  }

  /** A fresh temporary path inside the cache (same filesystem, so rename is atomic). */
  tempPath(label: string): string {
    const dir = join(this.root, 'tmp');
    mkdirSync(dir, { recursive: true });
    return join(dir, `${label.replace(/[^A-Za-z0-9._-]/g, '_')}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}`);
  }

  /** Move a verified temporary file into the store. */
  commitBlob(tmp: string, sha256: string): string {
    const dest = this.blobPath(sha256);
    mkdirSync(dirname(dest), { recursive: true });
    renameSync(tmp, dest);
    return dest;
  }

  /** Named (non content-addressed) verified files, e.g. a suite's InRelease. */
  namedPath(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  commitNamed(tmp: string, ...parts: string[]): string {
    const dest = this.namedPath(...parts);
    mkdirSync(dirname(dest), { recursive: true });
    renameSync(tmp, dest);
    return dest;
  }

  /** Unpacked trees, keyed by the blob they came from. */
  unpackedPath(sha256: string): string {
    return join(this.root, 'unpacked', sha256);
  }

  discard(tmp: string): void {
    rmSync(tmp, { force: true, recursive: true });
  }

  /**
   * Unpack a verified blob once into unpacked/<sha256>: `command` runs on a fresh
   * directory (`args(dir)`), which becomes the tree only when the tool succeeded.
   */
  unpackOnce(sha256: string, source: string, command: string, args: (dir: string) => string[]): string {
    const dest = this.unpackedPath(sha256);
    if (existsSync(join(dest, '.complete'))) return dest;
    const tmp = this.tempPath(`unpack-${sha256.slice(0, 12)}`);
    mkdirSync(tmp, { recursive: true });
    const r = spawnSync(command, args(tmp));
    if (r.error || r.status !== 0) {
      this.discard(tmp);
      throw new ArtifactError('EARTIFACT', `cannot unpack ${source} with ${command}: ${r.error?.message ?? r.stderr.toString()}`, source);
    }
    writeFileSync(join(tmp, '.complete'), '');
    mkdirSync(dirname(dest), { recursive: true });
    this.discard(dest);
    renameSync(tmp, dest);
    return dest;
  }
}

/** Hash a file with one or more algorithms. */
export async function hashFile(path: string, algorithms: string[] = ['sha256']): Promise<Record<string, Buffer>> {
  const hs = algorithms.map((a) => createHash(a));
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (chunk) => hs.forEach((h) => h.update(chunk)))
      .on('end', resolve)
      .on('error', reject);
  });
  return Object.fromEntries(algorithms.map((a, i) => [a, hs[i]!.digest()]));
}

export const fileSize = (p: string): number => statSync(p).size;
