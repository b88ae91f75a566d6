/**
 * The download cache: a content-addressed store (`blobs/sha256/<hex>`) that only ever
 * holds verified files, plus verified index files by name. Downloads land in a temporary
 * file next to the store and are renamed in only after every check passed.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { replaceFileAtomically } from '../atomic-file.js';
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

  /**
   * Run `check` on a cached blob; if it throws, the blob is removed. Offline, the error is
   * rethrown (saying so); online, true is returned and the caller fetches it again.
   */
  checkBlob(path: string, check: () => void, offline: boolean): boolean {
    try {
      check();
      return false;
    } catch (err) {
      rmSync(path, { force: true });
      if (offline) throw err;
      this.onRebuild(`blob ${path}`, `failed its check (${(err as Error).message.split(';')[0]})`);
      return true;
    }
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

  /** Trees checked against their manifest by this process (a build reads each many times). */
  private readonly verified = new Set<string>();

  /** Called when a cached tree or file no longer matches what was made and is made again. */
  onRebuild: (what: string, why: string) => void = (what, why) => process.stderr.write(`nodeos-bsp: cache: ${what} ${why}; made again from its verified source\n`);

  /**
   * A tree in the cache, made once by `make(dir)` on a fresh directory and recorded in a
   * manifest (every file's SHA-256, size and mode, every link's target). Each later use in a
   * process checks the tree against its manifest first; a tree that differs (edited,
   * truncated, files added) is removed and made again, never used.
   */
  tree(dest: string, label: string, make: (dir: string) => void): string {
    if (this.verified.has(dest)) return dest;
    if (existsSync(dest)) {
      const problem = checkTree(dest);
      if (!problem) {
        this.verified.add(dest);
        return dest;
      }
      this.onRebuild(`${label} (${dest})`, problem);
      this.discard(dest);
    }
    const tmp = this.tempPath(label);
    mkdirSync(tmp, { recursive: true });
    try {
      make(tmp);
      writeFileSync(join(tmp, MANIFEST), JSON.stringify(treeManifest(tmp)));
    } catch (err) {
      this.discard(tmp);
      throw err;
    }
    mkdirSync(dirname(dest), { recursive: true });
    // Another process (a parallel build) may have made the same tree meanwhile: a good one is
    // used as it is, never removed under its reader; only a bad one is replaced.
    if (existsSync(dest) && !checkTree(dest)) {
      this.discard(tmp);
      this.verified.add(dest);
      return dest;
    }
    this.discard(dest);
    try {
      renameSync(tmp, dest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || checkTree(dest)) throw err;
      this.discard(tmp);
    }
    this.verified.add(dest);
    return dest;
  }

  /**
   * Unpack a verified blob once into unpacked/<sha256>: `command` runs on a fresh
   * directory (`args(dir)`), which becomes the tree only when the tool succeeded; later
   * uses check the tree against its manifest (see {@link tree}).
   */
  unpackOnce(sha256: string, source: string, command: string, args: (dir: string) => string[]): string {
    return this.tree(this.unpackedPath(sha256), `unpack-${sha256.slice(0, 12)}`, (dir) => {
      const r = spawnSync(command, args(dir));
      if (r.error || r.status !== 0) throw new ArtifactError('EARTIFACT', `cannot unpack ${source} with ${command}: ${r.error?.message ?? r.stderr.toString()}`, source);
    });
  }

  /**
   * A derived file (compressed, stripped...) kept by name, in a checked tree of its own
   * (see {@link tree}): one that changed since it was made is removed and made again.
   */
  derivedFile(name: string, make: () => Buffer): Buffer {
    const dir = this.tree(this.namedPath('derived', name), name, (tmp) => writeFileSync(join(tmp, 'data'), make()));
    return readFileSync(join(dir, 'data'));
  }
}

/** The manifest file inside a cached tree. */
export const MANIFEST = '.nodeos-bsp-manifest.json';

/**
 * A file's entry: its content hash, and the inode and change time it had when hashed. Any
 * write or chmod moves a file's ctime (which no one can set back), so a file whose inode,
 * ctime and size are unchanged is the file that was hashed; any other is hashed again.
 */
type FileEntry = { type: 'file'; sha256: string; size: number; mode: number; ino: number; ctimeNs: string };
type ManifestEntry = FileEntry | { type: 'link'; target: string } | { type: 'dir'; mode: number };

/** Every entry of a tree (but the manifest itself), by relative path; `known` spares re-hashing unchanged files. */
function treeManifest(root: string, known: Record<string, ManifestEntry> = {}): Record<string, ManifestEntry> {
  const out: Record<string, ManifestEntry> = {};
  const visit = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      const rel = relative(root, p);
      if (rel === MANIFEST) continue;
      const st = lstatSync(p, { bigint: true });
      if (st.isSymbolicLink()) out[rel] = { type: 'link', target: readlinkSync(p) };
      else if (st.isDirectory()) {
        out[rel] = { type: 'dir', mode: Number(st.mode & 0o7777n) };
        visit(p);
      } else if (st.isFile()) {
        const k = known[rel];
        const same = k?.type === 'file' && typeof k.ino === 'number' && BigInt(k.ino) === st.ino && k.ctimeNs === String(st.ctimeNs) && BigInt(k.size) === st.size;
        const sha256 = same ? k.sha256 : createHash('sha256').update(readFileSync(p)).digest('hex');
        out[rel] = { type: 'file', sha256, size: Number(st.size), mode: Number(st.mode & 0o7777n), ino: Number(st.ino), ctimeNs: String(st.ctimeNs) };
      }
    }
  };
  visit(root);
  return out;
}

/** Why a tree differs from its manifest, or undefined when it matches exactly. */
export function checkTree(root: string): string | undefined {
  let want: Record<string, ManifestEntry>;
  try {
    want = JSON.parse(readFileSync(join(root, MANIFEST), 'utf8')) as Record<string, ManifestEntry>;
  } catch {
    return 'has no manifest (made by an older kit, or damaged)';
  }
  const have = treeManifest(root, want);
  const content = (e: ManifestEntry): string => JSON.stringify(e.type === 'file' ? [e.sha256, e.size, e.mode] : e);
  for (const [rel, w] of Object.entries(want)) {
    const h = have[rel];
    if (!h) return `lost ${rel}`;
    if (content(h) !== content(w)) return `has a changed ${rel}`;
  }
  for (const rel of Object.keys(have)) if (!(rel in want)) return `has an added ${rel}`;
  // Same content; record the files' current inodes and change times so the next check is a stat walk.
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    try {
      replaceFileAtomically(join(root, MANIFEST), Buffer.from(JSON.stringify(have)));
    } catch {
      // A read-only cache still checks correctly, only more slowly.
    }
  }
  return undefined;
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
