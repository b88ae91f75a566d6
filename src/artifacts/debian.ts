/**
 * Debian packages, verified the way apt does it: the suite's signed InRelease checked with
 * gpgv against the archive keyring, the Packages index checked against InRelease's SHA-256,
 * then each .deb checked against the index (or the lock file).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArtifactError } from '../errors.js';
import { Cache, fileSize, hashFile } from './cache.js';
import { download, verify, type OnProgress } from './download.js';

/** Debian's archive keyring on a Debian host. */
export const DEFAULT_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/**
 * The Debian mirror: $NODEOS_BSP_DEBIAN_MIRROR, else the host's apt sources (deb822
 * `.sources` files, then `sources.list`), skipping security archives.
 */
export function debianMirror(override?: string, aptDir = '/etc/apt'): string {
  const pick = override || process.env.NODEOS_BSP_DEBIAN_MIRROR;
  if (pick) return pick.replace(/\/+$/, '');
  const candidates: string[] = [];
  const dir = join(aptDir, 'sources.list.d');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.sources')).sort() : [];
  for (const f of files) {
    for (const stanza of readFileSync(join(dir, f), 'utf8').split(/\n\s*\n/)) {
      const field = (name: string): string | undefined => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim();
      if (field('Enabled') === 'no') continue;
      const uris = field('URIs');
      const suites = field('Suites') ?? '';
      if (!uris || !/^deb\b/.test(field('Types') ?? 'deb')) continue;
      if (suites.split(/\s+/).every((s) => /-security$|\/updates$/.test(s))) continue;
      candidates.push(...uris.split(/\s+/));
    }
  }
  const list = join(aptDir, 'sources.list');
  if (existsSync(list)) {
    for (const line of readFileSync(list, 'utf8').split('\n')) {
      const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (m && !/-security$|\/updates$/.test(m[2]!)) candidates.push(m[1]!);
    }
  }
  const found = candidates.find((u) => /^https?:\/\//.test(u));
  if (!found) {
    throw new ArtifactError('EARTIFACT', `no Debian mirror in ${aptDir}/sources.list(.d): pass --debian-mirror <url> or set NODEOS_BSP_DEBIAN_MIRROR`, 'debian-mirror');
  }
  return found.replace(/\/+$/, '');
}

/** A stanza of a Packages index. */
export interface DebPackage {
  name: string;
  version: string;
  architecture: string;
  filename: string;
  size: number;
  sha256: string;
  depends: string;
  /** Component the index came from (main, non-free-firmware). */
  component: string;
}

/** Parse a control-file list (Packages, Release fields). */
export function parseStanzas(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const block of text.split(/\n\n+/)) {
    const m = new Map<string, string>();
    let last = '';
    for (const line of block.split('\n')) {
      if (!line) continue;
      if (/^\s/.test(line) && last) m.set(last, `${m.get(last)}\n${line.trim()}`);
      else {
        const i = line.indexOf(':');
        if (i < 0) continue;
        last = line.slice(0, i);
        m.set(last, line.slice(i + 1).trim());
      }
    }
    if (m.size) out.push(m);
  }
  return out;
}

/** dpkg's version order (epoch, upstream, revision; `~` sorts first). */
export function compareVersions(a: string, b: string): number {
  const split = (v: string): [number, string, string] => {
    const e = /^(\d+):/.exec(v);
    const rest = e ? v.slice(e[0].length) : v;
    const dash = rest.lastIndexOf('-');
    return [e ? Number(e[1]) : 0, dash < 0 ? rest : rest.slice(0, dash), dash < 0 ? '0' : rest.slice(dash + 1)];
  };
  const order = (c: string | undefined): number => {
    if (c === undefined) return 0;
    if (c === '~') return -1;
    if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
    return c.charCodeAt(0) + 256;
  };
  const part = (x: string, y: string): number => {
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      while ((i < x.length && !/\d/.test(x[i]!)) || (j < y.length && !/\d/.test(y[j]!))) {
        const cx = i < x.length && !/\d/.test(x[i]!) ? x[i] : undefined;
        const cy = j < y.length && !/\d/.test(y[j]!) ? y[j] : undefined;
        const d = order(cx) - order(cy);
        if (d) return d;
        if (cx !== undefined) i++;
        if (cy !== undefined) j++;
        if (cx === undefined && cy === undefined) break;
      }
      let nx = '';
      let ny = '';
      while (i < x.length && /\d/.test(x[i]!)) nx += x[i++];
      while (j < y.length && /\d/.test(y[j]!)) ny += y[j++];
      const d = Number(nx || 0) - Number(ny || 0);
      if (d) return d;
    }
    return 0;
  };
  const [ea, ua, ra] = split(a);
  const [eb, ub, rb] = split(b);
  return ea - eb || part(ua, ub) || part(ra, rb);
}

/** Options for talking to the archive. */
export interface DebianOptions {
  mirror: string;
  suite: string;
  arch: string;
  keyring: string;
  cache: Cache;
  offline: boolean;
  onProgress?: OnProgress;
}

/** Verify InRelease with gpgv; returns the signed text. */
function verifySignature(path: string, keyring: string, label: string): string {
  const r = spawnSync('gpgv', ['--keyring', keyring, '--output', '-', path], { maxBuffer: 64 << 20 });
  if (r.error) throw new ArtifactError('ESIGNATURE', `cannot run gpgv to check ${label}: ${r.error.message} (apt-get install gpgv)`, label, { cause: r.error });
  if (r.status !== 0) {
    throw new ArtifactError('ESIGNATURE', `${label} has no good signature from ${keyring}: ${r.stderr.toString().trim().split('\n').slice(-2).join(' ')}; the file was discarded`, label);
  }
  return r.stdout.toString();
}

/** SHA-256 lines of a Release file: path -> { sha256, size }. */
export function releaseHashes(text: string): Map<string, { sha256: string; size: number }> {
  const out = new Map<string, { sha256: string; size: number }>();
  const m = /^SHA256:\n((?:[ \t].*\n?)*)/m.exec(text);
  for (const line of (m?.[1] ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 3) out.set(f[2]!, { sha256: f[0]!, size: Number(f[1]) });
  }
  return out;
}

/** The suite's verified InRelease (downloaded unless offline; cached only once verified). */
export async function fetchRelease(o: DebianOptions): Promise<string> {
  const cached = o.cache.namedPath('debian', o.suite, 'InRelease');
  if (o.offline) {
    if (!existsSync(cached)) throw new ArtifactError('EOFFLINE', `offline and the ${o.suite} InRelease is not cached: run nodeos-bsp fetch first`, 'InRelease');
    return verifySignature(cached, o.keyring, `${o.suite} InRelease (cached)`);
  }
  const { tmp } = await download(`${o.mirror}/dists/${o.suite}/InRelease`, `${o.suite}-InRelease`, o.cache);
  let text: string;
  try {
    text = verifySignature(tmp, o.keyring, `${o.suite} InRelease`);
  } catch (err) {
    o.cache.discard(tmp);
    throw err;
  }
  o.cache.commitNamed(tmp, 'debian', o.suite, 'InRelease');
  return text;
}

/** Load (and verify) the Packages index of one component. */
export async function fetchPackages(o: DebianOptions, release: string, component: string): Promise<DebPackage[]> {
  const rel = `${component}/binary-${o.arch}/Packages.xz`;
  const want = releaseHashes(release).get(rel);
  if (!want) throw new ArtifactError('EARTIFACT', `${o.suite} InRelease lists no ${rel}`, rel);
  let path: string;
  const cached = o.cache.blobPath(want.sha256);
  const cachedSha = o.cache.has(want.sha256) ? (await hashFile(cached)).sha256!.toString('hex') : undefined;
  if (cachedSha && !o.cache.checkBlob(cached, () => verify(`${o.suite} ${rel} (cached)`, { size: fileSize(cached), sha256: cachedSha }, want), o.offline ?? false)) path = cached;
  else if (o.offline) throw new ArtifactError('EOFFLINE', `offline and ${o.suite} ${rel} is not cached: run nodeos-bsp fetch first`, rel);
  else {
    const { tmp } = await download(`${o.mirror}/dists/${o.suite}/${rel}`, `${o.suite}-${component}-Packages.xz`, o.cache, want);
    path = o.cache.commitBlob(tmp, want.sha256);
  }
  const xz = spawnSync('xz', ['-dc', path], { maxBuffer: 1 << 30 });
  if (xz.status !== 0) throw new ArtifactError('EARTIFACT', `cannot decompress ${rel}: ${xz.stderr.toString()}`, rel);
  return parseStanzas(xz.stdout.toString()).map((s) => ({
    name: s.get('Package') ?? '',
    version: s.get('Version') ?? '',
    architecture: s.get('Architecture') ?? '',
    filename: s.get('Filename') ?? '',
    size: Number(s.get('Size')),
    sha256: s.get('SHA256') ?? '',
    depends: s.get('Depends') ?? '',
    component,
  }));
}

/** Pick the newest version of `name`; follow a kernel metapackage to its image package. */
export function pickPackage(index: DebPackage[], name: string): DebPackage {
  const versions = index.filter((p) => p.name === name).sort((a, b) => compareVersions(b.version, a.version));
  const p = versions[0];
  if (!p) throw new ArtifactError('EARTIFACT', `package ${name} is not in the index`, name);
  return p;
}

/**
 * The concrete kernel package a metapackage depends on: linux-image-arm64 -> linux-image-6.12…,
 * linux-source -> linux-source-6.12 (with `concrete` = /^linux-source-\d/).
 */
export function followKernelMeta(index: DebPackage[], meta: DebPackage, concrete = /^linux-image-\d/): DebPackage {
  const dep = meta.depends.split(',').map((d) => d.trim().split(/\s/)[0]!).find((d) => concrete.test(d));
  return dep ? pickPackage(index, dep) : meta;
}

/** A verified .deb in the cache; downloads it if needed. */
export async function fetchDeb(o: DebianOptions, p: Pick<DebPackage, 'name' | 'filename' | 'sha256' | 'size'>): Promise<string> {
  if (o.cache.has(p.sha256)) {
    // Re-check what is in the store: a cache is only trusted as far as its hashes. A blob
    // that fails is removed (never used again) and fetched anew unless offline.
    const path = o.cache.blobPath(p.sha256);
    const h = await hashFile(path);
    const bad = o.cache.checkBlob(path, () => verify(`${p.name} (cached)`, { size: fileSize(path), sha256: h.sha256!.toString('hex') }, { sha256: p.sha256, size: p.size }), o.offline ?? false);
    if (!bad) return path;
  }
  if (o.offline) throw new ArtifactError('EOFFLINE', `offline and ${p.name} is not cached: run nodeos-bsp fetch first`, p.name);
  const { tmp } = await download(`${o.mirror}/${p.filename}`, p.name, o.cache, { sha256: p.sha256, size: p.size }, o.onProgress);
  return o.cache.commitBlob(tmp, p.sha256);
}

/** Unpack a verified .deb once (dpkg-deb -x) and return the tree. */
export function unpackDeb(cache: Cache, debPath: string, sha256: string): string {
  return cache.unpackOnce(sha256, debPath, 'dpkg-deb', (dir) => ['-x', debPath, dir]);
}
