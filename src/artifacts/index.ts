/**
 * Artifacts of a board build: which Debian packages and npm tarballs, pinned in a lock
 * file, downloaded once into the cache, verified every time they are used.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BoardProfile } from '../boards/index.js';
import { ArtifactError } from '../errors.js';
import { Cache } from './cache.js';
import { debianMirror, DEFAULT_KEYRING, fetchDeb, fetchPackages, fetchRelease, followKernelMeta, pickPackage, unpackDeb, type DebianOptions, type DebPackage } from './debian.js';
import type { OnProgress } from './download.js';
import { fetchNpm, npmRegistry, resolveNpm, unpackTgz, type NpmTarball } from './npm.js';

export { Cache, checkTree, defaultCacheDir, hashFile } from './cache.js';
export { compareVersions, debianMirror, followKernelMeta, parseStanzas, releaseHashes, DEFAULT_KEYRING, type DebPackage } from './debian.js';
export { download, verify } from './download.js';
export { npmRegistry } from './npm.js';

/** Debian package roles a build needs. */
export type DebRole = 'kernel' | 'kernelSource' | 'uboot' | 'firmware' | 'busybox' | 'libc' | 'libstdcxx' | 'libgcc' | 'e2fsprogs' | 'libext2fs' | 'libcomerr' | 'libblkid' | 'libuuid' | 'utillinux' | 'libsmartcols';

/** A pinned Debian package. */
export interface LockedDeb {
  package: string;
  version: string;
  component: string;
  /** Path inside the mirror (no host). */
  filename: string;
  sha256: string;
  size: number;
}

/** A pinned npm tarball. */
export interface LockedNpm extends NpmTarball {
  sha256: string;
}

/** The lock file: what a build used, so the next one is identical. */
export interface LockFile {
  lockVersion: 1;
  board: string;
  suite: string;
  arch: string;
  debian: Partial<Record<DebRole, LockedDeb>>;
  npm: { node?: LockedNpm };
}

/** Options for resolving and fetching. */
export interface ArtifactOptions {
  cache?: Cache;
  /** Debian suite. Default trixie. */
  suite?: string;
  /** Mirror URL; default from the host's apt sources or $NODEOS_BSP_DEBIAN_MIRROR. */
  mirror?: string;
  keyring?: string;
  /** Never touch the network. */
  offline?: boolean;
  /** Lock file to read (if present) and write. */
  lockPath?: string;
  /** Node.js major version. Default 24 (LTS). */
  nodeMajor?: number;
  onProgress?: (label: string, done: number, total: number | undefined) => void;
}

/** Unpacked, verified artifacts. */
export interface Artifacts {
  lock: LockFile;
  /**
   * Unpacked tree per Debian role (roles the board does not need are absent): `kernel` for a
   * board on Debian's kernel, `kernelSource` for one whose kernel the kit builds.
   */
  debs: Partial<Record<DebRole, string>> & Record<'busybox' | 'libc' | 'libstdcxx' | 'libgcc', string>;
  /** Unpacked node-linux-<arch> package (its `package/` folder). */
  node: string;
}

/** The metapackage naming the suite's kernel source (followed to linux-source-<version>). */
export const KERNEL_SOURCE_PACKAGE = 'linux-source';

/** The Debian packages a board needs, by role. */
export function debPackagesFor(profile: BoardProfile): Partial<Record<DebRole, string>> {
  const want: Partial<Record<DebRole, string>> = {
    busybox: 'busybox-static',
    libc: 'libc6',
    libstdcxx: 'libstdc++6',
    libgcc: 'libgcc-s1',
  };
  if (profile.kernel.source === 'build') want.kernelSource = KERNEL_SOURCE_PACKAGE;
  else want.kernel = profile.kernel.source.debian;
  if (profile.boot.uboot) want.uboot = profile.boot.uboot.package;
  if (profile.boot.firmware && profile.boot.firmware.files.length > 0) want.firmware = profile.boot.firmware.package;
  // First boot formats the users' partition as ext4 (journalled): busybox's mke2fs makes ext2 only.
  if (profile.partitions.some((p) => p.createdOnFirstBoot && p.filesystem === 'ext4')) {
    Object.assign(want, { e2fsprogs: 'e2fsprogs', libext2fs: 'libext2fs2t64', libcomerr: 'libcom-err2', libblkid: 'libblkid1', libuuid: 'libuuid1' });
    // partx tells the kernel about the new partition (BLKPG) while the system slot on the same card is mounted.
    Object.assign(want, { utillinux: 'util-linux', libsmartcols: 'libsmartcols1' });
  }
  return want;
}

export function readLock(path: string): LockFile | undefined {
  if (!existsSync(path)) return undefined;
  const lock = JSON.parse(readFileSync(path, 'utf8')) as LockFile;
  if (lock.lockVersion !== 1) throw new ArtifactError('EARTIFACT', `${path}: unknown lockVersion ${String(lock.lockVersion)}; delete it to re-resolve`, path);
  return lock;
}

/** Resolve (from the lock or the archive), fetch, verify and unpack everything a board needs. */
export async function fetchArtifacts(profile: BoardProfile, o: ArtifactOptions = {}): Promise<Artifacts> {
  const cache = o.cache ?? new Cache();
  const suite = o.suite ?? 'trixie';
  const arch = profile.arch.node;
  const offline = o.offline ?? false;
  const previous = o.lockPath ? readLock(o.lockPath) : undefined;
  const lock: LockFile =
    previous && previous.board === profile.id && previous.suite === suite && previous.arch === arch
      ? previous
      : { lockVersion: 1, board: profile.id, suite, arch, debian: {}, npm: {} };
  const wanted = debPackagesFor(profile);
  const progress = (label: string): OnProgress | undefined => (o.onProgress ? (d, t) => o.onProgress!(label, d, t) : undefined);

  // The mirror is needed only to download; a filled cache builds without one.
  let mirror: string | undefined;
  const getMirror = (): string => (mirror ??= debianMirror(o.mirror));
  let deb: DebianOptions | undefined;
  const debOpts = (): DebianOptions =>
    (deb ??= { mirror: offline ? '' : getMirror(), suite, arch, keyring: o.keyring ?? DEFAULT_KEYRING, cache, offline });

  // Resolve what the lock does not pin (or pins under another package name).
  const missing = (Object.entries(wanted) as [DebRole, string][]).filter(([role, name]) => {
    const l = lock.debian[role];
    if (!l) return true;
    // A kernel metapackage is pinned as the concrete package it named.
    if (role === 'kernel') return !l.package.startsWith('linux-image-');
    if (role === 'kernelSource') return !l.package.startsWith(`${name}-`);
    return l.package !== name;
  });
  if (missing.length > 0) {
    const release = await fetchRelease(debOpts());
    const components = new Set(['main', ...(missing.some(([r]) => r === 'firmware') ? ['non-free-firmware'] : [])]);
    const index: DebPackage[] = [];
    for (const c of components) index.push(...(await fetchPackages(debOpts(), release, c)));
    for (const [role, name] of missing) {
      let p = pickPackage(index, name);
      if (role === 'kernel') p = followKernelMeta(index, p);
      if (role === 'kernelSource') p = followKernelMeta(index, p, /^linux-source-\d/);
      lock.debian[role] = { package: p.name, version: p.version, component: p.component, filename: p.filename, sha256: p.sha256, size: p.size };
    }
  }

  const debs = {} as Artifacts['debs'];
  for (const role of Object.keys(wanted) as DebRole[]) {
    const l = lock.debian[role]!;
    const opts = cache.has(l.sha256) ? { ...debOpts(), mirror: '' } : debOpts();
    const path = await fetchDeb({ ...opts, ...(progress(l.package) ? { onProgress: progress(l.package)! } : {}) }, { name: l.package, filename: l.filename, sha256: l.sha256, size: l.size });
    debs[role] = unpackDeb(cache, path, l.sha256);
  }

  const nodePkg = `node-linux-${arch}`;
  let nodeLock = lock.npm.node;
  const major = o.nodeMajor ?? 24;
  if (!nodeLock || nodeLock.name !== nodePkg || Number(nodeLock.version.split('.')[0]) !== major) {
    if (offline) throw new ArtifactError('EOFFLINE', `offline and ${nodePkg}@${major} is not pinned in the lock file: run nodeos-bsp fetch first`, nodePkg);
    const registry = npmRegistry();
    const t = await resolveNpm(registry, nodePkg, major);
    const { sha256 } = await fetchNpm(registry, t, cache, offline, progress(`${t.name}@${t.version}`));
    nodeLock = { ...t, sha256 };
    lock.npm.node = nodeLock;
  }
  const registry = cache.has(nodeLock.sha256) ? '' : npmRegistry();
  const { path: tgz } = await fetchNpm(registry, nodeLock, cache, offline, progress(`${nodeLock.name}@${nodeLock.version}`));
  const node = `${unpackTgz(cache, tgz, nodeLock.sha256)}/package`;

  if (o.lockPath) {
    mkdirSync(dirname(o.lockPath), { recursive: true });
    writeFileSync(o.lockPath, JSON.stringify(lock, null, 2) + '\n');
  }
  return { lock, debs, node };
}
