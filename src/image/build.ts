/**
 * `nodeos-bsp build`: a bootable SD-card image for a board. Artifacts come pinned and
 * verified; the initramfs, boot partition, MBR, .bmap and .sha256 are written by the kit;
 * the same lock file and SOURCE_DATE_EPOCH give the same bytes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync, constants as zc } from 'node:zlib';
import { Cache, fetchArtifacts, type ArtifactOptions, type Artifacts } from '../artifacts/index.js';
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';
import { defaultBoardsDir, insideRoot, profilePathProblem } from '../paths.js';
import { createImage as createEnvImage } from '../uboot-env/index.js';
import { deviceTree, variantOverlay } from '../devicetree/index.js';
import { buildKernel, kernelFiles, kernelSourceOf, type BuiltKernel } from '../kernel/index.js';
import { buildFat32, type Extent, type FatFile } from '../fat/index.js';
import {
  bootPartition,
  bootScript,
  buildMbr,
  imageBytes,
  initialSlotVars,
  isKitEnvVar,
  layoutFor,
  mbrPartitions,
  partitionBytes,
  partUuid,
  SECTOR,
  systemPartition,
  type ImageApp,
  type ImageLayout,
} from '../layout/index.js';
import { createBmap } from './bmap-writer.js';
import { rawPieces, rawRegions } from './raw-loader.js';
import { checkBootChain } from './boot-chain.js';
import { modulesDir } from './kernel-modules.js';
import { boardModel, builtKernelTables, kernelTables, kitEnv, modelRefusal, type KernelTables, type UbootEnvLocation, type UbootMmc } from '../boot-model/index.js';
import { imageCompatibles } from '../boot-model/linux.js';
import { scriptImage } from './uimage.js';
import { writeSparseImage } from './disk.js';
import { buildStage1, runtimeFiles, slotContents, splitModules, systemEntries } from './initramfs.js';
import { STAGE1_INIT } from './stage1.js';
import { SQUASHFS_OPTIONS, squashfsImage } from './squashfs.js';
import { targetModules, targetModulesLockHash, type TargetModules } from './target-modules.js';
import { buildApp } from './apps.js';
import { keyId, loadSigningKey, TRUSTED_KEYS_PATH, trustedKey, writeBundle } from '../update/index.js';
import { ENV_SSH_KEYS, parseAuthorizedKeys } from '../net/ssh-keys.js';
import { applySettings, settingsProblems, type Settings } from '../settings/index.js';

/** A stage of the build, for progress output. */
export type BuildStage = 'fetch' | 'kernel' | 'apps' | 'target-modules' | 'system' | 'initramfs' | 'compress' | 'boot-partition' | 'image' | 'bmap' | 'done';

/** Build events: a stage starting or finishing, and download progress. */
export type BuildEvent =
  | { type: 'stage'; stage: BuildStage; state: 'start' | 'end'; ms?: number }
  | { type: 'download'; label: string; done: number; total?: number };

/** Options of {@link buildImage}. */
export interface BuildOptions extends Omit<ArtifactOptions, 'onProgress'> {
  /** Output directory. Default `out`. */
  outDir?: string;
  /** Boards directory the profile came from; its overlays/ holds the .dtso files. Default: the kit's boards/. */
  boardsDir?: string;
  /** OpenSSH public key lines allowed to log in to the board over SSH (`nodeos_ssh_keys` in uboot.env). */
  sshKeys?: string[];
  /** First-boot settings written into uboot.env (host name, time zone, Wi-Fi, more SSH keys): src/settings. */
  settings?: Settings;
  /** Ed25519 private key (PEM file) that signs the update bundle; the image then trusts its public key. Default: unsigned. */
  signingKey?: string;
  /** npm project directories (each with its package-lock.json) built into the system as apps started at boot. */
  apps?: string[];
  /** Seconds since the epoch for every timestamp. Default $SOURCE_DATE_EPOCH, else the newest pinned Debian file on the card. */
  sourceDateEpoch?: number;
  onEvent?: (e: BuildEvent) => void;
  /** Fragments directory for a board whose kernel the kit builds. Default: the kit's kernel-configs/. */
  kernelConfigsDir?: string;
  /** The kernel build's output, a line at a time (a board whose kernel the kit builds). */
  onKernelLine?: (line: string) => void;
}

/** What a build produced. */
export interface BuildResult {
  image: string;
  bmap: string;
  sha256File: string;
  manifestPath: string;
  lockPath: string;
  /** The update bundle for this build (slot contents, signed when a key was given). */
  bundle: string;
  manifest: BuildManifest;
}

/** The manifest written next to the image. */
export interface BuildManifest {
  board: string;
  build: string;
  sourceDateEpoch: number;
  image: { file: string; size: number; sha256: string; mappedBytes: number };
  /** The card's layout (also layout.json on the boot partition). */
  layout: ImageLayout;
  /** The small initramfs, in slot A's folder on the boot partition. */
  initramfs: { file: string; size: number; uncompressed: number; compression: string };
  /** The system image in slot A's partition. */
  /** `contents`: what the slot holds by part (node, each package, kernel modules...), bytes before compression, largest first. */
  system: { partition: string; size: number; uncompressed: number; sha256: string; compression: string; contents: { part: string; bytes: number }[] };
  /** The update bundle; signedBy is the key's fingerprint (unsigned: boards refuse it). */
  update: { file: string; size: number; signedBy?: string; trustedKeys: string[] };
  kernel: { release: string; file: string; size: number };
  /** The DTB the kit installs, or source "firmware" when the board's firmware provides one. */
  /** variants: revisions whose firmware applies `file` (computed from their tree `source`) to the board's DTB. */
  devicetree: { file?: string; source: string; overlays: string[]; variants?: { id: string; source: string; file: string }[] };
  modules: string[];
  libraries: string[];
  /** npm packages in the image (/usr/lib/node_modules), native ones built for the target. */
  npmModules: { name: string; version: string; integrity?: string }[];
  /** Apps built into the system, with their dependencies from their lock files. */
  apps: (ImageApp & { packages: { name: string; version: string; integrity?: string }[] })[];
  artifacts: Artifacts['lock'];
  bootFiles: { path: string; size: number; sha256: string }[];
  uboot: { env: Record<string, string> };
  /** The boot-chain rules the image was checked against (docs/boot-chain.md), all kept. */
  bootChain: { id: string; step: string; detail: string }[];
  /** The boot model's facts (U-Boot's MMC numbers, the card's, its environment's home) and its findings, all kept. */
  bootModel: { uboot: { mmc: UbootMmc[]; card?: number; env: UbootEnvLocation }; findings: { id: string; detail: string }[]; stage1?: string[] };
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Compress with the zstd CLI, caching by input hash (compression dominates warm builds). */
function zstdCached(cache: Cache, data: Buffer): Buffer {
  const key = sha256(data);
  return cache.derivedFile(`initramfs-${key}.zst`, () => {
    // Level 19 with the default 8 MiB window: the kernel's unzstd handles it.
    const r = spawnSync('zstd', ['-19', '-T0', '-q', '-c', '--no-check'], { input: data, maxBuffer: 1 << 30 });
    if (r.error || r.status !== 0) throw new BspError('ETOOL', `zstd failed: ${r.error?.message ?? r.stderr.toString()} (apt-get install zstd)`);
    return r.stdout;
  });
}

function gzipCached(cache: Cache, data: Buffer, label: string): Buffer {
  const key = sha256(data);
  return cache.derivedFile(`${label}-${key}.gz`, () => gzipSync(data, { level: zc.Z_BEST_COMPRESSION }));
}

/** The unpacked kernel: Debian's package, or the kernel the kit built (set by the 'kernel' stage). */
function kernelRoot(a: Artifacts): string {
  if (!a.debs.kernel) throw new BspError('EARTIFACT', 'no kernel: neither a Debian kernel package nor a built kernel');
  return a.debs.kernel;
}

/**
 * The U-Boot environment: complete, since an imported env replaces the default. bootcmd
 * runs boot.scr, which picks the slot (layout/boot-script.ts) and boots its kernel with the
 * device tree U-Boot itself runs with (${fdtcontroladdr}): the one the board's firmware
 * handed over (the Raspberry Pi firmware loads the kit's DTB and fixes up memory and serial
 * numbers; QEMU's virt generates one). Load addresses and console come from the profile;
 * slot A holds `build`, confirmed.
 */
export function ubootEnvironment(profile: BoardProfile, build: string, layout: ImageLayout, settings: Record<string, string> = {}, version?: number): [string, string][] {
  const uboot = profile.boot.uboot;
  if (!uboot) throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} has no boot.uboot: the kit's images boot through U-Boot`);
  // nodeos.boot names the card's boot partition, so init never takes another NodeOS card's;
  // panic= restarts a board whose system did not come up, which U-Boot then counts.
  const bootargs = [...profile.kernel.cmdline, `nodeos.boot=PARTUUID=${partUuid(layout, bootPartition(layout))}`, 'panic=10'].join(' ');
  const vars = new Map<string, string>([
    // U-Boot's name for both 32- and 64-bit ARM.
    ['arch', 'arm'],
    ['baudrate', String(profile.console.baud)],
    ['board_name', profile.id],
    ['bootargs', bootargs],
    ['bootcmd', `fatload ${uboot.device} \${scriptaddr} ${layout.boot.script}; source \${scriptaddr}`],
    ['bootdelay', '0'],
    ...initialSlotVars(build, layout.bootlimit, version),
    ...Object.entries(settings),
  ]);
  for (const [k, v] of Object.entries(uboot.env ?? {})) {
    if (vars.has(k) || isKitEnvVar(k)) throw new BspError('EPROFILE_INVALID', `${profile.id}: boot.uboot.env sets ${k}, which the kit writes itself`);
    vars.set(k, v);
  }
  return [...vars].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Checked, de-duplicated key lines for {@link ENV_SSH_KEYS}. */
function sshKeyLines(lines: string[]): string {
  const { keys, errors } = parseAuthorizedKeys(lines.join('\n'));
  if (errors.length) throw new BspError('ESSH_KEY', `SSH key ${errors[0]!.line}: ${errors[0]!.error}`);
  return keys.map((k) => k.line).join('\n');
}

/** U-Boot's file inside its unpacked package (EPROFILE_PATH if the profile points outside). */
const ubootPath = (profile: BoardProfile, a: Artifacts): string => insideRoot(join(a.debs.uboot ?? '', 'usr/lib/u-boot'), profile.boot.uboot!.file, 'boot.uboot.file');
/** A file of the U-Boot package (under usr/lib/u-boot); EARTIFACT when the package lacks it. */
function ubootFile(profile: BoardProfile, a: Artifacts, rel: string, field: string): Buffer {
  const p = insideRoot(join(a.debs.uboot ?? '', 'usr/lib/u-boot'), rel, field);
  if (!existsSync(p)) throw new BspError('EARTIFACT', `${rel} is not in ${profile.boot.uboot!.package} (${field})`);
  return readFileSync(p);
}

/** A firmware file inside the firmware package's folder (EPROFILE_PATH if outside). */
const firmwarePath = (profile: BoardProfile, a: Artifacts, name: string): string =>
  insideRoot(insideRoot(a.debs.firmware ?? '', profile.boot.firmware!.dir, 'boot.firmware.dir'), name, 'boot.firmware.files');

/** The newest modification time (seconds) of the Debian files a card carries. */
function newestMtime(profile: BoardProfile, artifacts: Artifacts): number {
  const paths = [kernelFiles(kernelRoot(artifacts)).image];
  if (profile.boot.uboot && artifacts.debs.uboot) paths.push(ubootPath(profile, artifacts));
  const fw = profile.boot.firmware;
  if (fw && artifacts.debs.firmware) paths.push(...fw.files.map((f) => firmwarePath(profile, artifacts, f)));
  return Math.max(0, ...paths.filter((p) => existsSync(p)).map((p) => Math.floor(statSync(p).mtimeMs / 1000)));
}

/**
 * Everything a build of the board takes from outside, fetched, verified and cached so that a
 * later `--offline` build has it: the Debian packages and Node (pinned in `lockPath`), the
 * target's npm modules built for the board, and the board's own kernel when it has one.
 */
export async function fetchForBuild(
  profile: BoardProfile,
  o: ArtifactOptions & {
    cache: Cache;
    onKernelStep?: (step: string) => void;
    onKernelLine?: (line: string) => void;
    kernelConfigsDir?: string;
    /** Runs each step (buildImage reports them as its stages); default: just run it. */
    stage?: <T>(s: 'fetch' | 'kernel' | 'target-modules', fn: () => T | Promise<T>) => Promise<T>;
  },
): Promise<{ artifacts: Artifacts; modules: TargetModules; kernel?: BuiltKernel }> {
  const stage = o.stage ?? (async (_s, fn) => fn());
  const artifacts = await stage('fetch', () => fetchArtifacts(profile, o));
  // The board's own kernel, built from the pinned linux-source (or taken from the cache).
  const kernel =
    profile.kernel.source === 'build'
      ? await stage('kernel', () =>
          buildKernel(profile, {
            cache: o.cache,
            source: kernelSourceOf(artifacts),
            ...(o.kernelConfigsDir ? { kernelConfigsDir: o.kernelConfigsDir } : {}),
            ...(o.onKernelStep ? { onStep: o.onKernelStep } : {}),
            ...(o.onKernelLine ? { onLine: o.onKernelLine } : {}),
          }),
        )
      : undefined;
  const modules = await stage('target-modules', () => targetModules(artifacts.node, artifacts.lock.npm.node!.version, profile.arch.node, o.cache, o.offline ?? false));
  return { artifacts, modules, ...(kernel ? { kernel } : {}) };
}

/**
 * The kernel's driver tables for the boot model: its package's, or for a kernel the kit built
 * (all built in, no modules.alias), those of Debian's build of the same source limited to what
 * is built in (builtKernelTables).
 */
function modelTables(a: Artifacts, kernel: { release: string; image: string }, reference: string | undefined, cache: Cache): KernelTables {
  const dir = modulesDir(kernelRoot(a)).dir;
  if (!reference) return kernelTables(dir, kernel.release, kernel.image, cache);
  const ref = a.lock.debian.kernel;
  const src = a.lock.debian.kernelSource;
  if (!ref || !src || ref.version !== src.version) {
    throw new BspError('EARTIFACT', `the kernel is built from ${src ? `${src.package} ${src.version}` : 'linux-source'} but Debian's build of it is ${ref ? `${ref.package} ${ref.version}` : 'not pinned'}: the boot model reads driver ids from the same version: remove debian.kernel and debian.kernelSource from the lock file and build again, which pins both from one index`);
  }
  const r = kernelFiles(reference);
  const builtin = readFileSync(join(dir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('/').pop()!.replace(/\.ko$/, ''));
  return builtKernelTables(kernelTables(modulesDir(reference).dir, r.release, r.image, cache), { release: kernel.release, builtinModules: builtin, builtinCompatibles: imageCompatibles(readFileSync(kernel.image)) });
}

/** Where a build into `outDir` puts a board's files (`nodeos-<board>.*`). */
export function buildOutputs(outDir: string, boardId: string): { image: string; lock: string; manifest: string; bundle: string } {
  const base = join(outDir, `nodeos-${boardId}`);
  return { image: `${base}.img`, lock: `${base}.lock.json`, manifest: `${base}.manifest.json`, bundle: `${base}.nodeos-update` };
}

/** Build the image for a board. */
export async function buildImage(profile: BoardProfile, o: BuildOptions = {}): Promise<BuildResult> {
  const emit = o.onEvent ?? (() => undefined);
  const outDir = o.outDir ?? 'out';
  const cache = o.cache ?? new Cache();
  const stage = async <T>(s: BuildStage, fn: () => T | Promise<T>): Promise<T> => {
    const t = Date.now();
    emit({ type: 'stage', stage: s, state: 'start' });
    const r = await fn();
    emit({ type: 'stage', stage: s, state: 'end', ms: Date.now() - t });
    return r;
  };
  if (profile.arch.node !== 'arm64') throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} is ${profile.arch.isa}: the kit builds arm64 images only (${profile.statusReason ?? ''})`);
  if (!profile.boot.uboot) throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} has no boot.uboot: the kit's images boot through U-Boot`);
  // Settings are checked before anything is fetched or written.
  const problem = settingsProblems(o.settings ?? {})[0];
  if (problem) throw new BspError('ESETTINGS', `${problem.field}: ${problem.message}`);
  mkdirSync(outDir, { recursive: true });
  const outputs = buildOutputs(outDir, profile.id);
  const lockPath = o.lockPath ?? outputs.lock;

  const { artifacts, modules, kernel: own } = await fetchForBuild(profile, {
    ...o,
    cache,
    lockPath,
    stage,
    onProgress: (label, done, total) => emit({ type: 'download', label, done, ...(total !== undefined ? { total } : {}) }),
  });
  // From here on the board's own kernel is used exactly as Debian's unpacked kernel package would be.
  const reference = own ? artifacts.debs.kernel : undefined;
  if (own) artifacts.debs.kernel = own.root;
  const builtKernel = own?.key;
  // Timestamps: SOURCE_DATE_EPOCH, else the newest of the pinned Debian files the card
  // carries (kernel, U-Boot, firmware): the same lock gives the same time, and never 1980.
  const epoch = o.sourceDateEpoch ?? (process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : newestMtime(profile, artifacts));
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new BspError('EUSAGE', `SOURCE_DATE_EPOCH must be whole seconds since 1970, not ${JSON.stringify(process.env.SOURCE_DATE_EPOCH)}`);
  const nodeVersion = artifacts.lock.npm.node!.version;
  const apps = await stage('apps', () => (o.apps ?? []).map((d) => buildApp(d, artifacts.node, nodeVersion, profile.arch.node, cache, o.offline ?? false)));
  const dup = apps.find((x, i) => apps.findIndex((y) => y.name === x.name) !== i);
  if (dup) throw new BspError('EAPP', `two apps are named ${dup.name}: app names (package names without their scope) must differ`);
  // The build id names exactly what went in: the lock, the profile, the epoch, the kit's runtime and the apps.
  const runtime = runtimeFiles();
  const runtimeHash = sha256(Buffer.concat(runtime.map((f) => f.data)));
  const signingKey = o.signingKey ? loadSigningKey(o.signingKey) : undefined;
  const trusted = signingKey ? [trustedKey(signingKey)] : [];
  const build = sha256(JSON.stringify([artifacts.lock, profile, epoch, runtimeHash, targetModulesLockHash(), STAGE1_INIT, SQUASHFS_OPTIONS, trusted, ...(apps.length ? [apps.map((x) => x.hash)] : []), ...(builtKernel ? [builtKernel] : [])])).slice(0, 12);
  const ids = createHash('sha256').update(`${profile.id}:${build}`).digest();
  // Boot loader pieces the boot ROM reads from raw sectors (boot.uboot.raw), checked before anything is written.
  const env = kitEnv(profile, artifacts.debs.uboot ?? '');
  const raw = rawPieces(profile, (f) => ubootFile(profile, artifacts, f, 'boot.uboot.raw'), Math.min(...profile.partitions.map((p) => p.startMiB)) * (1 << 20), env.clear);
  const layout = layoutFor(profile, ids.readUInt32LE(4), { envSize: env.size, raw: rawRegions(raw) });
  const kernel = kernelFiles(kernelRoot(artifacts));
  const overlaysDir = join(o.boardsDir ?? defaultBoardsDir(), 'overlays');
  const dtb = profile.devicetree.dtb ? deviceTree(profile, kernel.dtbDir, overlaysDir, cache) : undefined;
  // Revisions the firmware gives the same DTB plus an overlay of its own (the Pi 5's D0): their
  // tree from the kernel package, with the same overlays, and the overlay that makes it.
  const variants = (profile.devicetree.variants ?? []).map((v) => {
    if (!dtb) throw new BspError('EPROFILE_INVALID', `devicetree.variants needs devicetree.dtb: ${v.id} is a revision of the board's own tree`);
    const tree = deviceTree({ devicetree: { ...profile.devicetree, dtb: v.dtb } }, kernel.dtbDir, overlaysDir, cache);
    return { ...v, tree, dtbo: variantOverlay(dtb, tree, cache.tempPath('dtb-variant'), `${v.dtb} (${v.id})`) };
  });
  // The boot model (src/boot-model), before anything is written: what the board's U-Boot does
  // with this card (its build configuration, its binary, the DTB the firmware hands it: QEMU puts
  // cards elsewhere than boards do); the card under Linux (its controller's closure in the DTB,
  // each provider's driver from the kernel's own tables: stage 1 loads them wherever they live);
  // the functions the profile claims (USB, Ethernet...: the system loads their modules).
  const model = boardModel(profile, {
    ubootDir: artifacts.debs.uboot ?? '',
    ...(dtb ? { dtb } : {}),
    envFile: layout.env.file,
    envSize: layout.env.size,
    tables: () => modelTables(artifacts, kernel, reference, cache),
    variants: variants.map((v) => ({ id: v.id, dtb: v.dtb, tree: v.tree })),
  });
  const refusal = modelRefusal(profile, model);
  if (refusal) throw refusal;
  const kmods = splitModules(profile, kernelRoot(artifacts), model.card ?? [], model.functions);
  const system = await stage('system', () => {
    const c = systemEntries(profile, layout, artifacts, cache, build, epoch, modules.dir, kmods.release, kmods.system, runtime, apps);
    // The keys this system takes updates from (none: it takes none).
    c.entries.push({ path: TRUSTED_KEYS_PATH, type: 'file', data: Buffer.from(JSON.stringify({ keys: trusted }, null, 2) + '\n') });
    return { ...c, image: squashfsImage(c.entries, epoch, cache) };
  });
  const slotA = systemPartition(layout, 'A');
  if (system.image.length > partitionBytes(slotA).size) {
    throw new BspError('ESYSTEM_SIZE', `the system is ${(system.image.length / (1 << 20)).toFixed(1)} MiB but slot A (${slotA.name}) holds ${slotA.sizeMiB} MiB: make the system partitions larger in the profile`);
  }
  const stage1 = await stage('initramfs', () => buildStage1(layout, artifacts, build, epoch, kmods.release, kmods.stage1));
  const [initrdZst, imageGz] = await stage('compress', () => [zstdCached(cache, stage1), gzipCached(cache, readFileSync(kernel.image), 'kernel')] as const);

  const envVars = [...applySettings(new Map(ubootEnvironment(profile, build, layout, o.sshKeys?.length ? { [ENV_SSH_KEYS]: sshKeyLines(o.sshKeys) } : {}, epoch)), o.settings ?? {})].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const envText = envVars.map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
  const bootFiles: FatFile[] = await stage('boot-partition', () => {
    const envImage = createEnvImage(envText, { size: layout.env.size, pad: 0 });
    const files: FatFile[] = [
      ...(profile.boot.files ?? []).map((f) => ({ path: f.path, data: Buffer.from([...f.lines, ''].join('\n')) })),
      { path: layout.boot.slots.A.kernel, data: imageGz },
      { path: layout.boot.slots.A.initramfs, data: initrdZst },
      { path: layout.env.file, data: envImage },
      // The copy boot.scr falls back to when uboot.env is unreadable (a write cut short).
      { path: layout.env.backup, data: envImage },
      { path: layout.boot.script, data: scriptImage(bootScript(layout, envVars), { name: `nodeos ${profile.id}`, arch: profile.arch.kernel, time: epoch }) },
      { path: layout.boot.layoutFile, data: Buffer.from(JSON.stringify(layout, null, 2) + '\n') },
    ];
    if (dtb) files.push({ path: layout.boot.dtb, data: dtb });
    if (dtb && profile.devicetree.firmwareName) files.push({ path: profile.devicetree.firmwareName, data: dtb });
    for (const v of variants) files.push({ path: `overlays/${v.firmwareOverlay}.dtbo`, data: v.dtbo });
    // U-Boot on the boot partition, for the firmware or QEMU to load; a board whose boot ROM
    // reads it from raw sectors has it there only.
    if (!raw.some((r) => !r.zeros)) files.push({ path: layout.boot.uboot, data: ubootFile(profile, artifacts, profile.boot.uboot!.file, 'boot.uboot.file') });
    const fw = profile.boot.firmware;
    for (const name of fw?.files ?? []) {
      const p = firmwarePath(profile, artifacts, name);
      if (!existsSync(p)) throw new BspError('EARTIFACT', `firmware file ${name} is not in ${fw!.package} (${fw!.dir})`);
      files.push({ path: name, data: readFileSync(p) });
    }
    const seen = new Set<string>();
    for (const f of files) {
      const problem = profilePathProblem(f.path);
      if (problem) throw new BspError('EPROFILE_PATH', `${profile.id}: boot partition file "${f.path}" ${problem}`);
      if (seen.has(f.path.toLowerCase())) throw new BspError('EPROFILE_INVALID', `${profile.id}: two files named ${f.path} on the boot partition`);
      seen.add(f.path.toLowerCase());
    }
    return files;
  });

  const imageSize = imageBytes(layout);
  const image = outputs.image;
  const boot = partitionBytes(bootPartition(layout));
  const { mapped } = await stage('image', () => {
    const fat = buildFat32(bootFiles, { size: boot.size, label: 'NODEOS', volumeId: ids.readUInt32LE(0), mtime: epoch, hiddenSectors: boot.offset / SECTOR });
    const extents: Extent[] = [
      { offset: 0, data: buildMbr(mbrPartitions(layout), parseInt(layout.diskSignature, 16)) },
      ...fat.extents.map((e) => ({ offset: e.offset + boot.offset, data: e.data })),
      // Slot B stays a hole: empty until the first update writes it.
      { offset: partitionBytes(slotA).offset, data: system.image },
      ...raw.map((r) => ({ offset: r.offset, data: r.data })),
    ];
    const tmp = `${image}.partial`;
    const m = writeSparseImage(tmp, imageSize, extents);
    renameSync(tmp, image);
    return { mapped: m };
  });
  const bundleData = writeBundle({ board: profile.id, build, version: epoch, layout, files: { kernel: imageGz, initramfs: initrdZst, system: system.image }, ...(signingKey ? { key: signingKey } : {}) });
  const bundle = outputs.bundle;
  writeFileSync(`${bundle}.partial`, bundleData);
  renameSync(`${bundle}.partial`, bundle);
  const bmapText = await stage('bmap', () => createBmap(image, imageSize, mapped));
  const bmap = `${image}.bmap`;
  writeFileSync(bmap, bmapText);
  const imageSha = sha256(readFileSync(image));
  const sha256File = `${image}.sha256`;
  writeFileSync(sha256File, `${imageSha}  ${basename(image)}\n`);

  // The steps a real board takes that QEMU skips: an image that breaks one is not written out as done.
  const chain = checkBootChain(image, profile, { envSize: layout.env.size });
  const broken = chain.filter((r) => !r.ok);
  if (broken.length > 0) throw new BspError('EBOOT_CHAIN', `${image} would not boot on a real ${profile.name}: ${broken.map((r) => `${r.id}: ${r.detail}`).join('; ')}`);
  const uncompressed = system.entries.reduce((n, e) => n + (e.type === 'file' ? e.data.length : 0), 0);
  const manifest: BuildManifest = {
    board: profile.id,
    build,
    sourceDateEpoch: epoch,
    image: { file: basename(image), size: imageSize, sha256: imageSha, mappedBytes: mapped.reduce((n, [a, b]) => n + b - a, 0) },
    layout,
    initramfs: { file: layout.boot.slots.A.initramfs, size: initrdZst.length, uncompressed: stage1.length, compression: 'zstd -19' },
    system: { partition: slotA.name, size: system.image.length, uncompressed, sha256: sha256(system.image), compression: `squashfs ${SQUASHFS_OPTIONS.join(' ')}`, contents: slotContents(system.entries) },
    update: { file: basename(bundle), size: bundleData.length, ...(signingKey ? { signedBy: keyId(signingKey) } : {}), trustedKeys: trusted.map((k) => k.id) },
    kernel: { release: kernel.release, file: layout.boot.slots.A.kernel, size: imageGz.length },
    devicetree: dtb
      ? { file: layout.boot.dtb, source: profile.devicetree.dtb!, overlays: profile.devicetree.overlays, ...(variants.length ? { variants: variants.map((v) => ({ id: v.id, source: v.dtb, file: `overlays/${v.firmwareOverlay}.dtbo` })) } : {}) }
      : { source: 'firmware', overlays: [] },
    modules: [...kmods.stage1, ...kmods.system].map((m) => m.name),
    libraries: system.libraries,
    npmModules: modules.packages,
    apps: apps.map(({ name, version, dir, main, network, root, packages }) => ({ name, version, dir, main, network, root, packages })),
    artifacts: artifacts.lock,
    bootFiles: bootFiles.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256(f.data) })).sort((a, b) => a.path.localeCompare(b.path)),
    uboot: { env: Object.fromEntries(envVars) },
    bootChain: chain.map(({ id, step, detail }) => ({ id, step, detail })),
    bootModel: { uboot: { mmc: model.uboot.mmc, ...(model.uboot.cardNumber !== undefined ? { card: model.uboot.cardNumber } : {}), env: model.uboot.env }, findings: model.findings.map(({ id, detail }) => ({ id, detail })), ...(model.card ? { stage1: model.card } : {}) },
  };
  const manifestPath = outputs.manifest;
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  emit({ type: 'stage', stage: 'done', state: 'end' });
  return { image, bmap, sha256File, manifestPath, lockPath, bundle, manifest };
}
