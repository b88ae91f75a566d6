/**
 * The controller's side on this machine: connect to the broker as the controller, check a
 * bundle at the URL the boards will fetch, plan or resume a rollout, write a broker's config.
 * The CLI (`nodeos-bsp fleet`) parses options and prints; the work is here.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { BspError } from '../errors.js';
import { openBundle } from '../update/index.js';
import type { BrokerClient } from './agent.js';
import { mosquittoConfig, type BrokerConfigOptions } from './broker-config.js';
import { readFleet, readRollouts, type BoardRow } from './controller.js';
import { bundleUrlProblem, type JobAction } from './jobs.js';
import { createRollout, type RolloutOptions, type RolloutState } from './rollout.js';
import { checkName } from './topics.js';

export interface BrokerLogin {
  /** mqtts://HOST:PORT; mqtt:// only to this machine. */
  broker: string;
  /** The CA file (PEM) the broker's certificate must chain to; default the system's. */
  caFile?: string;
  user: string;
  /** A file holding the password (its first line). */
  passwordFile?: string;
}

/** A connection as the controller. */
export interface ControllerConnection {
  client: BrokerClient;
  close: () => void;
}

/** Connect as the controller; EUSAGE for a URL that is not TLS to another machine, EFLEET_BROKER when the broker refuses or cannot be reached. */
export async function connectController(o: BrokerLogin): Promise<ControllerConnection> {
  let url: URL;
  try {
    url = new URL(o.broker);
  } catch {
    throw new BspError('EUSAGE', `--broker ${o.broker} is not a URL: give mqtts://HOST:PORT`);
  }
  const local = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'mqtts:' && !(url.protocol === 'mqtt:' && local)) throw new BspError('EUSAGE', `--broker ${o.broker}: use mqtts:// (TLS); plain mqtt:// only to a broker on this machine`);
  if (url.username || url.password) throw new BspError('EUSAGE', '--broker must not carry a user name or password: use --user and --password-file');
  const password = o.passwordFile ? readFileSync(o.passwordFile, 'utf8').split(/\r?\n/)[0] : undefined;
  const client = mqtt.connect(o.broker, {
    ...(o.caFile ? { ca: readFileSync(o.caFile) } : {}),
    username: o.user,
    ...(password !== undefined ? { password } : {}),
    clientId: `nodeos-controller-${randomBytes(4).toString('hex')}`,
    reconnectPeriod: 0,
    connectTimeout: 15_000,
    protocolVersion: 5,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', (err) => reject(new BspError('EFLEET_BROKER', `${o.broker}: ${err.message} (check --broker, --ca, --user and --password-file)`, { cause: err })));
    client.once('close', () => reject(new BspError('EFLEET_BROKER', `${o.broker}: the connection closed before the broker accepted it (check --broker and --ca)`)));
  }).catch((err: unknown) => {
    client.end(true);
    throw err;
  });
  return { client: client as unknown as BrokerClient, close: () => void client.end(true) };
}

/** A bundle file's SHA-256, size, board and build. Unsigned bundles are refused (EUPDATE_UNSIGNED). */
export function inspectBundleFile(file: string, label = file): { sha256: string; size: number; board: string; build: string } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new BspError('EFLEET_BUNDLE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const read = (offset: number, length: number): Buffer => {
      const b = Buffer.alloc(length);
      return b.subarray(0, readSync(fd, b, 0, length, offset));
    };
    const hash = createHash('sha256');
    let size = 0;
    for (let chunk = read(0, 1 << 20); chunk.length; chunk = read(size, 1 << 20)) {
      hash.update(chunk);
      size += chunk.length;
    }
    const b = openBundle(read, size, label);
    if (!b.signature.length) throw new BspError('EUPDATE_UNSIGNED', `${label} is not signed: boards take signed bundles only (build it with --signing-key)`);
    return { sha256: hash.digest('hex'), size, board: b.header.board, build: b.header.build };
  } finally {
    closeSync(fd);
  }
}

/** Download a bundle from where the boards will fetch it: its SHA-256, size, board and build. Unsigned bundles are refused. */
export async function inspectBundleUrl(url: string): Promise<{ sha256: string; size: number; board: string; build: string }> {
  const p = bundleUrlProblem(url);
  if (p) throw new BspError('EUSAGE', p);
  const res = await fetch(url).catch((err: Error) => {
    throw new BspError('EFLEET_BUNDLE', `${url}: ${err.message} (the boards must reach this URL too; or give --bundle FILE, the file served there)`);
  });
  if (!res.ok || !res.body) throw new BspError('EFLEET_BUNDLE', `${url}: HTTP ${res.status}: the boards must be able to download the bundle from there`);
  const dir = mkdtempSync(join(tmpdir(), 'nodeos-fleet-'));
  try {
    const file = join(dir, 'bundle');
    const fd = openSync(file, 'w');
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) writeSync(fd, chunk);
    } finally {
      closeSync(fd);
    }
    return inspectBundleFile(file, url);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A new rollout of the bundle at `url` (checked from `file` when given) to the group's boards of the bundle's board type (the others are left out, and listed). */
export async function planRollout(c: BrokerClient, o: { fleet: string; group: string; url: string; file?: string; options: Partial<RolloutOptions> }): Promise<{ state: RolloutState; action: JobAction; leftOut: BoardRow[] }> {
  checkName('fleet', o.fleet);
  checkName('group', o.group);
  const urlProblem = bundleUrlProblem(o.url);
  if (urlProblem) throw new BspError('EUSAGE', urlProblem);
  // The file served at the URL when given (a URL only the boards reach); else what the URL serves.
  const b = o.file ? inspectBundleFile(o.file) : await inspectBundleUrl(o.url);
  const rows = (await readFleet(c, o.fleet)).filter((r) => r.state?.groups.includes(o.group));
  const leftOut = rows.filter((r) => r.state!.profile !== b.board);
  const boards = rows.filter((r) => r.state!.profile === b.board).map((r) => r.board);
  const action: JobAction = { type: 'update', url: o.url, sha256: b.sha256, version: b.build, size: b.size };
  const state = createRollout({ id: `r-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`, fleet: o.fleet, group: o.group, boards, action, options: o.options, now: Date.now() });
  return { state, action, leftOut };
}

/** A rollout the broker keeps, to continue (EFLEET_ROLLOUT when there is none by that id). */
export async function findRollout(c: BrokerClient, fleet: string, id: string): Promise<{ state: RolloutState; action: JobAction }> {
  checkName('rollout', id);
  const kept = (await readRollouts(c, fleet)).find((r) => r.id === id);
  if (!kept) throw new BspError('EFLEET_ROLLOUT', `the broker keeps no rollout ${id} in fleet ${fleet}: see nodeos-bsp fleet rollouts`);
  return { state: kept, action: kept.action as JobAction };
}

/** Read a boards file: [{ "board": "<id>", "groups": [...] }, ...] (EUSAGE when it is not one). */
export function readBoardsFile(path: string): { board: string; groups: string[] }[] {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new BspError('EUSAGE', `--boards ${path}: ${(err as Error).message}`);
  }
  const ok = (b: unknown): b is { board: string; groups?: unknown } => typeof b === 'object' && b !== null && typeof (b as { board?: unknown }).board === 'string';
  if (!Array.isArray(v) || !v.every((b) => ok(b) && (b.groups === undefined || (Array.isArray(b.groups) && b.groups.every((g) => typeof g === 'string'))))) {
    throw new BspError('EUSAGE', `--boards ${path} must be a JSON list of { "board": "<id>", "groups": ["<group>", ...] }`);
  }
  return (v as { board: string; groups?: string[] }[]).map((b) => ({ board: b.board, groups: b.groups ?? [] }));
}

/** Write mosquitto.conf and acl into `dir` (the ACL file is named in the config). */
export function writeBrokerConfig(dir: string, o: Omit<BrokerConfigOptions, 'aclFile'>): { conf: string; acl: string } {
  const files = { conf: join(dir, 'mosquitto.conf'), acl: join(dir, 'acl') };
  const { conf, acl } = mosquittoConfig({ ...o, aclFile: files.acl });
  mkdirSync(dir, { recursive: true });
  writeAll(files.conf, conf);
  writeAll(files.acl, acl);
  return files;
}

function writeAll(path: string, text: string): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
