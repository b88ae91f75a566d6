/**
 * Apps deployed to a running board (`nodeos-bsp deploy DIR --board HOST`), board side. Each
 * deployed version is a release, kept on the users' partition:
 *
 *   /home/.local/share/nodeos/deployed/<name>/releases/<release>/   the app (package.json, node_modules…)
 *   /home/.local/share/nodeos/deployed/<name>/current  → releases/<release>   what runs at boot
 *   /home/.local/share/nodeos/deployed/<name>/previous → releases/<release>   the one before
 *
 * A release is written whole (fsynced, renamed into place), started in place of the running
 * version, and becomes `current` (a symlink renamed over the old one: a power cut leaves the
 * old or the new one) only once it has run its settle time without exiting; one that exits
 * sooner is removed and the old version started again. At boot a deployed app runs instead of
 * the image's app of the same name only on the system it was deployed to: a system update
 * brings its own version (and the deployed one comes back if the board falls back).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { appSettings, type AppPackageJson } from '../apps/manifest.js';
import { DEPLOY_PROTOCOL, parseDeployHeader, type DeployHeader, type DeployHello, type DeployResult } from '../apps/deploy-wire.js';
import { readCpio, type CpioMember } from '../cpio/index.js';
import { BspError } from '../errors.js';
import type { AppSpec, AppStatus } from './apps.js';

export const DEPLOY_ROOT = '/home/.local/share/nodeos/deployed';
/** What a release records about itself, next to its files. */
export const RELEASE_META = '.nodeos-release.json';

export interface ReleaseMeta {
  name: string;
  version: string;
  release: string;
  /** The system build it was deployed on. */
  system: string;
  deployedAt: string;
}

/** A received upload: the checked header and the archive's members. */
export interface Upload {
  header: DeployHeader;
  members: CpioMember[];
}

/** Read the header line and exactly `size` bytes after it; check their SHA-256 and unpack the list. */
export async function readUpload(input: Readable): Promise<Upload> {
  let head = Buffer.alloc(0);
  let header: DeployHeader | undefined;
  // One buffer of the announced size (a board may have 512 MiB in all: no second copy).
  let body = Buffer.alloc(0);
  let got = 0;
  const hash = createHash('sha256');
  // Not destroyed when the upload ends: on SSH, input is the channel the answer goes back on.
  for await (const c of input.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    let chunk = Buffer.isBuffer(c) ? c : Buffer.from(c);
    if (!header) {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) {
        if (head.length > 4096) throw new BspError('EDEPLOY_PAYLOAD', 'the upload does not start with a deploy header line');
        continue;
      }
      header = parseDeployHeader(head.subarray(0, nl).toString('utf8'));
      body = Buffer.alloc(header.size);
      chunk = head.subarray(nl + 1);
    }
    if (got + chunk.length > header.size) throw new BspError('EDEPLOY_PAYLOAD', `the upload is longer than its header says (${header.size} bytes)`);
    chunk.copy(body, got);
    hash.update(chunk);
    got += chunk.length;
  }
  if (!header) throw new BspError('EDEPLOY_PAYLOAD', 'the upload ended before its header');
  if (got !== header.size) throw new BspError('EDEPLOY_PAYLOAD', `the upload ended after ${got} of ${header.size} bytes; nothing was changed`);
  if (hash.digest('hex') !== header.sha256) throw new BspError('EDEPLOY_PAYLOAD', 'the upload does not match its SHA-256; nothing was changed');
  let members: CpioMember[];
  try {
    members = readCpio(body);
  } catch (err) {
    throw new BspError('EDEPLOY_PAYLOAD', `the app's archive: ${(err as Error).message}`);
  }
  return { header, members };
}

const appDir = (root: string, name: string): string => join(root, name);
const releaseDir = (root: string, name: string, release: string): string => join(root, name, 'releases', release);

/** The release a link (current or previous) points at, if any. */
export function linkedRelease(root: string, name: string, link: 'current' | 'previous'): string | undefined {
  try {
    const t = readlinkSync(join(appDir(root, name), link));
    const m = /^releases\/([0-9a-f]{16})$/.exec(t);
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

export function releaseMeta(root: string, name: string, release: string): ReleaseMeta | undefined {
  try {
    return JSON.parse(readFileSync(join(releaseDir(root, name, release), RELEASE_META), 'utf8')) as ReleaseMeta;
  } catch {
    return undefined;
  }
}

function writeDurably(path: string, data: Buffer, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write an upload as releases/<release> (into a temporary directory first, every file
 * fsynced, then renamed). Paths must stay inside the app and be files or directories; modes
 * lose set-id bits. The release must be an app: a package.json naming it and its main file.
 */
export function stageRelease(root: string, upload: Upload, system: string, now = new Date()): string {
  const { header, members } = upload;
  const files = new Map<string, Extract<CpioMember, { type: 'file' }>>();
  for (const m of members) {
    const p = posix.normalize(m.path);
    if (p.startsWith('../') || p === '..' || posix.isAbsolute(p) || p === RELEASE_META) throw new BspError('EDEPLOY_PAYLOAD', `the app's archive holds ${JSON.stringify(m.path)}, which is not a path inside the app`);
    if (m.type === 'symlink') throw new BspError('EDEPLOY_PAYLOAD', `the app's archive holds a symlink (${m.path}); apps are sent as files`);
    if (m.type === 'file') files.set(p, m);
  }
  const pkgFile = files.get('package.json');
  if (!pkgFile) throw new BspError('EDEPLOY_PAYLOAD', "the app's archive has no package.json");
  let pkg: AppPackageJson;
  try {
    pkg = JSON.parse(pkgFile.data.toString('utf8')) as AppPackageJson;
  } catch (err) {
    throw new BspError('EDEPLOY_PAYLOAD', `the app's package.json: ${(err as Error).message}`);
  }
  const s = appSettings(pkg, header.name);
  if (s.name !== header.name) throw new BspError('EDEPLOY_PAYLOAD', `the header names ${header.name} but the app's package.json names ${s.name}`);
  if (!files.has(s.main)) throw new BspError('EDEPLOY_PAYLOAD', `the app's main file ${s.main} is not in its archive`);
  const releases = join(appDir(root, header.name), 'releases');
  mkdirSync(releases, { recursive: true });
  const dest = releaseDir(root, header.name, header.release);
  const tmp = join(releases, `.${header.release}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    const dirs = new Set<string>();
    for (const [p, f] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const d = dirname(join(tmp, p));
      if (!dirs.has(d)) mkdirSync(d, { recursive: true });
      dirs.add(d);
      writeDurably(join(tmp, p), f.data, f.mode & 0o777);
    }
    const meta: ReleaseMeta = { name: header.name, version: header.version, release: header.release, system, deployedAt: now.toISOString() };
    writeDurably(join(tmp, RELEASE_META), Buffer.from(JSON.stringify(meta, null, 2) + '\n'), 0o644);
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) fsyncDir(d);
    // A release that is neither current nor previous (a deploy cut short) is replaced.
    rmSync(dest, { recursive: true, force: true });
    renameSync(tmp, dest);
    fsyncDir(releases);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return dest;
}

/** How a release runs (from its own package.json), as the supervisor takes it. */
export function releaseSpec(root: string, name: string, release: string): AppSpec {
  const dir = releaseDir(root, name, release);
  const meta = releaseMeta(root, name, release);
  if (!meta) throw new BspError('EDEPLOY', `${dir} is not a deployed release (no ${RELEASE_META})`);
  const s = appSettings(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as AppPackageJson, dir);
  if (s.name !== name) throw new BspError('EDEPLOY', `${dir}/package.json names ${s.name}, not ${name}`);
  if (!existsSync(join(dir, s.main))) throw new BspError('EDEPLOY', `${dir}: its main file ${s.main} is missing`);
  return { name, version: s.version, dir, main: s.main, network: s.network, root: s.root, source: 'deployed', release };
}

function relink(root: string, name: string, link: 'current' | 'previous', release: string): void {
  const dir = appDir(root, name);
  const tmp = join(dir, `.${link}.tmp`);
  rmSync(tmp, { force: true });
  symlinkSync(`releases/${release}`, tmp);
  renameSync(tmp, join(dir, link));
}

/**
 * Make `release` the one that runs at boot; the one it replaces becomes previous. Any other
 * release (older ones, deploys cut short) is removed.
 */
export function commitRelease(root: string, name: string, release: string): { previous?: string } {
  const old = linkedRelease(root, name, 'current');
  const previous = old && old !== release ? old : linkedRelease(root, name, 'previous');
  if (previous && previous !== release) relink(root, name, 'previous', previous);
  relink(root, name, 'current', release);
  fsyncDir(appDir(root, name));
  if (!previous || previous === release) rmSync(join(appDir(root, name), 'previous'), { force: true });
  const keep = new Set([release, previous]);
  const releases = join(appDir(root, name), 'releases');
  for (const r of readdirSync(releases)) if (!keep.has(r)) rmSync(join(releases, r), { recursive: true, force: true });
  return previous && previous !== release ? { previous } : {};
}

/** Remove a release that did not settle (never the current or previous one). */
export function discardRelease(root: string, name: string, release: string): void {
  if (linkedRelease(root, name, 'current') === release || linkedRelease(root, name, 'previous') === release) return;
  rmSync(releaseDir(root, name, release), { recursive: true, force: true });
  const dir = appDir(root, name);
  // A first deploy that failed leaves nothing behind.
  if (!linkedRelease(root, name, 'current') && existsSync(dir) && readdirSync(join(dir, 'releases')).length === 0) rmSync(dir, { recursive: true, force: true });
}

/**
 * The deployed apps to start at boot on system `build`. One that replaces an image app runs
 * only on the system it was deployed to; `said` gets why one is not used.
 */
export function deployedSpecs(root: string, build: string, imageApps: string[], said: (msg: string) => void): AppSpec[] {
  if (!existsSync(root)) return [];
  const out: AppSpec[] = [];
  for (const name of readdirSync(root).sort()) {
    const release = linkedRelease(root, name, 'current');
    if (!release) continue;
    try {
      const meta = releaseMeta(root, name, release);
      if (imageApps.includes(name) && meta?.system !== build) {
        said(`app ${name}: the deployed ${meta?.version ?? ''} (release ${release}) was deployed on system ${meta?.system ?? '?'}; this system (${build}) brings its own ${name}, which runs (deploy again to replace it)`);
        continue;
      }
      out.push(releaseSpec(root, name, release));
    } catch (err) {
      said(`app ${name}: deployed release ${release} not started: ${(err as Error).message}`);
    }
  }
  return out;
}

/** What the board's side of the deploy subsystem needs. */
export interface DeployContext {
  hello: Omit<DeployHello, 'protocol'>;
  /** The apps built into the running system (a deploy of one of them runs instead of it). */
  imageApps: string[];
  root?: string;
  /** Ask init to run the staged release in place of the app (src/runtime/app-control.ts). */
  start(name: string, release: string, settleMs: number): Promise<AppStatus>;
}

/**
 * One deploy session (the `nodeos-deploy` subsystem): say hello, take the upload, stage it
 * and have init run it; init commits it when it settled and rolls back when it did not.
 */
export async function receiveDeploy(input: Readable, say: (line: string) => void, step: (msg: string) => void, ctx: DeployContext): Promise<DeployResult> {
  const root = ctx.root ?? DEPLOY_ROOT;
  say(JSON.stringify({ protocol: DEPLOY_PROTOCOL, ...ctx.hello }));
  const upload = await readUpload(input);
  const { name, version, release, settleMs } = upload.header;
  step(`received ${name} ${version} (release ${release}, ${upload.members.filter((m) => m.type === 'file').length} files, ${(upload.header.size / 2 ** 20).toFixed(1)} MiB)`);
  const current = linkedRelease(root, name, 'current');
  if (current === release) return { name, version, release, unchanged: true };
  const before = current ? releaseMeta(root, name, current) : undefined;
  stageRelease(root, upload, ctx.hello.build);
  step(`starting ${name} ${version}; it replaces the running version once it has run ${settleMs / 1000} s`);
  const status = await ctx.start(name, release, settleMs);
  return {
    name,
    version,
    release,
    ...(before ? { previous: { version: before.version, release: before.release } } : {}),
    ...(ctx.imageApps.includes(name) ? { replacesImageApp: true } : {}),
    ...(status.pid !== undefined ? { pid: status.pid } : {}),
  };
}
