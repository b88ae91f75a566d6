/**
 * The app supervisor in the board's init: each app is its own process, started at boot,
 * restarted with exponential backoff when it exits (as Erlang's supervisors and systemd's
 * Restart= do), its output kept in a size-bounded log that survives reboots. A crash loop is
 * said once on the console and shown in `board.apps`; the app keeps being retried at the
 * longest backoff, so a sensor that comes back later is picked up again.
 *
 * Pure apart from what is injected (spawn, clock, logs), so the backoff, the crash-loop rule
 * and stop/start are unit-tested with a fake clock and fake processes.
 */
import { BspError } from '../errors.js';
import type { Clock } from '../net/index.js';

/** An app as the image (or the user) declares it. */
export interface AppSpec {
  name: string;
  version?: string;
  /** Directory of the app (its package.json and node_modules). */
  dir: string;
  /** The file Node runs, relative to dir. */
  main: string;
  /** Start only once the network has an address. */
  network?: boolean;
  /** Run as root (device access otherwise comes from the hardware group). */
  root?: boolean;
  /** Where it came from: built into the image, enabled by a user from their npm prefix, or deployed (nodeos-bsp deploy). */
  source: 'image' | 'user' | 'deployed';
  /** A deployed app's release id (src/runtime/deploy.ts). */
  release?: string;
  /** The npm package a user app was installed as (scoped names keep their scope here). */
  package?: string;
}

export type AppRunState = 'waiting' | 'running' | 'backoff' | 'crash-loop' | 'stopped';

/** What `board.apps` shows. */
export interface AppStatus {
  name: string;
  version?: string;
  source: AppSpec['source'];
  release?: string;
  state: AppRunState;
  pid?: number;
  /** Restarts after an exit (a start by the user is not one). */
  restarts: number;
  /** When the running process started (ms since the epoch). */
  since?: number;
  lastExit?: { code: number | null; signal: string | null; at: number };
  /** When the next start is due, in backoff. */
  nextStart?: number;
}

/** A started process, as far as the supervisor cares. */
export interface AppProcess {
  pid?: number;
  kill(signal: NodeJS.Signals): void;
  onExit(fn: (code: number | null, signal: string | null) => void): void;
}

export interface SupervisorOptions {
  start: (spec: AppSpec) => AppProcess;
  clock: Clock;
  log: (msg: string) => void;
  /** Called after every change of any app's status (init writes the state file there). */
  onChange?: (apps: AppStatus[]) => void;
  /** First delay after an exit; doubled per consecutive quick exit up to maxMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** An app that ran this long before exiting starts again at the first delay. */
  healthyAfterMs?: number;
  /** This many exits within crashLoopWindowMs is a crash loop. */
  crashLoopExits?: number;
  crashLoopWindowMs?: number;
  /** SIGTERM, then SIGKILL after this long (stop and restart). */
  killAfterMs?: number;
}

interface Entry {
  spec: AppSpec;
  status: AppStatus;
  proc?: AppProcess;
  wanted: boolean;
  quickExits: number;
  exits: number[];
  /** In a crash loop (said once): until it runs healthily or is started by hand. */
  looping: boolean;
  timer?: unknown;
  /** Resolved when the running process has exited (stop/restart wait for it). */
  exited?: Promise<void>;
  /** Told of the next exit (replace() watching a new version settle). */
  watch?: () => void;
}

/** How replace() went: the new version settled, or exited and the old one runs again. */
export type ReplaceResult = { ok: true; app: AppStatus } | { ok: false; failed: AppStatus; app?: AppStatus };

export class AppSupervisor {
  private readonly apps = new Map<string, Entry>();
  private readonly o: Required<Omit<SupervisorOptions, 'onChange'>> & Pick<SupervisorOptions, 'onChange'>;

  constructor(o: SupervisorOptions) {
    this.o = { backoffMs: 1000, maxBackoffMs: 60_000, healthyAfterMs: 30_000, crashLoopExits: 5, crashLoopWindowMs: 60_000, killAfterMs: 5000, ...o };
  }

  /** Register an app; `waiting` until start() (init starts network apps once there is an address). */
  add(spec: AppSpec): void {
    if (this.apps.has(spec.name)) throw new Error(`app ${spec.name} is there twice`);
    this.apps.set(spec.name, { spec, status: freshStatus(spec), wanted: false, quickExits: 0, exits: [], looping: false });
    this.changed();
  }

  /**
   * Run `spec` in place of the app of that name (a deploy): the old version is stopped, the
   * new one started and watched for `settleMs`. If it exits within that time it is stopped
   * and the old version (when there was one) is put back and started again, as it was.
   */
  async replace(spec: AppSpec, settleMs: number): Promise<ReplaceResult> {
    const e = this.apps.get(spec.name);
    const old = e ? { spec: e.spec, status: e.status, wanted: e.wanted } : undefined;
    if (e) {
      await this.stop(spec.name);
      e.spec = spec;
      e.status = freshStatus(spec);
    } else this.add(spec);
    const entry = this.entry(spec.name);
    const exitedEarly = await new Promise<boolean>((resolve) => {
      const timer = this.o.clock.setTimeout(() => {
        entry.watch = undefined;
        resolve(false);
      }, settleMs);
      entry.watch = () => {
        entry.watch = undefined;
        this.o.clock.clearTimeout(timer);
        resolve(true);
      };
      this.start(spec.name);
    });
    if (!exitedEarly) return { ok: true, app: { ...entry.status } };
    await this.stop(spec.name);
    const failed = { ...entry.status };
    if (!old) {
      this.apps.delete(spec.name);
      this.changed();
      return { ok: false, failed };
    }
    entry.spec = old.spec;
    entry.status = { ...old.status, state: 'stopped' };
    delete entry.status.pid;
    delete entry.status.since;
    delete entry.status.nextStart;
    if (old.wanted) this.start(spec.name);
    else this.changed();
    return { ok: false, failed, app: { ...entry.status } };
  }

  names(): string[] {
    return [...this.apps.keys()];
  }

  spec(name: string): AppSpec | undefined {
    return this.apps.get(name)?.spec;
  }

  list(): AppStatus[] {
    return [...this.apps.values()].map((e) => ({ ...e.status }));
  }

  /** Start an app that is not running (clears its backoff and crash-loop count). */
  start(name: string): AppStatus {
    const e = this.entry(name);
    e.wanted = true;
    if (e.proc) return { ...e.status };
    this.clearTimer(e);
    e.quickExits = 0;
    e.exits = [];
    e.looping = false;
    this.launch(e);
    return { ...e.status };
  }

  /** Stop an app and keep it stopped (until start() or the next boot). */
  async stop(name: string): Promise<AppStatus> {
    const e = this.entry(name);
    e.wanted = false;
    this.clearTimer(e);
    if (e.proc) await this.terminate(e);
    e.status = { ...e.status, state: 'stopped' };
    delete e.status.nextStart;
    this.changed();
    return { ...e.status };
  }

  /** Stop an app and forget it (a user app disabled). */
  async remove(name: string): Promise<AppStatus> {
    const s = await this.stop(name);
    this.apps.delete(name);
    this.changed();
    return s;
  }

  async restart(name: string): Promise<AppStatus> {
    await this.stop(name);
    return this.start(name);
  }

  /** Stop every app (shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all(this.names().map((n) => this.stop(n)));
  }

  private entry(name: string): Entry {
    const e = this.apps.get(name);
    if (!e) throw new BspError('EAPP_UNKNOWN', `no app named ${name}: the apps are ${this.names().join(', ') || '(none)'}`);
    return e;
  }

  private launch(e: Entry): void {
    delete e.status.nextStart;
    let proc: AppProcess;
    try {
      proc = this.o.start(e.spec);
    } catch (err) {
      this.o.log(`app ${e.spec.name}: cannot start: ${(err as Error).message}`);
      this.exited(e, null, null, this.o.clock.now());
      return;
    }
    const since = this.o.clock.now();
    e.proc = proc;
    e.status = { ...e.status, state: 'running', since, ...(proc.pid !== undefined ? { pid: proc.pid } : {}) };
    let done!: () => void;
    e.exited = new Promise((r) => (done = r));
    proc.onExit((code, signal) => {
      if (e.proc !== proc) return;
      e.proc = undefined;
      done();
      this.exited(e, code, signal, since);
    });
    this.changed();
  }

  private exited(e: Entry, code: number | null, signal: string | null, since: number): void {
    const now = this.o.clock.now();
    e.watch?.();
    e.status = { ...e.status, lastExit: { code, signal, at: now } };
    delete e.status.pid;
    delete e.status.since;
    if (!e.wanted) {
      e.status.state = 'stopped';
      this.changed();
      return;
    }
    const healthy = now - since >= this.o.healthyAfterMs;
    e.quickExits = healthy ? 1 : e.quickExits + 1;
    if (healthy) e.looping = false;
    e.exits = [...e.exits.filter((t) => now - t < this.o.crashLoopWindowMs), now];
    const delay = Math.min(this.o.maxBackoffMs, this.o.backoffMs * 2 ** (e.quickExits - 1));
    const how = signal ? `killed by ${signal}` : `exit ${code}`;
    const said = e.looping ? undefined : e.exits.length >= this.o.crashLoopExits
      ? `app ${e.spec.name}: crash loop (${e.exits.length} exits in ${Math.round(this.o.crashLoopWindowMs / 1000)} s, last: ${how}); retrying with backoff up to ${Math.round(this.o.maxBackoffMs / 1000)} s; its log: .logs ${e.spec.name}`
      : `app ${e.spec.name}: ${how}; starting again in ${delay / 1000} s`;
    if (e.exits.length >= this.o.crashLoopExits) e.looping = true;
    e.status = { ...e.status, state: e.looping ? 'crash-loop' : 'backoff', restarts: e.status.restarts + 1, nextStart: now + delay };
    e.timer = this.o.clock.setTimeout(() => {
      e.timer = undefined;
      if (e.wanted && !e.proc) this.launch(e);
    }, delay);
    // The status first, then the console line: whoever reads the line finds board.apps saying it.
    this.changed();
    if (said) this.o.log(said);
  }

  private async terminate(e: Entry): Promise<void> {
    const proc = e.proc!;
    const exited = e.exited!;
    proc.kill('SIGTERM');
    let kill: unknown;
    await Promise.race([
      exited,
      new Promise<void>((r) => {
        kill = this.o.clock.setTimeout(() => {
          proc.kill('SIGKILL');
          r();
        }, this.o.killAfterMs);
      }),
    ]);
    this.o.clock.clearTimeout(kill);
    await exited;
  }

  private clearTimer(e: Entry): void {
    if (e.timer !== undefined) this.o.clock.clearTimeout(e.timer);
    e.timer = undefined;
  }

  private changed(): void {
    this.o.onChange?.(this.list());
  }
}

function freshStatus(spec: AppSpec): AppStatus {
  return { name: spec.name, ...(spec.version ? { version: spec.version } : {}), source: spec.source, ...(spec.release ? { release: spec.release } : {}), state: 'waiting', restarts: 0 };
}

/**
 * Whether the image's apps let a new system be confirmed (A/B updates): `failing` as soon as
 * one is in a crash loop, `healthy` once each has run `healthyMs` without exiting (or waits for
 * a network that is not there: that is not the app's fault), `pending` until then.
 */
export function appsHealth(apps: AppStatus[], now: number, healthyMs = 30_000): { state: 'healthy' | 'pending' | 'failing'; app?: string } {
  // A deployed app runs in place of (or next to) the image's: the system must run it too.
  const image = apps.filter((a) => a.source !== 'user');
  const looping = image.find((a) => a.state === 'crash-loop');
  if (looping) return { state: 'failing', app: looping.name };
  const unsettled = image.find((a) => !(a.state === 'waiting' || a.state === 'stopped' || (a.state === 'running' && a.since !== undefined && now - a.since >= healthyMs)));
  return unsettled ? { state: 'pending', app: unsettled.name } : { state: 'healthy' };
}
