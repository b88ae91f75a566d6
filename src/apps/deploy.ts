/**
 * `nodeos-bsp deploy DIR --board HOST`: a new version of an app onto a running board, without
 * reflashing or rebooting. Over the board's `nodeos-deploy` SSH subsystem (wire format in
 * deploy-wire.ts) the board first says which Node it runs (the pinned package its system was
 * built with); the app is then built here exactly as `build --app` builds it (its lock,
 * production dependencies, addons for that Node and arch), sent as a cpio archive with its
 * SHA-256, and run by the board's init in place of the running version. The board keeps the
 * new version only once it has run the settle time without exiting; otherwise it puts the
 * old one back and the deploy fails with EDEPLOY_CRASHED and the end of the app's log.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Cache } from '../artifacts/cache.js';
import { fetchNpm, npmRegistry, resolveNpmVersion, unpackTgz } from '../artifacts/npm.js';
import { writeCpio } from '../cpio/index.js';
import { BspError } from '../errors.js';
import { buildApp, lockPackages, readAppProject } from '../image/apps.js';
import { openSubsystem, type SshClientOptions } from '../net/ssh-client.js';
import { DEFAULT_SETTLE_MS, DEPLOY_PROTOCOL, DEPLOY_SUBSYSTEM, type DeployHeader, type DeployHello, type DeployResult, type PinnedNode } from './deploy-wire.js';

export interface DeployOptions extends SshClientOptions {
  /** How long the new version must run without exiting (default 10 s). */
  settleMs?: number;
  cache?: Cache;
  /** Build from the cache only. */
  offline?: boolean;
}

/** What deploy reports: the board's result and what was built. */
export interface DeployReport extends DeployResult {
  board: string;
  system: string;
  node: string;
  files: number;
  bytes: number;
}

/**
 * The hello's words, each checked before it names a file, a URL or a line on the screen: the
 * board (or whoever answers as one) may say anything. What is checked here is the shape; that
 * the Node it names is one the kit knows is {@link knownNode}'s.
 */
export function helloProblem(h: DeployHello): string | undefined {
  if (typeof h.board !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(h.board)) return 'its board id';
  if (typeof h.build !== 'string' || !/^[0-9a-f]{6,64}$/.test(h.build)) return 'its build id';
  if (h.arch !== 'arm64' && h.arch !== 'arm') return 'its architecture';
  if (h.node === undefined) return undefined;
  const n = h.node;
  if (typeof n !== 'object' || n === null) return 'its Node package';
  if (n.name !== `node-linux-${h.arch}`) return "its Node package's name";
  if (typeof n.version !== 'string' || !/^\d{1,4}\.\d{1,4}\.\d{1,4}$/.test(n.version)) return "its Node package's version";
  if (typeof n.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(n.sha256)) return "its Node package's SHA-256";
  if (typeof n.integrity !== 'string' || !/^sha512-[A-Za-z0-9+/]{86}==$/.test(n.integrity)) return "its Node package's integrity";
  return undefined;
}

/**
 * The board's Node package as this kit knows it: never the board's tarball address. Online,
 * the registry (npm's configured one) says where name@version is and its integrity, which must
 * be the board's; offline, only a tarball already in the cache under the board's SHA-256,
 * verified against it. Either way the unpacked package must be name@version.
 */
export async function knownNode(hello: DeployHello & { node: PinnedNode }, cache: Cache, offline: boolean): Promise<{ root: string; node: PinnedNode }> {
  const n = hello.node;
  let t: PinnedNode;
  if (offline || cache.has(n.sha256)) {
    t = { ...n, tarball: '' };
  } else {
    const registry = npmRegistry();
    const r = await resolveNpmVersion(registry, n.name, n.version);
    if (r.integrity !== n.integrity) throw new BspError('EDEPLOY', `${hello.board} says it runs ${n.name}@${n.version} with another integrity than the registry's: deploy refuses a Node the kit does not know (update the board with nodeos-bsp update)`);
    t = { ...n, tarball: r.tarball };
  }
  const { path } = await fetchNpm(offline || cache.has(n.sha256) ? '' : npmRegistry(), t, cache, offline);
  const root = `${unpackTgz(cache, path, n.sha256)}/package`;
  let pkg: { name?: string; version?: string } = {};
  try {
    pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as typeof pkg;
  } catch {
    /* checked below */
  }
  if (pkg.name !== n.name || pkg.version !== n.version) throw new BspError('EDEPLOY', `${hello.board} names ${n.name}@${n.version}, but the package with its SHA-256 is not that one: deploy refuses a Node the kit does not know`);
  return { root, node: t };
}

function parseHello(line: string | undefined, board: string): DeployHello & { node: NonNullable<DeployHello['node']> } {
  let h: DeployHello | undefined;
  try {
    h = line ? (JSON.parse(line) as DeployHello) : undefined;
  } catch {
    h = undefined;
  }
  if (!h || typeof h.protocol !== 'number') throw new BspError('EDEPLOY', `${board} did not answer as a NodeOS board's deploy service: ${JSON.stringify((line ?? '').slice(0, 200))}`);
  if (h.protocol !== DEPLOY_PROTOCOL) throw new BspError('EDEPLOY_UNSUPPORTED', `${board} speaks deploy protocol ${h.protocol}, this kit ${DEPLOY_PROTOCOL}: use the kit its system was built with, or update the board`);
  const bad = helloProblem(h);
  if (bad) throw new BspError('EDEPLOY', `${board} did not answer as a NodeOS board's deploy service: ${bad} is not valid; nothing was sent`);
  if (!h.node) throw new BspError('EDEPLOY_UNSUPPORTED', `${board}'s system (build ${h.build}) does not say which Node package it was built with: update it to a system built by this kit (nodeos-bsp update --board)`);
  return h as DeployHello & { node: NonNullable<DeployHello['node']> };
}

/** Build `appDir` for the board at `board` and deploy it there. */
export async function deployOverSsh(appDir: string, board: string, o: DeployOptions = {}): Promise<DeployReport> {
  const dir = resolve(appDir);
  const settleMs = o.settleMs ?? DEFAULT_SETTLE_MS;
  if (!Number.isInteger(settleMs) || settleMs < 0 || settleMs > 600_000) throw new BspError('EUSAGE', `--settle must be 0 to 600 seconds, not ${settleMs / 1000}`);
  // The app's own checks (package.json, lock), before connecting to anything.
  const { lockFile } = readAppProject(dir);
  const s = openSubsystem(board, DEPLOY_SUBSYSTEM, 'deploy', o);
  try {
    const line = await Promise.race([s.nextLine(), s.done.then(() => undefined)]);
    // No hello: the board refused (or ssh failed); done says how.
    if (line === undefined) await s.done;
    const hello = parseHello(line, board);
    const cache = o.cache ?? new Cache();
    const offline = o.offline ?? false;
    const node = hello.node;
    // The board's Node package (its headers) is needed only to install dependencies for it.
    let nodePkg = '';
    if (lockPackages(lockFile).length) nodePkg = (await knownNode(hello, cache, offline)).root;
    const built = buildApp(dir, nodePkg, node.version, hello.arch, cache, offline);
    const payload = writeCpio(
      built.files.map((f) => ({ path: f.rel, type: 'file' as const, data: f.data, mode: f.mode })),
      0,
    );
    const header: DeployHeader = { name: built.name, version: built.version, release: built.hash.slice(0, 16), size: payload.length, sha256: createHash('sha256').update(payload).digest('hex'), settleMs };
    o.onStep?.(`built ${built.name} ${built.version} for Node ${node.version} ${hello.arch} (${built.files.length} files, ${(payload.length / 2 ** 20).toFixed(1)} MiB); sending it to ${hello.board} (system ${hello.build})`);
    s.child.stdin!.write(`${JSON.stringify(header)}\n`);
    s.child.stdin!.end(payload);
    const out = await s.done;
    let result: DeployResult;
    try {
      result = JSON.parse(out.at(-1) ?? '') as DeployResult;
    } catch {
      throw new BspError('EDEPLOY', `${board} answered something that is not a deploy result: ${out.join('\n').slice(0, 200)}`);
    }
    return { ...result, board: hello.board, system: hello.build, node: node.version, files: built.files.length, bytes: payload.length };
  } catch (err) {
    // A build that failed here: the board sees the upload end and changes nothing.
    if (s.child.exitCode === null) s.child.kill();
    throw err;
  }
}
