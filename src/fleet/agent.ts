/**
 * The board's fleet agent: connects out to the broker (never listens), keeps its state
 * retained on `.../state`, says `online` / `offline` (its last will) on `.../online`, takes
 * signed jobs from its own topic and its groups' topics, runs them one at a time, and
 * reports each step on `.../jobs/progress`. A job that ends in a reboot (an update, a
 * reboot) is finished by the next system: it says `succeeded` once it runs confirmed as the
 * build the job asked for, `failed` when U-Boot fell back to the old one.
 *
 * What it does to the board goes through {@link FleetSystem} (the Linux one in the runtime,
 * a simulated one in tests and in the scale bench); the broker through {@link BrokerClient}
 * (mqtt.js's client has this shape).
 */
import { createHash } from 'node:crypto';
import type { TrustedKey } from '../update/index.js';
import { DEFAULT_BACKOFF, retryDelay, type Backoff } from './backoff.js';
import { acceptJob, type Job, type JobAction } from './jobs.js';
import type { ExecutionState } from './rollout.js';
import { fleetTopics, nameProblem, parseTopic } from './topics.js';

/** What a board says about itself, retained on its state topic. */
export interface BoardState {
  board: string;
  /** The board profile's id. */
  profile: string;
  build: string;
  slot: string;
  confirmed: boolean;
  groups: string[];
  /** Each app's state, and its version and where it came from (image, deployed, user): a deploy's result shows here. */
  apps: { name: string; state: string; version?: string; source?: string }[];
  /** The last update that did not come up (U-Boot fell back from it), as board.system says. */
  lastFailedUpdate?: { slot: string; build: string };
  addresses: string[];
  clockSynced: boolean;
  uptimeSeconds: number;
  /** This boot's id (Linux: /proc/sys/kernel/random/boot_id): another id means the board restarted. */
  bootId: string;
  memAvailableMiB: number;
  storageFreeMiB?: number;
  lastJob?: JobProgress;
  /** When this state was published (ms; the board's clock). */
  at: number;
}

/** One step of a job, as the board reports it. */
export interface JobProgress {
  job: string;
  rollout?: string;
  state: ExecutionState;
  percent?: number;
  /** Why it failed or was rejected. */
  reason?: string;
  /** The refusal's code (EFLEET_JOB_SIGNATURE...). */
  code?: string;
  at: number;
}

/** The board, as the agent needs it. */
export interface FleetSystem {
  /** The state, less what the agent adds (groups, lastJob, at). */
  state(): Promise<Omit<BoardState, 'groups' | 'lastJob' | 'at'>>;
  /** Download (resuming), check the SHA-256, install into the other slot with the signed A/B install; resolves once installed. */
  update(action: Extract<JobAction, { type: 'update' }>, onPercent: (percent: number) => void): Promise<void>;
  /** Restart the board (after the agent said `rebooting`). */
  reboot(): void;
  restartApp(name: string): Promise<void>;
}

/** A job in progress across a reboot, kept by {@link JobStore}. */
export interface PendingJob {
  job: string;
  rollout?: string;
  kind: 'update' | 'reboot';
  /** The build running when the job started. */
  fromBuild: string;
  /** The build an update asked for. */
  toBuild?: string;
  /** The boot the job started in: the job's end is judged in the next one. */
  bootId: string;
}

/** What the agent keeps on the users' partition: the jobs it saw (refused again), the one a reboot interrupts. */
export interface JobStore {
  seen(id: string): boolean;
  remember(id: string): void;
  pending(): PendingJob | undefined;
  setPending(p: PendingJob | undefined): void;
}

/** The part of an MQTT client the agent uses (mqtt.js's MqttClient fits). */
export interface BrokerClient {
  on(event: 'connect', fn: () => void): unknown;
  on(event: 'close', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  on(event: 'message', fn: (topic: string, payload: Buffer) => void): unknown;
  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain: boolean }, cb?: (err?: Error) => void): unknown;
  subscribe(topics: string[], opts: { qos: 0 | 1 }, cb?: (err: Error | null) => void): unknown;
  end(force?: boolean, opts?: object, cb?: () => void): unknown;
}

/** The last will: what the broker publishes (retained) when the board goes away without saying so. */
export interface Will {
  topic: string;
  payload: string;
  qos: 1;
  retain: true;
}

export interface AgentOptions {
  fleet: string;
  /** The board's id: its serial, as board.info shows it. */
  board: string;
  groups: string[];
  /** The fleet keys the board trusts (given at build or flash time). */
  trusted: TrustedKey[];
  /** Open a connection with this last will; the agent handles reconnecting (the client must not). */
  connect: (will: Will) => BrokerClient;
  system: FleetSystem;
  store: JobStore;
  log: (line: string) => void;
  /** Milliseconds since the epoch when the board's clock is synchronised, else undefined. */
  syncedNow: () => number | undefined;
  /** The board's clock (ms), for `at` fields. Default Date.now. */
  now?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (h: unknown) => void;
  /** How often the state is published even when nothing changed. Default 5 min. */
  stateEveryMs?: number;
  backoff?: Backoff;
  random?: () => number;
}

/** Run the agent until {@link FleetAgent.stop}. */
export class FleetAgent {
  private client?: BrokerClient;
  private attempt = 0;
  private stopped = false;
  private timer: unknown;
  private stateTimer: unknown;
  private lastJob: JobProgress | undefined;
  private readonly queue: Job[] = [];
  private running = false;
  private readonly topics;
  private readonly now: () => number;
  private readonly setT: (fn: () => void, ms: number) => unknown;
  private readonly clearT: (h: unknown) => void;
  /** Connections made and messages published, for the scale bench. */
  readonly counts = { connects: 0, published: 0, received: 0 };

  constructor(private readonly o: AgentOptions) {
    // The names are checked before anything connects.
    this.topics = fleetTopics(o.fleet);
    this.topics.state(o.board);
    for (const g of o.groups) this.topics.groupJobs(g);
    this.now = o.now ?? Date.now;
    this.setT = o.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearT = o.clearTimeout ?? ((h) => clearTimeout(h as NodeJS.Timeout));
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  /** Disconnect (saying `offline`) and stop retrying. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearT(this.timer);
    this.clearT(this.stateTimer);
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    // Say offline if the broker is there to hear it; never wait long for one that is not.
    await new Promise<void>((resolve) => {
      const t = this.setT(() => c.end(true, {}, () => resolve()), 2000);
      c.publish(this.topics.online(this.o.board), 'offline', { qos: 1, retain: true }, () => {
        this.clearT(t);
        c.end(false, {}, () => resolve());
      });
    });
  }

  private open(): void {
    if (this.stopped) return;
    let c: BrokerClient;
    try {
      c = this.o.connect({ topic: this.topics.online(this.o.board), payload: 'offline', qos: 1, retain: true });
    } catch (err) {
      this.o.log(`fleet: cannot connect: ${(err as Error).message}`);
      this.retry();
      return;
    }
    this.client = c;
    let connected = false;
    c.on('connect', () => {
      connected = true;
      this.attempt = 0;
      this.counts.connects++;
      this.o.log('fleet: connected to the broker');
      c.subscribe([this.topics.boardJobs(this.o.board), ...this.o.groups.map((g) => this.topics.groupJobs(g))], { qos: 1 }, (err) => err && this.o.log(`fleet: subscribe: ${err.message}`));
      this.publish(this.topics.online(this.o.board), 'online', true);
      void this.afterRestart().then(() => this.publishState());
    });
    c.on('message', (topic, payload) => {
      this.counts.received++;
      // Whatever a message does wrong (a full disk for the job memory...) is said, never thrown into the client.
      try {
        this.onMessage(topic, payload);
      } catch (err) {
        this.o.log(`fleet: a message on ${topic.slice(0, 120)} failed: ${(err as Error).message}`);
      }
    });
    c.on('error', (err) => this.o.log(`fleet: ${err.message}`));
    c.on('close', () => {
      if (this.client !== c) return;
      this.client = undefined;
      this.clearT(this.stateTimer);
      c.end(true);
      if (connected) this.o.log('fleet: connection lost');
      this.retry();
    });
  }

  private retry(): void {
    if (this.stopped) return;
    const ms = retryDelay(this.attempt++, this.o.backoff ?? DEFAULT_BACKOFF, this.o.random);
    this.timer = this.setT(() => this.open(), ms);
  }

  private publish(topic: string, payload: string, retain: boolean): void {
    if (!this.client) return;
    this.counts.published++;
    this.client.publish(topic, payload, { qos: 1, retain });
  }

  /** Publish the state now, and again in stateEveryMs. */
  async publishState(): Promise<void> {
    this.clearT(this.stateTimer);
    try {
      const s = await this.o.system.state();
      const state: BoardState = { ...s, board: this.o.board, groups: this.o.groups, ...(this.lastJob ? { lastJob: this.lastJob } : {}), at: this.now() };
      this.publish(this.topics.state(this.o.board), JSON.stringify(state), true);
    } catch (err) {
      this.o.log(`fleet: cannot read the board's state: ${(err as Error).message}`);
    }
    if (this.client && !this.stopped) this.stateTimer = this.setT(() => void this.publishState(), this.o.stateEveryMs ?? 5 * 60_000);
  }

  private progress(p: Omit<JobProgress, 'at'>): void {
    this.lastJob = { ...p, at: this.now() };
    this.publish(this.topics.progress(this.o.board), JSON.stringify(this.lastJob), true);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(this.o.fleet, topic);
    // An empty message is a retained job being cleared (the controller does so once a job ended).
    if (!t || (t.kind !== 'jobs' && t.kind !== 'group-jobs') || payload.length === 0) return;
    // Retained jobs come again on each connection: one run already is not news.
    const id = peekJobId(payload);
    if (id && this.o.store.seen(id)) return;
    let job: Job;
    try {
      job = acceptJob(payload, { fleet: this.o.fleet, board: this.o.board, groups: this.o.groups, trusted: this.o.trusted, seen: (x) => this.o.store.seen(x), ...(this.o.syncedNow() !== undefined ? { now: this.o.syncedNow()! } : {}) });
    } catch (err) {
      const e = err as { code?: string; message: string };
      const jobId = id ?? 'unknown';
      // A refused job is remembered by its bytes (a retained one is refused once, not at each
      // connection), never by the id it claims: a forged job must not use up a real job's id.
      const bytes = `#${createHash('sha256').update(payload).digest('hex')}`;
      if (this.o.store.seen(bytes)) return;
      this.o.store.remember(bytes);
      this.o.log(`fleet: job ${jobId} refused: ${e.message}`);
      this.progress({ job: jobId, state: 'rejected', code: e.code ?? 'EFLEET_JOB', reason: e.message });
      void this.publishState();
      return;
    }
    this.o.store.remember(job.id);
    if (this.queue.length >= 8) {
      this.progress({ job: job.id, ...(job.rollout ? { rollout: job.rollout } : {}), state: 'rejected', code: 'EFLEET_BUSY', reason: 'this board has 8 jobs waiting already' });
      return;
    }
    this.queue.push(job);
    this.progress({ job: job.id, ...(job.rollout ? { rollout: job.rollout } : {}), state: 'queued' });
    void this.runQueue();
  }

  private async runQueue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) await this.run(job);
    } finally {
      this.running = false;
    }
  }

  private async run(job: Job): Promise<void> {
    const base = { job: job.id, ...(job.rollout ? { rollout: job.rollout } : {}) };
    const a = job.action;
    try {
      const s = await this.o.system.state();
      if (a.type === 'update') {
        if (s.build === a.version && s.confirmed) {
          this.progress({ ...base, state: 'succeeded', reason: `already running build ${a.version}` });
          return void this.publishState();
        }
        let shown = -10;
        this.progress({ ...base, state: 'downloading', percent: 0 });
        await this.o.system.update(a, (p) => {
          // A step of progress per 10 %: enough to watch, few messages for a thousand boards.
          if (p >= shown + 10) {
            shown = Math.floor(p / 10) * 10;
            this.progress({ ...base, state: 'downloading', percent: shown });
          }
        });
        this.progress({ ...base, state: 'installed' });
        this.o.store.setPending({ ...base, kind: 'update', fromBuild: s.build, toBuild: a.version, bootId: s.bootId });
      } else if (a.type === 'reboot') {
        this.o.store.setPending({ ...base, kind: 'reboot', fromBuild: s.build, bootId: s.bootId });
      } else {
        await this.o.system.restartApp(a.app);
        this.progress({ ...base, state: 'succeeded' });
        return void this.publishState();
      }
      this.progress({ ...base, state: 'rebooting' });
      this.o.log(`fleet: job ${job.id}: rebooting`);
      this.o.system.reboot();
    } catch (err) {
      this.progress({ ...base, state: 'failed', reason: (err as Error).message });
      this.o.log(`fleet: job ${job.id} failed: ${(err as Error).message}`);
      void this.publishState();
    }
  }

  /**
   * A job that ended in a reboot, judged by the system that came up: an update succeeded
   * once the asked-for build runs confirmed, failed when the board is back on the old build
   * (U-Boot fell back). While the new build runs unconfirmed (its apps are being watched),
   * it is judged again at the next state publish.
   */
  private async afterRestart(): Promise<void> {
    const p = this.o.store.pending();
    if (!p) return;
    let s;
    try {
      s = await this.o.system.state();
    } catch {
      return;
    }
    const base = { job: p.job, ...(p.rollout ? { rollout: p.rollout } : {}) };
    if (s.bootId === p.bootId) return; // not restarted yet (the broker came back before the reboot)
    if (p.kind === 'reboot') {
      this.o.store.setPending(undefined);
      return this.progress({ ...base, state: 'succeeded' });
    }
    if (s.build === p.toBuild) {
      if (!s.confirmed) {
        this.timer = this.setT(() => void this.afterRestart().then(() => this.publishState()), 10_000);
        return;
      }
      this.o.store.setPending(undefined);
      return this.progress({ ...base, state: 'succeeded' });
    }
    this.o.store.setPending(undefined);
    this.progress({ ...base, state: 'failed', reason: `build ${p.toBuild} did not come up: U-Boot fell back to build ${s.build}` });
  }
}

/** The id a signed job claims, read before it is verified: only to recognise a job seen before. */
function peekJobId(payload: Buffer): string | undefined {
  try {
    const env = JSON.parse(payload.toString('utf8')) as { job?: unknown };
    if (typeof env.job !== 'string') return undefined;
    const id = (JSON.parse(env.job) as { id?: unknown }).id;
    return nameProblem('rollout', id) ? undefined : (id as string);
  } catch {
    return undefined;
  }
}
