/**
 * Artifacts of a board build: which Debian packages and npm tarballs, pinned in a lock
 * file, downloaded once into the cache, verified every time they are used.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BoardProfile } from '../boards/index.js';
import { ArtifactError } from '../errors.js';
import { Cache, MANIFEST } from './cache.js';
import { debianMirror, DEFAULT_KEYRING, fetchDeb, fetchPackages, fetchRelease, followKernelMeta, pickPackage, unpackDeb, type DebianOptions, type DebPackage } from './debian.js';
import type { OnProgress } from './download.js';
import { fetchNpm, npmRegistry, resolveNpm, unpackTgz, type NpmTarball } from './npm.js';

export { Cache, checkTree, defaultCacheDir, hashFile } from './cache.js';
export { compareVersions, debianMirror, followKernelMeta, parseStanzas, releaseHashes, DEFAULT_KEYRING, type DebPackage } from './debian.js';
export { download, verify } from './download.js';
export { npmRegistry } from './npm.js';

/** Debian package roles a build needs. */
export type DebRole = 'kernel' | 'kernelBase' | 'kernelBinary' | 'kernelModules' | 'kernelSource' | 'uboot' | 'firmware' | 'busybox' | 'libc' | 'libstdcxx' | 'libgcc' | 'e2fsprogs' | 'libext2fs' | 'libcomerr' | 'libblkid' | 'libuuid' | 'utillinux' | 'libsmartcols' | 'xkbData' | 'consoleSetup' | 'wifiFirmware' | 'regdb' | WifiRole;

/**
 * Wi-Fi's WPA supplicant (Debian's wpa_supplicant and wpa_cli) and the libraries they load,
 * by role: every NEEDED entry of the two binaries, followed to the end (libcrypto needs zlib
 * and zstd, libdbus libsystemd, libsystemd libcap; wpa_cli's readline needs libtinfo).
 */
export const WIFI_PACKAGES = {
  wpasupplicant: 'wpasupplicant',
  libnl3: 'libnl-3-200',
  libnlGenl3: 'libnl-genl-3-200',
  libnlRoute3: 'libnl-route-3-200',
  libpcsclite: 'libpcsclite1',
  libssl: 'libssl3t64',
  zlib: 'zlib1g',
  libzstd: 'libzstd1',
  libdbus: 'libdbus-1-3',
  libsystemd: 'libsystemd0',
  libcap: 'libcap2',
  libreadline: 'libreadline8t64',
  libtinfo: 'libtinfo6',
} as const;
export type WifiRole = keyof typeof WIFI_PACKAGES;

/** Roles whose packages are in Debian's non-free-firmware component (the rest are in main). */
const NON_FREE_FIRMWARE_ROLES: readonly DebRole[] = ['firmware', 'wifiFirmware'];

/** A pinned Debian package. */
export interface LockedDeb {
  package: string;
  version: string;
  component: string;
  /** Path inside the mirror (no host). */
  filename: string;
  sha256: string;
  size: number;
  /** The suite it was resolved from, when not the lock's (a kernel from trixie-backports). */
  suite?: string;
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

/** The parts of a kernel package in Debian's split packaging (7.x): linux-base-*, linux-binary-*, linux-modules-*. */
const KERNEL_PARTS: [DebRole, RegExp][] = [
  ['kernelBase', /^linux-base-\d/],
  ['kernelBinary', /^linux-binary-\d/],
  ['kernelModules', /^linux-modules-\d/],
];

/** The suite a board's kernel comes from: the profile's kernel.source.suite, else the build's. */
export const kernelSuite = (profile: BoardProfile, suite: string): string => (profile.kernel.source !== 'build' && profile.kernel.source.suite) || suite;

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
  // A kernel the kit builds comes from linux-source; Debian's own build of that source (the
  // suite's linux-image-<arch>) comes too, for its drivers' id tables: a built-in driver leaves
  // no modules.alias, and the boot model matches USB, SDIO, PCI and platform ids through them.
  if (profile.kernel.source === 'build') Object.assign(want, { kernelSource: KERNEL_SOURCE_PACKAGE, ...(profile.arch.kernel === 'arm64' ? { kernel: 'linux-image-arm64' } : {}) });
  else want.kernel = profile.kernel.source.debian;
  if (profile.boot.uboot) want.uboot = profile.boot.uboot.package;
  if (profile.boot.firmware && profile.boot.firmware.files.length > 0) want.firmware = profile.boot.firmware.package;
  // First boot formats the users' partition as ext4 (journalled): busybox's mke2fs makes ext2 only.
  if (profile.partitions.some((p) => p.createdOnFirstBoot && p.filesystem === 'ext4')) {
    Object.assign(want, { e2fsprogs: 'e2fsprogs', libext2fs: 'libext2fs2t64', libcomerr: 'libcom-err2', libblkid: 'libblkid1', libuuid: 'libuuid1' });
    // partx tells the kernel about the new partition (BLKPG) while the system slot on the same card is mounted.
    Object.assign(want, { utillinux: 'util-linux', libsmartcols: 'libsmartcols1' });
  }
  // The screen's keyboard layouts: XKB's layouts turned into console keymaps with console-setup's ckbcomp.
  if (profile.screen) Object.assign(want, { xkbData: 'xkb-data', consoleSetup: 'console-setup' });
  // On-board Wi-Fi: the radio's firmware, and the regulatory database cfg80211 loads (signed, for the country setting).
  // (A radio that loads no firmware, mac80211_hwsim, lists none.) WPA is Debian's wpa_supplicant.
  if (profile.wifi) Object.assign(want, { ...(profile.wifi.firmware ? { wifiFirmware: profile.wifi.firmware.package } : {}), regdb: 'wireless-regdb', ...WIFI_PACKAGES });
  return want;
}

export function readLock(path: string): LockFile | undefined {
  if (!existsSync(path)) return undefined;
  const lock = JSON.parse(readFileSync(path, 'utf8')) as LockFile;
  if (lock.lockVersion !== 1) throw new ArtifactError('EARTIFACT', `${path}: unknown lockVersion ${String(lock.lockVersion)}; delete it to re-resolve`, path);
  return lock;
}

/** Several unpacked packages as one tree (hard links into the cache), made once and checked like any tree. */
function mergeTrees(cache: Cache, roots: string[]): string {
  const key = createHash('sha256').update(roots.join('\n')).digest('hex').slice(0, 24);
  return cache.tree(cache.namedPath('derived', `kernel-${key}`), 'kernel-merged', (tmp) => {
    for (const root of roots) {
      const r = spawnSync('cp', ['-al', `${root}/.`, tmp]);
      if (r.status !== 0 && spawnSync('cp', ['-a', `${root}/.`, tmp]).status !== 0) throw new ArtifactError('EARTIFACT', `cannot merge ${root} into the kernel tree: ${r.stderr.toString()}`, root);
      rmSync(join(tmp, MANIFEST), { force: true });
    }
  });
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
  const debOptsFor = new Map<string, DebianOptions>();
  const debOpts = (forSuite = suite): DebianOptions => {
    let d = debOptsFor.get(forSuite);
    if (!d) debOptsFor.set(forSuite, (d = { mirror: offline ? '' : getMirror(), suite: forSuite, arch, keyring: o.keyring ?? DEFAULT_KEYRING, cache, offline }));
    return d;
  };
  const indexes = new Map<string, DebPackage[]>();
  const indexOf = async (forSuite: string, components: string[]): Promise<DebPackage[]> => {
    const key = `${forSuite} ${components.join(',')}`;
    let index = indexes.get(key);
    if (!index) {
      const release = await fetchRelease(debOpts(forSuite));
      index = [];
      for (const c of components) index.push(...(await fetchPackages(debOpts(forSuite), release, c)));
      indexes.set(key, index);
    }
    return index;
  };

  // Resolve what the lock does not pin (or pins under another package name, or from another suite).
  const kSuite = kernelSuite(profile, suite);
  const missing = (Object.entries(wanted) as [DebRole, string][]).filter(([role, name]) => {
    const l = lock.debian[role];
    if (!l) return true;
    // A kernel metapackage is pinned as the concrete package it named, from the kernel's suite.
    if (role === 'kernel') return !l.package.startsWith('linux-image-') || (l.suite ?? lock.suite) !== kSuite;
    if (role === 'kernelSource') return !l.package.startsWith(`${name}-`);
    return l.package !== name;
  });
  const pin = (p: DebPackage, fromSuite: string): LockedDeb => ({
    package: p.name,
    version: p.version,
    component: p.component,
    filename: p.filename,
    sha256: p.sha256,
    size: p.size,
    ...(fromSuite !== suite ? { suite: fromSuite } : {}),
  });
  for (const [role, name] of missing) {
    const fromSuite = role === 'kernel' ? kSuite : suite;
    const index = await indexOf(fromSuite, ['main', ...(missing.some(([r]) => NON_FREE_FIRMWARE_ROLES.includes(r)) ? ['non-free-firmware'] : [])]);
    let p = pickPackage(index, name);
    if (role === 'kernel') p = followKernelMeta(index, p);
    if (role === 'kernelSource') p = followKernelMeta(index, p, /^linux-source-\d/);
    lock.debian[role] = pin(p, fromSuite);
    if (role === 'kernel') {
      // Debian's 7.x packaging: linux-image-<version> is itself a metapackage of three parts.
      const deps = p.depends.split(',').map((d) => d.trim().split(/\s/)[0]!);
      for (const [part, re] of KERNEL_PARTS) {
        const dep = deps.find((d) => re.test(d));
        if (dep) lock.debian[part] = pin(pickPackage(index, dep), fromSuite);
        else delete lock.debian[part];
      }
    }
  }

  const debs = {} as Artifacts['debs'];
  const roles = Object.keys(wanted) as DebRole[];
  if (wanted.kernel) roles.push(...KERNEL_PARTS.map(([r]) => r).filter((r) => lock.debian[r]));
  for (const role of roles) {
    const l = lock.debian[role]!;
    const opts = cache.has(l.sha256) ? { ...debOpts(l.suite), mirror: '' } : debOpts(l.suite);
    const path = await fetchDeb({ ...opts, ...(progress(l.package) ? { onProgress: progress(l.package)! } : {}) }, { name: l.package, filename: l.filename, sha256: l.sha256, size: l.size });
    debs[role] = unpackDeb(cache, path, l.sha256);
  }
  // A split kernel is used as one tree, as a 6.x linux-image package is.
  if (debs.kernelBinary) debs.kernel = mergeTrees(cache, [debs.kernel!, debs.kernelBase!, debs.kernelBinary, debs.kernelModules!]);

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
