/**
 * The initramfs: Node.js (stripped) with the libraries it needs, busybox, the board's
 * kernel modules in load order, the NodeOS init and runtime, and the board profile.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, realpathSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Artifacts, Cache } from '../artifacts/index.js';
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';
import { packageRoot } from '../paths.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { readElfDeps } from './elf.js';
import { resolveModules, type KernelModule } from './modules.js';
import { treeEntries } from './target-modules.js';

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
  throw new BspError('EARTIFACT', `library ${name} (needed by node or mke2fs) is not in the fetched packages`);
}

/** What went into the initramfs, for the manifest. */
export interface InitramfsContents {
  cpio: Buffer;
  kernelRelease: string;
  modules: KernelModule[];
  libraries: string[];
}

/** Bare modules the on-device runtime may import besides Node's built-ins. */
const RUNTIME_BARE = new Set(['onoff', 'i2c-bus', 'serialport']);

/**
 * The compiled runtime (init, REPL, board) and exactly the kit modules it imports,
 * found by following relative imports from the entry points in dist/src.
 */
export function runtimeFiles(): { rel: string; data: Buffer }[] {
  const dist = join(packageRoot(), 'dist/src');
  const entries = ['runtime/init.js', 'runtime/repl.js', 'runtime/sshd.js', 'runtime/no-compiler.js'];
  if (!existsSync(join(dist, entries[0]!))) throw new BspError('ETOOL', `${dist}/${entries[0]} is missing: run npm run build`);
  const seen = new Map<string, Buffer>();
  const queue = [...entries];
  while (queue.length) {
    const rel = queue.shift()!;
    if (seen.has(rel)) continue;
    const data = readFileSync(join(dist, rel));
    seen.set(rel, data);
    for (const m of data.toString('utf8').matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) queue.push(posix.normalize(posix.join(posix.dirname(rel), spec)));
      else if (!spec.startsWith('node:') && !RUNTIME_BARE.has(spec)) {
        throw new BspError('ERUNTIME_DEPS', `the on-device runtime file ${rel} imports ${spec}, which the image does not ship; keep runtime imports to node: built-ins, kit modules and ${[...RUNTIME_BARE].join(', ')}`);
      }
    }
  }
  return [...seen].map(([rel, data]) => ({ rel, data })).sort((a, b) => a.rel.localeCompare(b.rel));
}

/** Assemble the (uncompressed) cpio archive. */
export function buildInitramfs(
  profile: BoardProfile,
  a: Artifacts,
  cache: Cache,
  build: string,
  mtime: number,
  modulesDir: string,
  runtime: { rel: string; data: Buffer }[] = runtimeFiles(),
): InitramfsContents {
  const node = readFileSync(strippedNode(a, cache));
  const deps = readElfDeps(node);
  const libRoots = [a.debs.libc, a.debs.libstdcxx, a.debs.libgcc, a.debs.libext2fs, a.debs.libcomerr, a.debs.libblkid, a.debs.libuuid].filter((r): r is string => Boolean(r));
  const entries: CpioEntry[] = [
    { path: 'bin/node', type: 'file', data: node, mode: 0o755 },
    // usrmerge layout, as on Debian: /lib and /sbin point into /usr.
    { path: 'lib', type: 'symlink', target: 'usr/lib' },
    { path: 'sbin', type: 'symlink', target: 'bin' },
    { path: 'dev/console', type: 'char', major: 5, minor: 1, mode: 0o600 },
    { path: 'dev/null', type: 'char', major: 1, minor: 3, mode: 0o666 },
    { path: 'root', type: 'dir', mode: 0o700 },
    { path: 'proc', type: 'dir' },
    { path: 'sys', type: 'dir' },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
    { path: 'run', type: 'dir' },
    { path: 'boot', type: 'dir' },
    { path: 'home', type: 'dir' },
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
  // mke2fs from e2fsprogs formats the users' partition as ext4 on first boot.
  if (a.debs.e2fsprogs) {
    const mke2fs = ['usr/sbin/mke2fs', 'sbin/mke2fs'].map((p) => join(a.debs.e2fsprogs!, p)).find(existsSync);
    if (!mke2fs) throw new BspError('EARTIFACT', 'mke2fs is not in e2fsprogs');
    const data = readFileSync(mke2fs);
    entries.push({ path: 'bin/mke2fs', type: 'file', data, mode: 0o755 });
    for (const n of readElfDeps(data).needed) addLib(n);
  }

  const busybox = ['usr/bin/busybox', 'bin/busybox'].map((p) => join(a.debs.busybox, p)).find(existsSync);
  if (!busybox) throw new BspError('EARTIFACT', 'busybox is not in busybox-static');
  entries.push({ path: 'bin/busybox', type: 'file', data: readFileSync(busybox), mode: 0o755 });
  for (const applet of BUSYBOX_APPLETS) entries.push({ path: `bin/${applet}`, type: 'symlink', target: 'busybox' });

  const { release, modules } = resolveModules(a.debs.kernel, profile.kernel.modules);
  for (const m of modules) entries.push({ path: `usr/lib/modules/${release}/${m.relPath}`, type: 'file', data: m.data });

  for (const f of runtime) entries.push({ path: `usr/lib/nodeos/${f.rel}`, type: 'file', data: f.data });
  entries.push({ path: 'usr/lib/nodeos/package.json', type: 'file', data: Buffer.from('{ "type": "module" }\n') });
  entries.push({ path: 'init', type: 'file', mode: 0o755, data: Buffer.from("#!/bin/node\nimport('/usr/lib/nodeos/runtime/init.js');\n") });
  for (const f of treeEntries(modulesDir)) {
    // The board has no compiler: npm's node-gyp (run for any addon without a usable prebuild)
    // is replaced by a script that says so and what to do, instead of a python trace.
    const data = f.rel === NPM_NODE_GYP ? NO_COMPILER_SHIM : f.data!;
    entries.push({ path: `usr/lib/node_modules/${f.rel}`, type: 'file', data, mode: f.mode });
  }
  // npm and npx, whose scripts start with #!/usr/bin/env node.
  entries.push({ path: 'usr/bin/env', type: 'symlink', target: '../../bin/busybox' });
  entries.push({ path: 'bin/npm', type: 'symlink', target: '../usr/lib/node_modules/npm/bin/npm-cli.js' });
  entries.push({ path: 'bin/npx', type: 'symlink', target: '../usr/lib/node_modules/npm/bin/npx-cli.js' });
  const info = {
    board: profile,
    build,
    // The clock's floor on a board without an RTC (seconds since 1970).
    buildEpoch: mtime,
    kernelRelease: release,
    modules: modules.map((m) => ({ name: m.name, path: `/usr/lib/modules/${release}/${m.relPath}` })),
  };
  entries.push({ path: 'etc/nodeos/image.json', type: 'file', data: Buffer.from(JSON.stringify(info, null, 2) + '\n') });
  return { cpio: writeCpio(entries, mtime), kernelRelease: release, modules, libraries };
}
