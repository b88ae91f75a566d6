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
import { resolve } from 'node:path';
import { Cache } from '../artifacts/cache.js';
import { fetchNpm, npmRegistry, unpackTgz } from '../artifacts/npm.js';
import { writeCpio } from '../cpio/index.js';
import { BspError } from '../errors.js';
import { buildApp, lockPackages, readAppProject } from '../image/apps.js';
import { openSubsystem, type SshClientOptions } from '../net/ssh-client.js';
import { DEFAULT_SETTLE_MS, DEPLOY_PROTOCOL, DEPLOY_SUBSYSTEM, type DeployHeader, type DeployHello, type DeployResult } from './deploy-wire.js';

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

function parseHello(line: string | undefined, board: string): DeployHello & { node: NonNullable<DeployHello['node']> } {
  let h: DeployHello | undefined;
  try {
    h = line ? (JSON.parse(line) as DeployHello) : undefined;
  } catch {
    h = undefined;
  }
  if (!h || typeof h.protocol !== 'number') throw new BspError('EDEPLOY', `${board} did not answer as a NodeOS board's deploy service: ${JSON.stringify((line ?? '').slice(0, 200))}`);
  if (h.protocol !== DEPLOY_PROTOCOL) throw new BspError('EDEPLOY_UNSUPPORTED', `${board} speaks deploy protocol ${h.protocol}, this kit ${DEPLOY_PROTOCOL}: use the kit its system was built with, or update the board`);
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
    if (lockPackages(lockFile).length) {
      const { path } = await fetchNpm(cache.has(node.sha256) ? '' : npmRegistry(), node, cache, offline);
      nodePkg = `${unpackTgz(cache, path, node.sha256)}/package`;
    }
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
