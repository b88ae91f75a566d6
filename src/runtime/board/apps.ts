/**
 * `board.apps`: the apps init supervises, one property per app (board.apps.thermometer), each
 * with its state, pid, restarts and uptime and start() / stop() / restart() / logs(); shown as
 * a table in the REPL.
 */
import { inspect } from 'node:util';
import type { AppStatus } from '../apps.js';
import type { AppsBackend } from './backend.js';

/** One app as `board.apps` shows it. */
export interface App {
  name: string;
  version?: string;
  source: AppStatus['source'];
  /** A deployed app's release (nodeos-bsp deploy). */
  release?: string;
  state: AppStatus['state'];
  pid?: number;
  restarts: number;
  /** Seconds since the running process started. */
  uptime?: number;
  lastExit?: AppStatus['lastExit'];
  start(): Promise<App>;
  stop(): Promise<App>;
  restart(): Promise<App>;
  /** The last lines of its log (stdout and stderr, with the supervisor's start and exit lines). */
  logs(lines?: number): string;
}

/** The apps by name, plus enable() / disable() for users' own (npm install -g) apps. */
export type Apps = Record<string, App> & {
  /** Start a package installed with npm install -g at every boot (and now). */
  enable(pkg: string): Promise<App>;
  /** No longer start it at boot (and stop it now). */
  disable(pkg: string): Promise<App>;
};

function appOf(s: AppStatus, backend: AppsBackend, now: number): App {
  const app = {
    name: s.name,
    ...(s.version ? { version: s.version } : {}),
    source: s.source,
    ...(s.release ? { release: s.release } : {}),
    state: s.state,
    ...(s.pid !== undefined ? { pid: s.pid } : {}),
    restarts: s.restarts,
    ...(s.since !== undefined ? { uptime: Math.max(0, Math.round((now - s.since) / 1000)) } : {}),
    ...(s.lastExit ? { lastExit: s.lastExit } : {}),
  } as App;
  const methods = {
    start: async () => appOf(await backend.control('start', s.name), backend, Date.now()),
    stop: async () => appOf(await backend.control('stop', s.name), backend, Date.now()),
    restart: async () => appOf(await backend.control('restart', s.name), backend, Date.now()),
    logs: (lines = 40) => backend.logs(s.name, lines),
  };
  for (const [k, v] of Object.entries(methods)) Object.defineProperty(app, k, { value: v, enumerable: false });
  return app;
}

/** One line per app, for the REPL. */
export function appsTable(apps: App[]): string {
  if (!apps.length) return 'no apps (build with --app DIR; see docs/apps.md)';
  const rows = [['app', 'state', 'pid', 'restarts', 'uptime', 'version'], ...apps.map((a) => [a.name, a.state, a.pid ?? '-', a.restarts, a.uptime !== undefined ? `${a.uptime} s` : '-', a.version ?? '-'].map(String))];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** The apps as they are now (read afresh at every access of board.apps). */
export function appsView(backend: AppsBackend, now = Date.now()): Apps {
  const list = backend.list().map((s) => appOf(s, backend, now));
  const apps = {} as Apps;
  for (const a of list) (apps as Record<string, App>)[a.name] = a;
  Object.defineProperty(apps, inspect.custom, { value: () => appsTable(list), enumerable: false });
  Object.defineProperty(apps, 'enable', { value: async (pkg: string) => appOf(await backend.control('enable', pkg), backend, Date.now()), enumerable: false });
  Object.defineProperty(apps, 'disable', { value: async (pkg: string) => appOf(await backend.control('disable', pkg), backend, Date.now()), enumerable: false });
  return apps;
}
