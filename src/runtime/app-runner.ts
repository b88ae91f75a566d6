/**
 * Starting apps on the board for the supervisor (apps.ts): each is `node <main>` in its own
 * directory, as the app user (uid/gid 1000) unless it asks for root, with a data directory
 * of its own as HOME, its output in its log (app-log.ts). The app user reaches the hardware
 * through the group of the device nodes (GPIO chips, I2C and SPI buses, serial ports other
 * than the console), which init opens to that group at boot.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppLog } from './app-log.js';
import type { AppProcess, AppSpec } from './apps.js';

/** The user and group apps run as (unless root: true), and whose group owns the hardware's device nodes. */
export const APP_UID = 1000;
export const APP_GID = 1000;
export const APP_USER = 'app';

/** Device nodes apps may use, by name. */
const HARDWARE = /^(gpiochip\d+|i2c-\d+|spidev\d+\.\d+|ttyS\d+|ttyAMA\d+|ttyUSB\d+|ttyACM\d+)$/;

/** /etc/passwd and /etc/group for root and the app user (/etc is in memory on the board). */
export function writeUsers(etc = '/etc'): void {
  writeFileSync(join(etc, 'passwd'), `root:x:0:0:root:/root:/bin/sh\n${APP_USER}:x:${APP_UID}:${APP_GID}:NodeOS apps:/home/apps:/bin/false\n`);
  writeFileSync(join(etc, 'group'), `root:x:0:\n${APP_USER}:x:${APP_GID}:\n`);
}

/** The devices the console uses (never opened to apps: their input is the REPL's). */
function consoleDevices(sys = '/sys'): Set<string> {
  try {
    return new Set(readFileSync(join(sys, 'class/tty/console/active'), 'utf8').trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

/** Give the app group read-write access to the hardware's device nodes; returns the ones changed. */
export function openHardwareToApps(dev = '/dev', sys = '/sys'): string[] {
  const skip = consoleDevices(sys);
  const done: string[] = [];
  for (const name of existsSync(dev) ? readdirSync(dev) : []) {
    if (!HARDWARE.test(name) || skip.has(name)) continue;
    try {
      chownSync(join(dev, name), 0, APP_GID);
      chmodSync(join(dev, name), 0o660);
      done.push(name);
    } catch {
      // A node that vanished meanwhile.
    }
  }
  return done;
}

/** What start() needs besides the spec. */
export interface RunnerOptions {
  /** Where the logs go (the users' partition, else memory). */
  logDir: string;
  /** Parent of the apps' data directories (HOME). */
  dataDir: string;
  /** The environment apps start from (init's, with PATH and npm's settings). */
  env: NodeJS.ProcessEnv;
  nodePath?: string;
  /** Said once per app whose log cannot be written. */
  onLogError?: (name: string, err: Error) => void;
}

/** A start function for the supervisor. */
export function appStarter(o: RunnerOptions): { start: (spec: AppSpec) => AppProcess; log: (name: string) => AppLog } {
  const logs = new Map<string, AppLog>();
  const log = (name: string): AppLog => {
    let l = logs.get(name);
    if (!l) logs.set(name, (l = new AppLog(o.logDir, name, undefined, (err) => o.onLogError?.(name, err))));
    return l;
  };
  const start = (spec: AppSpec): AppProcess => {
    const home = join(o.dataDir, spec.name);
    mkdirSync(home, { recursive: true });
    if (!spec.root) chownSync(home, APP_UID, APP_GID);
    const l = log(spec.name);
    const child = spawn(o.nodePath ?? process.execPath, [join(spec.dir, spec.main)], {
      cwd: spec.dir,
      env: { ...o.env, HOME: home, NODE_ENV: o.env.NODE_ENV ?? 'production', NODEOS_APP: spec.name },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(spec.root ? {} : { uid: APP_UID, gid: APP_GID }),
    });
    // A spawn that fails (no node, bad uid) comes as an error event: report it as an exit.
    let exitFn: ((code: number | null, signal: string | null) => void) | undefined;
    let ended = false;
    const end = (code: number | null, signal: string | null, why?: string): void => {
      if (ended) return;
      ended = true;
      l.mark(why ?? (signal ? `killed by ${signal}` : `exit ${code}`));
      exitFn?.(code, signal);
    };
    child.stdout.on('data', (d: Buffer) => l.write(d));
    child.stderr.on('data', (d: Buffer) => l.write(d));
    child.on('error', (err) => end(null, null, `cannot start: ${err.message}`));
    child.on('close', (code, signal) => end(code, signal));
    l.mark(`${spec.name}${spec.version ? ` ${spec.version}` : ''} started, pid ${child.pid ?? '?'}${spec.root ? ' (root)' : ''}`);
    return {
      ...(child.pid !== undefined ? { pid: child.pid } : {}),
      kill: (sig) => void child.kill(sig),
      onExit: (fn) => {
        exitFn = fn;
      },
    };
  };
  return { start, log };
}
