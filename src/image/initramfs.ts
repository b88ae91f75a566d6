/**
 * What goes on the card besides the boot files: the small initramfs (busybox, the modules
 * that reach the card, /init) and the system slot's files (Node.js, libraries, busybox, the
 * other modules, the NodeOS runtime, npm and the target modules, the board profile).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { WIFI_PACKAGES, type Artifacts, type Cache, type WifiRole } from '../artifacts/index.js';
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';
import { packageRoot } from '../paths.js';
import { writeCpio, type CpioEntry } from '../cpio/index.js';
import { readElfDeps } from './elf.js';
import { resolveModules, type KernelModule } from './kernel-modules.js';
import { firmwareEntries } from './firmware.js';
import { keymaps } from './keymaps.js';
import { keymapPath } from '../settings/env.js';
import { ALWAYS_SHIPPED_MODULES } from '../kernel/fragments.js';
import { normalizeModule } from '../kernel/index.js';
import { STAGE1_INIT, stage1Config } from './stage1.js';
import { SYSTEM_INIT, type ImageApp, type ImageLayout } from '../layout/index.js';
import { treeEntries } from './target-modules.js';
import { BUNDLE_DIR, staleRuntimeInput } from './runtime-stamp.js';
import type { BuiltApp } from './apps.js';

/** busybox applets NodeOS links; Node does everything else. */
export const BUSYBOX_APPLETS = ['env', 'sh', 'mount', 'umount', 'insmod', 'rmmod', 'lsmod', 'ls', 'cat', 'dmesg', 'sync', 'reboot', 'poweroff', 'mkdir', 'ln', 'rm', 'mv', 'cp', 'mknod', 'sleep', 'i2cdetect', 'fdisk'];

/** npm's own node-gyp entry point (npm runs it through `node`, whatever npm_config_node_gyp says). */
export const NPM_NODE_GYP = 'npm/node_modules/node-gyp/bin/node-gyp.js';
const NO_COMPILER_SHIM = Buffer.from("#!/usr/bin/env node\n// NodeOS: no compiler on the board (see the kit's src/runtime/no-compiler.ts).\nimport('/usr/lib/nodeos/runtime/no-compiler.js');\n");

/** The target's node binary, stripped once with the cross binutils and cached (a checked tree). */
export function strippedNode(a: Artifacts, cache: Cache): string {
  const dir = cache.tree(cache.namedPath('derived', `node-${a.lock.npm.node!.sha256}`), 'node-strip', (tmp) => {
    copyFileSync(join(a.node, 'bin/node'), join(tmp, 'node'));
    const strip = a.lock.arch === 'arm64' ? 'aarch64-linux-gnu-strip' : 'arm-linux-gnueabihf-strip';
    const r = spawnSync(strip, ['--strip-all', join(tmp, 'node')]);
    if (r.error || r.status !== 0) throw new BspError('ETOOL', `cannot strip node with ${strip}: ${r.error?.message ?? r.stderr.toString()} (apt-get install binutils-aarch64-linux-gnu)`);
  });
  return join(dir, 'node');
}

/** Find a shared library by soname in the unpacked Debian packages. */
function findLib(roots: string[], name: string): string {
  for (const r of roots) {
    for (const dir of ['usr/lib/aarch64-linux-gnu', 'lib/aarch64-linux-gnu', 'usr/lib', 'lib']) {
      const p = join(r, dir, name);
      if (existsSync(p)) return realpathSync(p);
    }
  }
  throw new BspError('EARTIFACT', `library ${name} (needed by node, mke2fs, partx or wpa_supplicant) is not in the fetched packages`);
}

/** Bare modules the on-device runtime may import besides Node's built-ins. */
const RUNTIME_BARE = new Set(['onoff', 'i2c-bus', 'serialport']);

/** The runtime's entry points on the board: init, the REPL, SSH server and fleet agent it starts, npm's no-compiler shim, apps' `nodeos-bsp/board`. */
export const RUNTIME_ENTRIES = ['runtime/init.js', 'runtime/repl.js', 'runtime/sshd.js', 'runtime/fleet.js', 'runtime/no-compiler.js', 'runtime/app-board.js'];

/**
 * The on-device runtime: one file per entry point, bundled by `npm run build` (esbuild, into
 * dist/board/) from the compiled kit modules each imports. A Node process on the board then
 * reads and compiles one file instead of resolving some sixty ES modules, which under QEMU took
 * seconds per process. The fleet agent's bundle also carries the mqtt package (its own esbuild
 * run, minified: only boards in a fleet read it). Refused when a bundle is missing or was made
 * from other contents of its inputs than today's (runtime-stamp.ts: an image must never carry a
 * stale runtime), or imports a package the image does not ship.
 */
export function runtimeFiles(root = packageRoot()): { rel: string; data: Buffer }[] {
  const dir = join(root, BUNDLE_DIR);
  const rebuild = 'run npm run build';
  const files = RUNTIME_ENTRIES.map((rel) => {
    const p = join(dir, rel);
    if (!existsSync(p)) throw new BspError('ETOOL', `${p} is missing: ${rebuild}`);
    return { rel, data: readFileSync(p) };
  });
  const stale = staleRuntimeInput(root);
  if (stale) throw new BspError('ETOOL', `the bundled runtime in ${dir} was not made from the current ${stale}: ${rebuild}`);
  for (const f of files) {
    for (const m of f.data.toString('utf8').matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith('node:') && !RUNTIME_BARE.has(spec)) {
        throw new BspError('ERUNTIME_DEPS', `the on-device runtime ${f.rel} imports ${spec}, which the image does not ship; keep runtime imports to node: built-ins, kit modules and ${[...RUNTIME_BARE].join(', ')}`);
      }
    }
  }
  return files.map(({ rel, data }) => ({ rel, data }));
}

/** Module folders whose drivers reach the card and its filesystem: loaded by the small initramfs. */
// The watchdog's too: on a Pi it is also the kernel's way to restart, and a stage 1 that gives up
// must be restarted (panic=) for U-Boot to count the try; without it the board hangs for ever.
// And the hardware RNG's: Node's first getrandom() waits until the entropy pool is ready.
const STAGE1_MODULE_DIRS = ['kernel/drivers/mmc/', 'kernel/drivers/block/', 'kernel/drivers/virtio/', 'kernel/fs/squashfs/', 'kernel/drivers/watchdog/', 'kernel/drivers/char/hw_random/'];

/**
 * The board's modules split in load order: those the small initramfs loads, and the rest (the
 * system's init loads them). `card` is what the boot model found the card needs (its
 * controller, regulators, GPIO and pin controllers...): stage 1, whatever folder they are in;
 * `functions` is what it found the profile's functions need (USB, Ethernet...): the system.
 */
export function splitModules(profile: BoardProfile, kernelRoot: string, card: string[] = [], functions: string[] = []): { release: string; stage1: KernelModule[]; system: KernelModule[] } {
  const { release, modules } = resolveModules(kernelRoot, [...card, ...profile.kernel.modules, ...functions, ...ALWAYS_SHIPPED_MODULES]);
  const cardSet = new Set(card.map(normalizeModule));
  const byName = new Map(modules.map((m) => [m.name, m]));
  const early = new Set<string>();
  const add = (m: KernelModule): void => {
    if (early.has(m.name)) return;
    early.add(m.name);
    for (const d of m.depends) if (byName.has(d)) add(byName.get(d)!);
  };
  for (const m of modules) if (cardSet.has(m.name) || STAGE1_MODULE_DIRS.some((d) => m.relPath.startsWith(d)) || ALWAYS_SHIPPED_MODULES.includes(m.name)) add(m);
  return { release, stage1: modules.filter((m) => early.has(m.name)), system: modules.filter((m) => !early.has(m.name)) };
}

/**
 * Drivers of what no one uses before the console's prompt: the network, USB, input, sound,
 * display and Bluetooth. init loads them once the prompt shows (with what depends on them);
 * the filesystems, I2C, SPI, LEDs and the like load before it, as `board` offers them at once.
 */
const AFTER_PROMPT_MODULE_DIRS = ['kernel/drivers/usb/', 'kernel/drivers/net/', 'kernel/net/', 'kernel/drivers/hid/', 'kernel/drivers/input/', 'kernel/drivers/bluetooth/', 'kernel/sound/', 'kernel/drivers/media/', 'kernel/drivers/gpu/'];

/** The system's modules (in load order) split into those init loads before the prompt and after it; a module that needs a later one is later too. */
export function promptSplit(modules: KernelModule[]): { now: KernelModule[]; later: KernelModule[] } {
  const later = new Set<string>();
  // Load order puts dependencies first: one pass sees each module's dependencies decided.
  for (const m of modules) if (AFTER_PROMPT_MODULE_DIRS.some((d) => m.relPath.startsWith(d)) || m.depends.some((d) => later.has(d))) later.add(m.name);
  return { now: modules.filter((m) => !later.has(m.name)), later: modules.filter((m) => later.has(m.name)) };
}

const busyboxBinary = (a: Artifacts): Buffer => {
  const p = ['usr/bin/busybox', 'bin/busybox'].map((x) => join(a.debs.busybox, x)).find(existsSync);
  if (!p) throw new BspError('EARTIFACT', 'busybox is not in busybox-static');
  return readFileSync(p);
};

/** busybox applets the small initramfs's /init uses. */
const STAGE1_APPLETS = ['sh', 'mount', 'insmod', 'cat', 'tr', 'mkdir', 'readlink', 'basename', 'dirname', 'hexdump', 'sleep', 'switch_root', 'losetup'];

/** The small initramfs (uncompressed cpio): busybox, the card's modules, /init and its configuration. */
export function buildStage1(layout: ImageLayout, a: Artifacts, build: string, mtime: number, release: string, modules: KernelModule[]): Buffer {
  const entries: CpioEntry[] = [
    { path: 'init', type: 'file', mode: 0o755, data: Buffer.from(STAGE1_INIT) },
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: busyboxBinary(a) },
    ...STAGE1_APPLETS.map((x): CpioEntry => ({ path: `bin/${x}`, type: 'symlink', target: 'busybox' })),
    { path: 'dev/console', type: 'char', major: 5, minor: 1, mode: 0o600 },
    { path: 'dev/null', type: 'char', major: 1, minor: 3, mode: 0o666 },
    ...['proc', 'sys', 'sysroot'].map((d): CpioEntry => ({ path: d, type: 'dir' })),
    ...modules.map((m): CpioEntry => ({ path: `usr/lib/modules/${release}/${m.relPath}`, type: 'file', data: m.data })),
    { path: 'etc/nodeos/stage1.conf', type: 'file', data: Buffer.from(stage1Config(layout, build, modules.map((m) => `/usr/lib/modules/${release}/${m.relPath}`))) },
  ];
  return writeCpio(entries, mtime);
}

/** What went into the system slot, for the manifest. */
export interface SystemContents {
  entries: CpioEntry[];
  kernelRelease: string;
  modules: KernelModule[];
  libraries: string[];
}

/**
 * Files of the target modules that only building them needed, or that nothing on the board
 * reads: C and C++ sources and headers and gyp files of the native packages (the addons are
 * built; the board has no compiler), and npm's man pages and HTML manual (`npm help` shows
 * them with man or a browser, neither of which a board has; `npm help-search` reads
 * docs/content, which stays). Their
 * packages stay whole otherwise, so `npm ls -g` still finds every one.
 */
export function buildOnly(rel: string): boolean {
  if (/\.(?:c|cc|cpp|cxx|h|hh|hpp|gyp|gypi)$/.test(rel)) return true;
  return rel.startsWith('npm/man/') || rel.startsWith('npm/docs/output/');
}

/** What the slot holds, by part, largest first (bytes before compression): the build's summary and manifest. */
export function slotContents(entries: readonly CpioEntry[]): { part: string; bytes: number }[] {
  const parts = new Map<string, number>();
  for (const e of entries) {
    if (e.type !== 'file' || !e.data) continue;
    const p = e.path;
    const part =
      p === 'bin/node' ? 'node'
      : p.startsWith('usr/lib/node_modules/') ? `node_modules/${p.split('/')[3]!.startsWith('@') ? p.split('/').slice(3, 5).join('/') : p.split('/')[3]}`
      : p.startsWith('usr/lib/modules/') ? 'kernel modules'
      : p.startsWith('usr/lib/firmware/') || p.startsWith('lib/firmware/') ? 'firmware'
      : p.startsWith('usr/lib/nodeos/apps/') ? `app ${p.split('/')[4]}`
      : p.startsWith('usr/lib/nodeos/') ? 'nodeos runtime'
      : p.startsWith('usr/lib/') ? 'libraries'
      : p.startsWith('bin/') || p.startsWith('usr/bin/') ? 'tools (busybox, mke2fs, partx, wpa_supplicant)'
      : 'other';
    parts.set(part, (parts.get(part) ?? 0) + e.data.length);
  }
  return [...parts].map(([part, bytes]) => ({ part, bytes })).sort((a, b) => b.bytes - a.bytes || a.part.localeCompare(b.part));
}

/**
 * The system slot's files: Node.js (stripped) with the libraries it needs, busybox, mke2fs,
 * the board's other kernel modules, the NodeOS init and runtime, npm and the target modules,
 * the board profile and the layout.
 */
export function systemEntries(
  profile: BoardProfile,
  layout: ImageLayout,
  a: Artifacts,
  cache: Cache,
  build: string,
  mtime: number,
  modulesDir: string,
  release: string,
  modules: KernelModule[],
  runtime: { rel: string; data: Buffer }[] = runtimeFiles(),
  apps: BuiltApp[] = [],
): SystemContents {
  const node = readFileSync(strippedNode(a, cache));
  const deps = readElfDeps(node);
  const wifiLibs = (Object.keys(WIFI_PACKAGES) as WifiRole[]).map((r) => a.debs[r]);
  const libRoots = [a.debs.libc, a.debs.libstdcxx, a.debs.libgcc, a.debs.libext2fs, a.debs.libcomerr, a.debs.libblkid, a.debs.libuuid, a.debs.libsmartcols, ...wifiLibs].filter((r): r is string => Boolean(r));
  const entries: CpioEntry[] = [
    { path: 'bin/node', type: 'file', data: node, mode: 0o755 },
    // usrmerge layout, as on Debian: /lib and /sbin point into /usr.
    { path: 'lib', type: 'symlink', target: 'usr/lib' },
    { path: 'sbin', type: 'symlink', target: 'bin' },
    // Where Node's module search ends for any file (an ES module has no NODE_PATH): apps
    // deployed to /home and users' own scripts find nodeos-bsp/board and the kit's packages,
    // as apps built into /usr/lib/nodeos/apps do.
    { path: 'node_modules', type: 'symlink', target: 'usr/lib/node_modules' },
    { path: 'root', type: 'dir', mode: 0o700 },
    // Mount points: the small initramfs moves /proc, /sys and /dev here; init mounts the rest.
    ...['proc', 'sys', 'dev', 'run', 'boot', 'home', 'etc'].map((d): CpioEntry => ({ path: d, type: 'dir' })),
    { path: 'tmp', type: 'dir', mode: 0o1777 },
  ];
  const libraries: string[] = [];
  const seen = new Set<string>();
  const addLib = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const real = findLib(libRoots, name);
    const data = readFileSync(real);
    const target = name.startsWith('ld-linux') ? `usr/lib/${name}` : `usr/lib/aarch64-linux-gnu/${name}`;
    entries.push({ path: target, type: 'file', data, mode: 0o755 });
    libraries.push(name);
    for (const n of readElfDeps(data).needed) addLib(n);
  };
  if (deps.interpreter) addLib(deps.interpreter.split('/').pop()!);
  for (const n of deps.needed) addLib(n);
  /** A dynamically linked tool from an unpacked package, with the libraries it needs. */
  const addTool = (pkgRoot: string, paths: string[], name: string, pkg: string): void => {
    const found = paths.map((p) => join(pkgRoot, p)).find(existsSync);
    if (!found) throw new BspError('EARTIFACT', `${name} is not in ${pkg}`);
    const data = readFileSync(found);
    entries.push({ path: `bin/${name}`, type: 'file', data, mode: 0o755 });
    for (const n of readElfDeps(data).needed) addLib(n);
  };
  // mke2fs from e2fsprogs formats the users' partition as ext4 on first boot.
  if (a.debs.e2fsprogs) addTool(a.debs.e2fsprogs, ['usr/sbin/mke2fs', 'sbin/mke2fs'], 'mke2fs', 'e2fsprogs');
  // partx tells the kernel about that new partition while the system slot is mounted.
  if (a.debs.utillinux) addTool(a.debs.utillinux, ['usr/bin/partx', 'usr/sbin/partx'], 'partx', 'util-linux');
  // Wi-Fi: wpa_supplicant joins the networks (runtime/wifi.ts); wpa_cli talks to its control
  // socket, a UNIX datagram socket Node cannot open.
  if (a.debs.wpasupplicant) {
    addTool(a.debs.wpasupplicant, ['usr/sbin/wpa_supplicant', 'sbin/wpa_supplicant'], 'wpa_supplicant', 'wpasupplicant');
    addTool(a.debs.wpasupplicant, ['usr/sbin/wpa_cli', 'sbin/wpa_cli'], 'wpa_cli', 'wpasupplicant');
  }

  entries.push({ path: 'bin/busybox', type: 'file', data: busyboxBinary(a), mode: 0o755 });
  for (const applet of BUSYBOX_APPLETS) entries.push({ path: `bin/${applet}`, type: 'symlink', target: 'busybox' });

  for (const m of modules) entries.push({ path: `usr/lib/modules/${release}/${m.relPath}`, type: 'file', data: m.data });
  // The screen console's keyboard layouts (init loads the one the settings name).
  if (profile.screen) for (const k of keymaps(a, cache)) entries.push({ path: keymapPath(k.layout).slice(1), type: 'file', data: k.data });
  // The Wi-Fi radio's firmware and the regulatory database, loaded by brcmfmac and cfg80211 from /lib/firmware.
  for (const f of firmwareEntries(profile, a)) entries.push({ path: f.path, type: 'file', data: f.data });

  for (const f of runtime) entries.push({ path: `usr/lib/nodeos/${f.rel}`, type: 'file', data: f.data });
  entries.push({ path: 'usr/lib/nodeos/package.json', type: 'file', data: Buffer.from('{ "type": "module" }\n') });
  entries.push({ path: SYSTEM_INIT.slice(1), type: 'file', mode: 0o755, data: Buffer.from("#!/bin/node\nimport('/usr/lib/nodeos/runtime/init.js');\n") });
  // Apps' `import { board } from 'nodeos-bsp/board'`: a package whose one export is the runtime's.
  entries.push({ path: 'usr/lib/node_modules/nodeos-bsp/package.json', type: 'file', data: Buffer.from(JSON.stringify({ name: 'nodeos-bsp', type: 'module', exports: { './board': './board.js' } }, null, 2) + '\n') });
  entries.push({ path: 'usr/lib/node_modules/nodeos-bsp/board.js', type: 'symlink', target: '../../nodeos/runtime/app-board.js' });
  for (const f of treeEntries(modulesDir)) {
    if (buildOnly(f.rel)) continue;
    // The board has no compiler: npm's node-gyp (run for any addon without a usable prebuild)
    // is replaced by a script that says so and what to do, instead of a python trace.
    const data = f.rel === NPM_NODE_GYP ? NO_COMPILER_SHIM : f.data!;
    entries.push({ path: `usr/lib/node_modules/${f.rel}`, type: 'file', data, mode: f.mode });
  }
  // npm and npx, whose scripts start with #!/usr/bin/env node.
  entries.push({ path: 'usr/bin/env', type: 'symlink', target: '../../bin/busybox' });
  entries.push({ path: 'bin/npm', type: 'symlink', target: '../usr/lib/node_modules/npm/bin/npm-cli.js' });
  entries.push({ path: 'bin/npx', type: 'symlink', target: '../usr/lib/node_modules/npm/bin/npx-cli.js' });
  for (const app of apps) for (const f of app.files) entries.push({ path: `${app.dir.slice(1)}/${f.rel}`, type: 'file', data: f.data, mode: f.mode });
  const split = promptSplit(modules);
  const onBoard = (m: KernelModule): { name: string; path: string } => ({ name: m.name, path: `/usr/lib/modules/${release}/${m.relPath}` });
  const info = {
    board: profile,
    build,
    // The clock's floor on a board without an RTC (seconds since 1970).
    buildEpoch: mtime,
    kernelRelease: release,
    // The Node package as the lock pins it: nodeos-bsp deploy builds apps' addons for it.
    node: a.lock.npm.node,
    layout,
    // Loaded by init before the console's prompt, and once it shows (promptSplit).
    modules: split.now.map(onBoard),
    modulesLater: split.later.map(onBoard),
    apps: apps.map(({ name, version, dir, main, network, root }): ImageApp => ({ name, version, dir, main, network, root })),
  };
  entries.push({ path: 'etc/nodeos/image.json', type: 'file', data: Buffer.from(JSON.stringify(info, null, 2) + '\n') });
  return { entries, kernelRelease: release, modules, libraries };
}
