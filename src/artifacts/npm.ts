/** npm packages (the official Node.js binary for the target), verified by their integrity. */
import { spawnSync } from 'node:child_process';
import { ArtifactError } from '../errors.js';
import { Cache, fileSize, hashFile } from './cache.js';
import { download, verify, type OnProgress } from './download.js';

/** The npm registry from npm's own configuration ($npm_config_registry or `npm config get`). */
export function npmRegistry(): string {
  const env = process.env.npm_config_registry ?? process.env.NPM_CONFIG_REGISTRY;
  if (env) return env.replace(/\/+$/, '');
  const r = spawnSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' });
  const url = r.stdout?.trim();
  if (r.status !== 0 || !url || !/^https?:\/\//.test(url)) {
    throw new ArtifactError('EARTIFACT', 'cannot read the npm registry from npm config (is npm installed?): set npm_config_registry', 'npm-registry');
  }
  return url.replace(/\/+$/, '');
}

/** A resolved npm tarball. `tarball` is relative to the registry, so locks name no host. */
export interface NpmTarball {
  name: string;
  version: string;
  tarball: string;
  integrity: string;
  size?: number;
}

const semver = (v: string): number[] => v.split(/[.-]/).slice(0, 3).map(Number);
const cmp = (a: string, b: string): number => {
  const x = semver(a);
  const y = semver(b);
  return (x[0]! - y[0]!) || (x[1]! - y[1]!) || (x[2]! - y[2]!);
};

/** Newest release version of `name` with the given major. */
export async function resolveNpm(registry: string, name: string, major: number): Promise<NpmTarball> {
  return resolveNpmVersion(registry, name, (versions) => {
    const v = versions.filter((x) => /^\d+\.\d+\.\d+$/.test(x) && semver(x)[0] === major).sort(cmp).at(-1);
    if (!v) throw new ArtifactError('EARTIFACT', `${name} has no ${major}.x release on the registry`, name);
    return v;
  });
}

/**
 * One version of a package as the registry describes it (its tarball and integrity), the
 * version picked from the registry's list by `pick` (an exact version: `() => '24.11.1'`).
 */
export async function resolveNpmVersion(registry: string, name: string, pick: string | ((versions: string[]) => string)): Promise<NpmTarball> {
  let res: Response;
  try {
    res = await fetch(`${registry}/${name.replace('/', '%2f')}`, { headers: { accept: 'application/vnd.npm.install-v1+json' } });
  } catch (err) {
    throw new ArtifactError('EDOWNLOAD', `cannot reach the npm registry for ${name}: ${(err as Error).message}`, name, { cause: err });
  }
  if (!res.ok) throw new ArtifactError('EDOWNLOAD', `npm registry: ${name}: HTTP ${res.status}`, name);
  const doc = (await res.json()) as { versions: Record<string, { dist: { tarball: string; integrity: string; unpackedSize?: number } }> };
  const version = typeof pick === 'string' ? pick : pick(Object.keys(doc.versions));
  if (!doc.versions[version]) throw new ArtifactError('EARTIFACT', `${name}@${version} is not on the registry`, name);
  const dist = doc.versions[version]!.dist;
  const tarball = dist.tarball.startsWith(registry) ? dist.tarball.slice(registry.length + 1) : new URL(dist.tarball).pathname.replace(/^\//, '');
  return { name, version, tarball, integrity: dist.integrity };
}

/** A verified tarball in the cache, keyed by its SHA-256 (recorded in the lock). */
export async function fetchNpm(registry: string, t: NpmTarball & { sha256?: string }, cache: Cache, offline: boolean, onProgress?: OnProgress): Promise<{ path: string; sha256: string }> {
  if (t.sha256 && cache.has(t.sha256)) {
    const path = cache.blobPath(t.sha256);
    const alg = t.integrity.split('-')[0]!;
    const h = await hashFile(path, ['sha256', alg]);
    const bad = cache.checkBlob(path, () => verify(`${t.name}@${t.version} (cached)`, { size: fileSize(path), sha256: h.sha256!.toString('hex'), sri: `${alg}-${h[alg]!.toString('base64')}` }, { sha256: t.sha256, integrity: t.integrity! }), offline);
    if (!bad) return { path, sha256: t.sha256 };
  }
  if (offline) throw new ArtifactError('EOFFLINE', `offline and ${t.name}@${t.version} is not cached: run nodeos-bsp fetch first`, t.name);
  const { tmp, sha256 } = await download(`${registry}/${t.tarball}`, `${t.name}@${t.version}`, cache, { integrity: t.integrity, ...(t.sha256 ? { sha256: t.sha256 } : {}) }, onProgress);
  return { path: cache.commitBlob(tmp, sha256), sha256 };
}

/** Unpack a verified .tgz once and return the tree (npm tarballs hold a `package/` folder). */
export function unpackTgz(cache: Cache, path: string, sha256: string): string {
  return cache.unpackOnce(sha256, path, 'tar', (dir) => ['-xzf', path, '-C', dir, '--no-same-owner']);
}
