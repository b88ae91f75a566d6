/**
 * The board's own kernel: Debian's linux-source package (verified through the signed index
 * like every artifact), configured as allnoconfig + `source/build.config` + the board's
 * fragments with every driver built in, checked (a fragment setting that did not survive
 * olddefconfig fails the build, as `kernel check` does), cross-compiled with Debian's
 * gcc-aarch64-linux-gnu, and laid out like an unpacked Debian kernel package (the Image as
 * boot/vmlinuz-REL, its config as boot/config-REL, DTBs under usr/lib/linux-image-REL, and
 * usr/lib/modules/REL/modules.builtin) so the image builder takes either the same way.
 *
 * The result is cached by (source package, fragments, recipe, compiler) outside the clone;
 * the object tree of each board is kept beside it, so a changed fragment rebuilds only what
 * it touches.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { checkTree, type Artifacts, type Cache, type LockedDeb } from '../artifacts/index.js';
import type { BoardProfile } from '../boards/index.js';
import { BspError, KernelConfigError } from '../errors.js';
import { defaultKernelConfigsDir } from '../paths.js';
import { checkConfig, mergeConfigs, parseConfig, type ConfigFile, type UnmetSymbol } from './config.js';
import { withDirLock } from '../dir-lock.js';
import { kernelFragments, readFragment } from './fragments.js';

/** Bump when the steps below change what a given input produces. */
const RECIPE = 2;

/** The kernel architecture and cross compiler per Node architecture. */
const TARGETS: Record<string, { arch: string; cross: string; image: string } | undefined> = {
  arm64: { arch: 'arm64', cross: 'aarch64-linux-gnu-', image: 'arch/arm64/boot/Image' },
};

/** Host tools a kernel build needs, with the Debian package that has each. */
const TOOLS: [string, string][] = [
  ['make', 'make'],
  ['flex', 'flex'],
  ['bison', 'bison'],
  ['bc', 'bc'],
  ['gcc', 'gcc'],
  ['aarch64-linux-gnu-gcc', 'gcc-aarch64-linux-gnu'],
];

/** A kernel the kit built, as an unpacked-package-shaped tree. */
export interface BuiltKernel {
  /** The tree, shaped like an unpacked Debian kernel package. */
  root: string;
  release: string;
  /** The cache key: what the kernel was built from. */
  key: string;
  /** Whether it came from the cache. */
  cached: boolean;
  /** What build.json in the tree records. */
  info: BuiltKernelInfo;
}

/** build.json: what went in and what came out. */
export interface BuiltKernelInfo {
  board: string;
  source: { package: string; version: string; sha256: string };
  compiler: string;
  fragments: string[];
  release: string;
  imageBytes: number;
  dtbs: string[];
  builtinModules: number;
  /** Wall time of the build that made it (configure + compile), seconds. */
  buildSeconds: number;
  jobs: number;
}

/** Options of {@link buildKernel}. */
export interface KernelBuildOptions {
  cache: Cache;
  /** The unpacked linux-source-<version> package and its lock entry. */
  source: { root: string; deb: LockedDeb };
  kernelConfigsDir?: string;
  /** Parallel make jobs. Default: the number of CPUs. */
  jobs?: number;
  /** make's output, a line at a time (default: dropped; the end of it is in a failure's message). */
  onLine?: (line: string) => void;
  /** A step starting: 'extract', 'configure', 'compile', 'install'. */
  onStep?: (step: string) => void;
}

/** The pinned, unpacked linux-source of fetched artifacts (fetchArtifacts of a kernel.source: build profile). */
export function kernelSourceOf(a: Artifacts): KernelBuildOptions['source'] {
  const deb = a.lock.debian.kernelSource;
  if (!a.debs.kernelSource || !deb) throw new BspError('EARTIFACT', 'no linux-source among the artifacts: fetch them for a profile with kernel.source: build');
  return { root: a.debs.kernelSource, deb };
}

/** The cross compiler's version line (part of the cache key: another compiler is another kernel). */
export function compilerVersion(cross: string): string {
  const r = spawnSync(`${cross}gcc`, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new BspError('ETOOL', `${cross}gcc is missing: apt-get install gcc-aarch64-linux-gnu`);
  return r.stdout.split('\n')[0]!.trim();
}

function checkTools(): void {
  const missing = TOOLS.filter(([t]) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) {
    throw new BspError('ETOOL', `building a kernel needs ${missing.map(([t]) => t).join(', ')}: apt-get install ${[...new Set(missing.map(([, p]) => p))].join(' ')}`);
  }
}

/**
 * The fragments as the build applies them: `source/build.config` first, then the board's;
 * a module (`=m`) becomes built in (`=y`), since the kit's kernels load no modules.
 */
export function buildFragments(profile: BoardProfile, dir: string): { file: string; text: string }[] {
  return kernelFragments(profile, 'build').map((file) => ({ file, text: readFragment(file, dir).replace(/^(CONFIG_[A-Za-z0-9_]+)=m$/gm, '$1=y') }));
}

/** The module names a kernel has built in, from its modules.builtin.modinfo (`name.file=path` entries). */
export function builtinModules(modinfo: Buffer): string[] {
  const files = new Set<string>();
  for (const kv of modinfo.toString('utf8').split('\0')) {
    const m = /^[^.=]+\.file=(.+)$/.exec(kv);
    if (m) files.add(`kernel/${m[1]}.ko`);
  }
  return [...files].sort();
}

/**
 * Modules linked into a built-in one (fragments' `[built in with it: ...]`), listed in
 * modules.builtin as `kernel/<symbol>/<name>.ko` so a profile naming them (for Debian's
 * modular kernel) builds with this kernel too.
 */
export function partsBuiltIn(config: ConfigFile, frags: { file: string; text: string }[]): string[] {
  const built = new Set(config.settings.filter((s) => s.value === 'y').map((s) => s.symbol));
  return frags
    .flatMap((f) => parseConfig(f.text, f.file).settings)
    .filter((s) => s.builtInWith && built.has(s.symbol))
    .flatMap((s) => s.builtInWith!.map((m) => `kernel/${s.symbol.replace(/^CONFIG_/, '').toLowerCase()}/${m}.ko`));
}

/** Run make in the source tree; the last lines of its output go into a failure's message. */
function make(src: string, args: string[], o: KernelBuildOptions, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('make', ['-C', src, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const tail: string[] = [];
    let partial = '';
    const take = (chunk: Buffer): void => {
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        o.onLine?.(l);
        tail.push(l);
        if (tail.length > 40) tail.shift();
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err) => reject(new BspError('ETOOL', `cannot run make: ${err.message} (apt-get install make)`)));
    child.on('close', (code) => {
      if (partial) tail.push(partial);
      if (code === 0) resolve();
      else reject(new BspError('EKERNEL_BUILD', `${what} failed (make exited ${String(code)}); the end of its output:\n${tail.join('\n')}`));
    });
  });
}

/**
 * Unpack linux-source-<v>.tar.xz once into the work directory (marked done only when tar
 * succeeded). Returns the tree and the tarball's time (the package's, not the unpacking's).
 */
function extractSource(pkgRoot: string, work: string): { src: string; mtime: Date } {
  const src = join(work, 'src');
  const done = join(work, 'src.extracted');
  const dir = join(pkgRoot, 'usr/src');
  const tarball = existsSync(dir) ? readdirSync(dir).find((f) => /^linux-source-.*\.tar\.(xz|zst|gz|bz2)$/.test(f)) : undefined;
  if (!tarball) throw new BspError('EARTIFACT', `no usr/src/linux-source-*.tar.* in the kernel source package at ${pkgRoot}`);
  const mtime = statSync(join(dir, tarball)).mtime;
  if (existsSync(done)) return { src, mtime };
  rmSync(src, { recursive: true, force: true });
  mkdirSync(src, { recursive: true });
  const r = spawnSync('tar', ['-xf', join(dir, tarball), '-C', src, '--strip-components=1'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new BspError('EARTIFACT', `cannot unpack ${tarball}: ${r.error?.message ?? r.stderr}`);
  writeFileSync(done, `${tarball}\n`);
  return { src, mtime };
}

/**
 * The cache key of a board's kernel: source package, the fragments' settings as applied (not
 * their comments: a reworded reason rebuilds nothing; but their [built in with it: ...] parts,
 * which go into modules.builtin), the recipe, the compiler, the DTBs.
 */
export function kernelKey(profile: BoardProfile, deb: LockedDeb, dir: string, compiler: string, frags = buildFragments(profile, dir)): string {
  const settings = frags.map((f) => [f.file, parseConfig(f.text, f.file).settings.map((s) => [s.symbol, s.value ?? null, ...(s.builtInWith ? [s.builtInWith] : [])])]);
  return createHash('sha256')
    .update(JSON.stringify([RECIPE, profile.arch.kernel, deb.sha256, settings, compiler, dtbTargets(profile)]))
    .digest('hex');
}

const dtbTargets = (profile: BoardProfile): string[] => (profile.devicetree.dtb ? [profile.devicetree.dtb] : []);

/**
 * Build (or take from the cache) the board's kernel. EKERNEL_CONFIG when a fragment setting
 * did not survive the configuration (its dependencies are not met: add them to a fragment),
 * EKERNEL_BUILD when the compile failed, ETOOL when a host tool is missing.
 */
export async function buildKernel(profile: BoardProfile, o: KernelBuildOptions): Promise<BuiltKernel> {
  const target = TARGETS[profile.arch.node];
  if (!target || profile.arch.kernel !== target.arch) throw new BspError('EBOARD_UNSUPPORTED', `${profile.id}: the kit builds ${Object.keys(TARGETS).join(', ')} kernels, not ${profile.arch.kernel}`);
  const dir = o.kernelConfigsDir ?? defaultKernelConfigsDir();
  const compiler = compilerVersion(target.cross);
  // Read once: the key names exactly the fragments the build applies.
  const frags = buildFragments(profile, dir);
  const key = kernelKey(profile, o.source.deb, dir, compiler, frags);
  const dest = o.cache.namedPath('kernels', `${profile.id}-${key.slice(0, 16)}`);
  // A cached kernel is used only while it matches its manifest; one that does not is built again.
  const cached = (): BuiltKernel | undefined => {
    if (!existsSync(dest)) return undefined;
    const problem = checkTree(dest);
    if (problem) {
      o.cache.onRebuild(`kernel ${profile.id} (${dest})`, problem);
      o.cache.discard(dest);
      return undefined;
    }
    const info = JSON.parse(readFileSync(join(dest, 'build.json'), 'utf8')) as BuiltKernelInfo;
    return { root: dest, release: info.release, key, cached: true, info };
  };
  const hit = cached();
  if (hit) return hit;

  checkTools();
  const work = o.cache.namedPath('kernel-build', o.source.deb.sha256.slice(0, 16));
  mkdirSync(work, { recursive: true });
  let made: BuiltKernelInfo | undefined;
  // One build per work tree at a time: a parallel build of the same source waits, then finds
  // the kernel cached (or builds its own board's in its own object tree).
  let other: BuiltKernel | undefined;
  await withDirLock(join(work, 'lock'), async () => {
    other = cached();
    if (other) return;
    const started = Date.now();
    o.onStep?.('extract');
    const { src, mtime } = extractSource(o.source.root, work);
    const obj = join(work, `obj-${profile.id}`);
    mkdirSync(obj, { recursive: true });
    const jobs = o.jobs ?? Math.max(1, cpus().length);
    const args = [
      `O=${obj}`,
      `ARCH=${target.arch}`,
      `CROSS_COMPILE=${target.cross}`,
      // uname -v names the source (the tarball's time), not the machine or hour of the build.
      `KBUILD_BUILD_USER=nodeos`,
      `KBUILD_BUILD_HOST=nodeos-bsp`,
      `KBUILD_BUILD_VERSION=1`,
      `KBUILD_BUILD_TIMESTAMP=${new Date(Math.floor(mtime.getTime() / 1000) * 1000).toUTCString()}`,
    ];

    o.onStep?.('configure');
    await make(src, [...args, 'allnoconfig'], o, 'make allnoconfig');
    const merged = mergeConfigs({ file: 'allnoconfig', text: readFileSync(join(obj, '.config'), 'utf8') }, frags);
    writeFileSync(join(obj, '.config'), merged.text);
    await make(src, [...args, 'olddefconfig'], o, 'make olddefconfig');
    const config = parseConfig(readFileSync(join(obj, '.config'), 'utf8'), '.config');
    const result = checkConfig(config, frags.map((f) => parseConfig(f.text, f.file)), []);
    if (!result.ok) throw new KernelConfigError('EKERNEL_CONFIG', unmetMessage(profile, result.unmet));

    o.onStep?.('compile');
    await make(src, [...args, `-j${jobs}`, 'Image', ...dtbTargets(profile)], o, `compiling ${profile.id}'s kernel`);
    // The release the build wrote (with CONFIG_LOCALVERSION, known once the build synced its config).
    const release = readFileSync(join(obj, 'include/config/kernel.release'), 'utf8').trim();

    o.onStep?.('install');
    const info: BuiltKernelInfo = {
      board: profile.id,
      source: { package: o.source.deb.package, version: o.source.deb.version, sha256: o.source.deb.sha256 },
      compiler,
      fragments: frags.map((f) => f.file),
      release,
      imageBytes: statSync(join(obj, target.image)).size,
      dtbs: dtbTargets(profile),
      builtinModules: 0,
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
      jobs,
    };
    o.cache.tree(dest, `kernel ${profile.id}`, (tmp) => {
      const put = (from: string, to: string): void => {
        mkdirSync(dirname(join(tmp, to)), { recursive: true });
        copyFileSync(from, join(tmp, to));
      };
      put(join(obj, target.image), `boot/vmlinuz-${release}`);
      put(join(obj, '.config'), `boot/config-${release}`);
      for (const dtb of info.dtbs) put(join(obj, 'arch', target.arch, 'boot/dts', dtb), `usr/lib/linux-image-${release}/${dtb}`);
      const builtin = [...builtinModules(readFileSync(join(obj, 'modules.builtin.modinfo'))), ...partsBuiltIn(config, frags)].sort();
      info.builtinModules = builtin.length;
      mkdirSync(join(tmp, 'usr/lib/modules', release), { recursive: true });
      writeFileSync(join(tmp, 'usr/lib/modules', release, 'modules.builtin'), builtin.join('\n') + '\n');
      writeFileSync(join(tmp, 'build.json'), JSON.stringify(info, null, 2) + '\n');
    });
    made = info;
  });
  if (other) return other;
  return { root: dest, release: made!.release, key, cached: false, info: made! };
}

function unmetMessage(profile: BoardProfile, unmet: UnmetSymbol[]): string {
  const lines = unmet.map((u) => `  ${u.symbol}: want ${u.wanted}, have ${u.actual} (kernel-configs/${u.fragment}:${u.line})`);
  return `${unmet.length} fragment setting(s) did not survive configuring ${profile.id}'s kernel (their dependencies are off: add those to a fragment):\n${lines.join('\n')}`;
}
