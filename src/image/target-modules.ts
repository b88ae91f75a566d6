/**
 * npm packages for the target: onoff (with its epoll addon) and i2c-bus are NAN addons
 * without ARM prebuilds, so they are cross-compiled for the target's arch and exact Node
 * version (Debian's g++-aarch64-linux-gnu, headers from the target Node package);
 * serialport ships linux-arm64 prebuilds. Cached by (lock, Node version, arch). Apps'
 * dependencies (apps.ts) are installed by the same npmForTarget.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Cache } from '../artifacts/index.js';
import { ArtifactError, BspError } from '../errors.js';
import { readElfDeps } from './elf.js';
import { packageRoot } from '../paths.js';

/**
 * The project whose dependencies every image carries in /usr/lib/node_modules: the runtime's
 * (onoff, i2c-bus, serialport; ssh2 for the REPL over SSH; multicast-dns for name.local) and
 * npm itself (`npm install -g` on the board), their whole tree pinned by its package-lock.json:
 * two builds a month apart install the same node_modules unless the lock is changed on purpose.
 */
export const TARGET_MODULES_DIR = 'target-modules';

/** name@version of each direct dependency, from target-modules/package.json. */
export function targetPackages(root = packageRoot()): string[] {
  const pkg = JSON.parse(readFileSync(join(root, TARGET_MODULES_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  return Object.entries(pkg.dependencies).map(([n, v]) => `${n}@${v}`);
}

/** What pins the target modules: the lock's hash (it goes into the build id). */
export function targetModulesLockHash(root = packageRoot()): string {
  return createHash('sha256').update(readFileSync(join(root, TARGET_MODULES_DIR, 'package-lock.json'))).digest('hex');
}

/** What was installed, for the manifest. */
export interface TargetModules {
  dir: string;
  packages: { name: string; version: string; integrity?: string }[];
}

const CROSS: Record<string, { triple: string; package: string; machine: number; npmArch: string }> = {
  arm64: { triple: 'aarch64-linux-gnu', package: 'g++-aarch64-linux-gnu', machine: 183, npmArch: 'arm64' },
};

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

function lockPackages(dir: string): TargetModules['packages'] {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; integrity?: string }> };
  return Object.entries(lock.packages)
    .filter(([k]) => k.startsWith('node_modules/'))
    .map(([k, v]) => ({ name: k.slice('node_modules/'.length), version: v.version ?? '', ...(v.integrity ? { integrity: v.integrity } : {}) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Build (or take from the cache) node_modules for the target: npm ci of target-modules/ for the board. */
export function targetModules(nodePkg: string, nodeVersion: string, arch: string, cache: Cache, offline: boolean, root = packageRoot()): TargetModules {
  const src = join(root, TARGET_MODULES_DIR);
  const key = createHash('sha256').update(JSON.stringify({ v: 4, lock: targetModulesLockHash(root), pkg: createHash('sha256').update(readFileSync(join(src, 'package.json'))).digest('hex'), nodeVersion, arch })).digest('hex').slice(0, 24);
  const dest = cache.namedPath('derived', `target-modules-${key}`);
  const what = `the target npm modules (${targetPackages(root).join(', ')})`;
  if (offline && !existsSync(dest)) throw new ArtifactError('EOFFLINE', `offline and ${what} are not built yet: run nodeos-bsp fetch first`, 'target-modules');
  cache.tree(dest, 'target-modules', (tmp) => {
    if (offline) throw new ArtifactError('EOFFLINE', `offline and the cached target npm modules do not match their manifest: run without --offline to build them again`, 'target-modules');
    copyFileSync(join(src, 'package.json'), join(tmp, 'package.json'));
    copyFileSync(join(src, 'package-lock.json'), join(tmp, 'package-lock.json'));
    npmForTarget(tmp, ['ci'], nodePkg, arch, what);
  });
  return { dir: join(dest, 'node_modules'), packages: lockPackages(dest) };
}

/**
 * The installed packages whose install scripts would build an addon, split by whether the
 * package ships a linux-<arch> prebuild (glibc) for the board. Read from npm's own record of
 * the install (node_modules/.package-lock.json: hasInstallScript).
 */
export function addonPackages(dir: string, npmArch: string): { prebuilt: string[]; build: string[] } {
  const hidden = join(dir, 'node_modules/.package-lock.json');
  const out = { prebuilt: [] as string[], build: [] as string[] };
  if (!existsSync(hidden)) return out;
  const lock = JSON.parse(readFileSync(hidden, 'utf8')) as { packages?: Record<string, { hasInstallScript?: boolean }> };
  for (const [path, p] of Object.entries(lock.packages ?? {})) {
    if (!p.hasInstallScript || !existsSync(join(dir, path))) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const pre = join(dir, path, 'prebuilds', `linux-${npmArch}`);
    const ships = existsSync(pre) && readdirSync(pre).some((f) => f.endsWith('.node') && !/musl/.test(f));
    (ships ? out.prebuilt : out.build).push(name);
  }
  out.prebuilt = [...new Set(out.prebuilt)].sort();
  out.build = [...new Set(out.build)].filter((n) => !out.prebuilt.includes(n)).sort();
  return out;
}

/**
 * Run npm (install, or ci for a project with a lock file) in `dir` for the target: addons
 * from their linux-<arch> prebuilds when the package ships them, otherwise cross-compiled
 * with Debian's g++ against the target Node's headers. Then keep what the board can load
 * (no objects, other platforms' prebuilds or .bin) and check every .node is the target's.
 *
 * npm installs with scripts off; then only the packages without a prebuild for the board
 * have their install scripts run (npm rebuild, cross-compiling). Run as npm would run them,
 * node-gyp-build's check loads the board's prebuild on this machine, fails (another arch)
 * and compiles from source instead, and the board then loads that build, not the prebuild.
 */
export function npmForTarget(dir: string, npmArgs: string[], nodePkg: string, arch: string, what: string, offline = false): void {
  const cross = CROSS[arch];
  if (!cross) throw new BspError('EBOARD_UNSUPPORTED', `no cross toolchain known for ${arch}`);
  const gxx = `${cross.triple}-g++`;
  const probe = spawnSync(gxx, ['--version']);
  if (probe.error || probe.status !== 0) throw new BspError('ETOOL', `${gxx} is missing: apt-get install ${cross.package} (needed to build native addons, such as onoff's epoll and i2c-bus, for the board)`);
  const env = {
    ...process.env,
    npm_config_arch: cross.npmArch,
    npm_config_target_arch: cross.npmArch,
    // Optional dependencies chosen for the board, not this machine (packages that ship one
    // prebuilt package per platform).
    npm_config_cpu: cross.npmArch,
    npm_config_os: 'linux',
    npm_config_libc: 'glibc',
    npm_config_nodedir: nodePkg,
    npm_config_build_from_source: 'false',
    npm_config_update_notifier: 'false',
    CC: `${cross.triple}-gcc`,
    CXX: gxx,
    LINK: gxx,
    AR: `${cross.triple}-ar`,
  };
  const npm = (args: string[], step: string): void => {
    const r = spawnSync('npm', [...args, '--no-audit', '--no-fund', '--foreground-scripts', ...(offline ? ['--offline'] : [])], { cwd: dir, env, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.error || r.status !== 0) {
      const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
      // npm names the package whose install script failed ("npm error path .../node_modules/x").
      const failed = /npm (?:error|ERR!) path .*node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\s*$/m.exec(out)?.[1];
      const why = failed ? `${failed} could not be installed for linux-${cross.npmArch}: it has no linux-${cross.npmArch} prebuild and did not cross-compile with ${gxx}` : `npm ${step} failed`;
      throw new BspError('ETARGET_NPM', `${what}: ${why}:\n${(r.error?.message ?? out).trim().split('\n').slice(-12).join('\n')}`);
    }
  };
  npm([...npmArgs, '--ignore-scripts'], npmArgs[0]!);
  const addons = addonPackages(dir, cross.npmArch);
  if (addons.build.length) npm(['rebuild', ...addons.build], 'rebuild');
  const nm = join(dir, 'node_modules');
  if (!existsSync(nm)) return;
  for (const p of walk(nm)) {
    const rel = relative(nm, p);
    if (/\/build\/Release\/(obj\.target|\.deps)\//.test(rel) || /\/build\/(Makefile|config\.gypi|.*\.mk)$/.test(rel)) rmSync(p);
    else if (/\/prebuilds\//.test(rel) && (!rel.includes(`/prebuilds/linux-${cross.npmArch}/`) || /musl/.test(rel))) rmSync(p);
  }
  rmSync(join(nm, '.bin'), { recursive: true, force: true });
  for (const p of walk(nm).filter((f) => f.endsWith('.node'))) {
    const elf = readElfDeps(readFileSync(p));
    if (elf.machine !== cross.machine) throw new BspError('ETARGET_NPM', `${what}: ${relative(nm, p)} was not built for ${arch} (ELF machine ${elf.machine})`);
    spawnSync(`${cross.triple}-strip`, ['--strip-unneeded', p]);
  }
}

/** Every file and symlink under a node_modules dir, relative paths, for the initramfs. */
export function treeEntries(dir: string): { rel: string; data?: Buffer; link?: string; mode: number }[] {
  const out: { rel: string; data?: Buffer; link?: string; mode: number }[] = [];
  const visit = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = lstatSync(p);
      if (st.isDirectory()) visit(p);
      else if (st.isFile()) out.push({ rel: relative(dir, p), data: readFileSync(p), mode: st.mode & 0o777 });
    }
  };
  visit(dir);
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}
