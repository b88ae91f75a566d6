/**
 * How the REPL (and an SSH session) reaches init's app supervisor: init writes the apps'
 * status to /run/nodeos/apps.json on every change (read synchronously by `board.apps`) and
 * answers requests on the Unix socket /run/nodeos/apps.sock, one JSON line each way:
 *   → {"op":"restart","name":"thermometer"}   ← {"ok":true,"app":{...status}}
 *   ← {"ok":false,"code":"EAPP_UNKNOWN","message":"..."}
 * Only root can connect (the socket is 0600): apps do not control one another.
 */
import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { replaceFileAtomically } from '../atomic-file.js';
import { BspError } from '../errors.js';
import type { AppStatus, AppSupervisor } from './apps.js';

export const APPS_RUN_DIR = '/run/nodeos';
export const APPS_STATE = `${APPS_RUN_DIR}/apps.json`;
export const APPS_SOCKET = `${APPS_RUN_DIR}/apps.sock`;

/** What the state file holds. */
export interface AppsState {
  /** Where the logs are (the users' partition, or memory when there is none). */
  logDir: string;
  apps: AppStatus[];
}

export type AppOp = 'start' | 'stop' | 'restart' | 'enable' | 'disable' | 'deploy';

/** A deploy's release and how long it must run (the sshd's deploy session asks for it). */
export interface DeployRequest {
  release: string;
  settleMs: number;
}

/** Requests beyond the supervisor's own (init adds users' apps to it and removes them, and runs deployed releases). */
export interface AppControlHooks {
  enable?: (name: string) => AppStatus | Promise<AppStatus>;
  disable?: (name: string) => Promise<AppStatus>;
  deploy?: (name: string, req: DeployRequest) => Promise<AppStatus>;
}

/** Write the state file (whole, renamed into place: a reader never sees half of it). */
export function writeAppsState(state: AppsState, file = APPS_STATE): void {
  replaceFileAtomically(file, Buffer.from(JSON.stringify(state) + '\n'));
}

export function readAppsState(file = APPS_STATE): AppsState | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as AppsState;
  } catch {
    return undefined;
  }
}

/** Serve the control socket for a supervisor. */
export function serveAppControl(sup: AppSupervisor, socket = APPS_SOCKET, hooks: AppControlHooks = {}): Promise<Server> {
  rmSync(socket, { force: true });
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = '';
      void answer(sup, line, hooks).then((reply) => conn.end(JSON.stringify(reply) + '\n'));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      chmodSync(socket, 0o600);
      resolve(server);
    });
  });
}

async function answer(sup: AppSupervisor, line: string, hooks: AppControlHooks): Promise<{ ok: true; app?: AppStatus; apps?: AppStatus[] } | { ok: false; code: string; message: string }> {
  try {
    const req = JSON.parse(line) as { op?: unknown; name?: unknown; release?: unknown; settleMs?: unknown };
    if (req.op === 'list') return { ok: true, apps: sup.list() };
    if (typeof req.name !== 'string') throw new BspError('EUSAGE', 'name the app');
    if (req.op === 'start') return { ok: true, app: sup.start(req.name) };
    if (req.op === 'stop') return { ok: true, app: await sup.stop(req.name) };
    if (req.op === 'restart') return { ok: true, app: await sup.restart(req.name) };
    if (req.op === 'enable' && hooks.enable) return { ok: true, app: await hooks.enable(req.name) };
    if (req.op === 'disable' && hooks.disable) return { ok: true, app: await hooks.disable(req.name) };
    if (req.op === 'deploy' && hooks.deploy) {
      if (typeof req.release !== 'string' || typeof req.settleMs !== 'number') throw new BspError('EUSAGE', 'a deploy names its release and settleMs');
      return { ok: true, app: await hooks.deploy(req.name, { release: req.release, settleMs: req.settleMs }) };
    }
    throw new BspError('EUSAGE', `unknown request ${JSON.stringify(req.op)} (list, start, stop, restart, enable, disable, deploy)`);
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code ?? 'EAPP', message: (err as Error).message };
  }
}

/** Ask init's supervisor to start, stop or restart an app (or run a deployed release: `deploy`). */
export function controlApp(op: AppOp, name: string, socket = APPS_SOCKET, timeoutMs = 30_000, deploy?: DeployRequest): Promise<AppStatus> {
  return new Promise((resolve, reject) => {
    if (!existsSync(socket)) return reject(new BspError('EAPP_SUPERVISOR', `no app supervisor is running (${socket} is missing): apps run on a NodeOS board, started by its init`));
    const conn = createConnection(socket);
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new BspError('EAPP_SUPERVISOR', `the app supervisor did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify({ op, name, ...deploy }) + '\n'));
    conn.on('data', (d: string) => (buf += d));
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(new BspError('EAPP_SUPERVISOR', `cannot reach the app supervisor: ${err.message}`));
    });
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        const r = JSON.parse(buf) as { ok: boolean; app?: AppStatus; code?: string; message?: string };
        if (r.ok && r.app) resolve(r.app);
        else reject(new BspError(r.code ?? 'EAPP', r.message ?? 'the app supervisor refused'));
      } catch {
        reject(new BspError('EAPP_SUPERVISOR', `the app supervisor answered ${JSON.stringify(buf.slice(0, 200))}`));
      }
    });
  });
}
