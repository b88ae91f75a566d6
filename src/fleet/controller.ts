/**
 * The host's side of a fleet: read every board's retained state, and drive a rollout
 * (sign each board's job, publish it retained on the board's topic, follow the boards'
 * progress, keep the rollout's state retained so another machine can resume it).
 *
 * Boards' messages are data from the network: each is parsed into known fields, with
 * strings cut short, before it reaches a table, a log or the rollout's state.
 */
import type { KeyObject } from 'node:crypto';
import { BspError } from '../errors.js';
import type { BoardState, BrokerClient, JobProgress } from './agent.js';
import { signJob, encodeJob, JOB_FORMAT, type JobAction } from './jobs.js';
import { reportProgress, stepRollout, TERMINAL, type ExecutionState, type RolloutState } from './rollout.js';
import { fleetTopics, nameProblem, parseTopic } from './topics.js';

/** One board at a glance: its retained state, whether it is online, its last job report. */
export interface BoardRow {
  board: string;
  online?: boolean;
  state?: BoardState;
  progress?: JobProgress;
}

const STATES: ReadonlySet<string> = new Set(['pending', 'queued', 'downloading', 'installed', 'rebooting', 'succeeded', 'failed', 'rejected', 'timed-out']);
// Control characters (a terminal's escape sequences among them) never reach a table or a log.
const printable = (t: string): string => [...t].map((ch) => (ch.charCodeAt(0) < 0x20 || (ch.charCodeAt(0) >= 0x7f && ch.charCodeAt(0) < 0xa0) ? '?' : ch)).join('');
const str = (v: unknown, max = 200): string | undefined => (typeof v === 'string' ? printable(v.slice(0, max)) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Record<string, unknown> | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
const parse = (payload: Buffer): Record<string, unknown> | undefined => {
  if (payload.length > 64 * 1024) return undefined;
  try {
    return obj(JSON.parse(payload.toString('utf8')));
  } catch {
    return undefined;
  }
};

/** A board's progress report, or undefined when it is not one. */
export function parseProgress(payload: Buffer): JobProgress | undefined {
  const v = parse(payload);
  const job = str(v?.job, 64);
  const state = str(v?.state, 16);
  if (!v || !job || !state || !STATES.has(state)) return undefined;
  const p: JobProgress = { job, state: state as ExecutionState, at: num(v.at) ?? 0 };
  const rollout = str(v.rollout, 64);
  if (rollout) p.rollout = rollout;
  const percent = num(v.percent);
  if (percent !== undefined) p.percent = Math.max(0, Math.min(100, Math.round(percent)));
  const reason = str(v.reason, 300);
  if (reason) p.reason = reason;
  const code = str(v.code, 40);
  if (code) p.code = code;
  return p;
}

/** A board's retained state, known fields only, or undefined when it is not one. */
export function parseBoardState(payload: Buffer, board: string): BoardState | undefined {
  const v = parse(payload);
  if (!v || v.board !== board) return undefined;
  const list = (x: unknown, max: number): unknown[] => (Array.isArray(x) ? x.slice(0, max) : []);
  const s: BoardState = {
    board,
    profile: str(v.profile, 64) ?? '?',
    build: str(v.build, 64) ?? '?',
    slot: str(v.slot, 8) ?? '?',
    confirmed: v.confirmed === true,
    groups: list(v.groups, 32).filter((g): g is string => typeof g === 'string' && !nameProblem('group', g)),
    apps: list(v.apps, 64).flatMap((a) => {
      const o = obj(a);
      const name = str(o?.name, 64);
      const version = str(o?.version, 64);
      const source = str(o?.source, 16);
      return name ? [{ name, state: str(o?.state, 32) ?? '?', ...(version ? { version } : {}), ...(source ? { source } : {}) }] : [];
    }),
    addresses: list(v.addresses, 16).flatMap((a) => (typeof a === 'string' ? [a.slice(0, 64)] : [])),
    clockSynced: v.clockSynced === true,
    uptimeSeconds: num(v.uptimeSeconds) ?? 0,
    bootId: str(v.bootId, 40) ?? '?',
    memAvailableMiB: num(v.memAvailableMiB) ?? 0,
    at: num(v.at) ?? 0,
  };
  const failed = obj(v.lastFailedUpdate);
  const failedSlot = str(failed?.slot, 8);
  const failedBuild = str(failed?.build, 64);
  if (failedSlot && failedBuild) s.lastFailedUpdate = { slot: failedSlot, build: failedBuild };
  const storage = num(v.storageFreeMiB);
  if (storage !== undefined) s.storageFreeMiB = storage;
  const last = v.lastJob !== undefined ? parseProgress(Buffer.from(JSON.stringify(v.lastJob))) : undefined;
  if (last) s.lastJob = last;
  return s;
}

/** Subscribe and collect what the broker holds, until nothing new came for `settleMs`. */
function collect(client: BrokerClient, topics: string[], onMessage: (topic: string, payload: Buffer) => void, settleMs: number, maxMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let settle: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(settle);
      clearTimeout(cap);
      resolve();
    };
    const cap = setTimeout(done, maxMs);
    const again = (): void => {
      clearTimeout(settle);
      settle = setTimeout(done, settleMs);
    };
    client.on('message', (topic, payload) => {
      onMessage(topic, payload);
      again();
    });
    client.subscribe(topics, { qos: 1 }, (err) => {
      if (err) {
        clearTimeout(cap);
        reject(err);
      } else again();
    });
  });
}

/** Every board of the fleet the broker has a retained state or online flag for, sorted by id. */
export async function readFleet(client: BrokerClient, fleet: string, o: { settleMs?: number; maxMs?: number } = {}): Promise<BoardRow[]> {
  const t = fleetTopics(fleet);
  const rows = new Map<string, BoardRow>();
  const row = (board: string): BoardRow => rows.get(board) ?? (rows.set(board, { board }), rows.get(board)!);
  await collect(
    client,
    [t.allStates, t.allProgress, t.allOnline],
    (topic, payload) => {
      const p = parseTopic(fleet, topic);
      if (p?.kind === 'online') {
        const v = payload.toString('utf8');
        if (v === 'online' || v === 'offline') row(p.board).online = v === 'online';
      } else if (p?.kind === 'state') {
        const s = parseBoardState(payload, p.board);
        if (s) row(p.board).state = s;
      } else if (p?.kind === 'progress') {
        const g = parseProgress(payload);
        if (g) row(p.board).progress = g;
      }
    },
    o.settleMs ?? 1000,
    o.maxMs ?? 15_000,
  );
  return [...rows.values()].sort((a, b) => a.board.localeCompare(b.board));
}

/** Every rollout the broker keeps (retained), newest first. */
export async function readRollouts(client: BrokerClient, fleet: string, o: { settleMs?: number; maxMs?: number } = {}): Promise<RolloutState[]> {
  const out: RolloutState[] = [];
  await collect(
    client,
    [fleetTopics(fleet).allRollouts],
    (topic, payload) => {
      const p = parseTopic(fleet, topic);
      const v = p?.kind === 'rollout' ? parse(payload) : undefined;
      if (v && v.format === 'nodeos-fleet-rollout/1' && v.id === (p as { id: string }).id && Array.isArray(v.boards)) out.push(v as unknown as RolloutState);
    },
    o.settleMs ?? 1000,
    o.maxMs ?? 15_000,
  );
  return out.sort((a, b) => b.createdAt - a.createdAt);
}

/** The job id a rollout gives its i-th board: unique per rollout and board, within the name rule. */
export const rolloutJobId = (rolloutId: string, index: number): string => `${rolloutId}.${index}`;

export interface DriveOptions {
  client: BrokerClient;
  /** The fleet's signing key. */
  key: KeyObject;
  state: RolloutState;
  /** What each board is asked to do. */
  action: JobAction;
  onChange?: (s: RolloutState, released: string[]) => void;
  now?: () => number;
}

/**
 * Drive a rollout to its end: jobs are published as the state machine releases boards, the
 * boards' progress is fed back, and the state is kept retained on the broker at each change.
 * Resolves with the final state once no board it sent a job to is still working.
 */
export function driveRollout(o: DriveOptions): Promise<RolloutState> {
  const now = o.now ?? Date.now;
  const t = fleetTopics(o.state.fleet);
  let s = o.state;
  const index = new Map(s.boards.map((b, i) => [b.board, i]));
  let timer: NodeJS.Timeout | undefined;
  let finish: (s: RolloutState) => void;
  let fail: (err: Error) => void;
  const done = new Promise<RolloutState>((resolve, reject) => {
    finish = (x) => {
      clearTimeout(timer);
      resolve(x);
    };
    fail = (err) => {
      clearTimeout(timer);
      reject(err);
    };
  });
  const save = (): void => void o.client.publish(t.rollout(s.id), JSON.stringify(s), { qos: 1, retain: true });

  const step = (): void => {
    clearTimeout(timer);
    const r = stepRollout(s, now());
    const changed = r.state !== s;
    s = r.state;
    for (const board of r.release) {
      const issuedAt = now();
      const job = signJob({ format: JOB_FORMAT, id: rolloutJobId(s.id, index.get(board)!), fleet: s.fleet, target: { board }, issuedAt, expiresAt: issuedAt + s.options.timeoutMs + 3600_000, rollout: s.id, action: o.action }, o.key);
      o.client.publish(t.boardJobs(board), encodeJob(job).toString('utf8'), { qos: 1, retain: true });
    }
    if (changed || r.release.length) {
      save();
      o.onChange?.(s, r.release);
    }
    const ended = s.phase === 'finished' || s.phase === 'aborted';
    const inFlight = s.boards.some((b) => b.state !== 'pending' && !TERMINAL.has(b.state));
    if (ended && !inFlight) return finish(s);
    if (r.nextAt !== undefined) timer = setTimeout(step, Math.max(0, Math.min(r.nextAt - now(), 0x7fffffff)));
  };

  o.client.on('message', (topic, payload) => {
    const p = parseTopic(s.fleet, topic);
    if (p?.kind !== 'progress') return;
    const i = index.get(p.board);
    const g = parseProgress(payload);
    if (i === undefined || !g || g.job !== rolloutJobId(s.id, i)) return;
    const before = s;
    s = reportProgress(s, p.board, { state: g.state, ...(g.percent !== undefined ? { percent: g.percent } : {}), ...(g.reason ? { reason: g.code ? `${g.code}: ${g.reason}` : g.reason } : {}) }, now());
    if (s !== before) {
      // A board that ended no longer needs its retained job.
      if (TERMINAL.has(s.boards[i]!.state)) o.client.publish(t.boardJobs(p.board), '', { qos: 1, retain: true });
      step();
    }
  });
  // Without the broker the rollout cannot go on; its state is kept there, for --resume.
  o.client.on('close', () => fail(new BspError('EFLEET_BROKER', `lost the broker during rollout ${s.id} (${s.phase}): its state is kept on the broker; continue it with fleet update --resume ${s.id}`)));
  o.client.subscribe([t.allProgress], { qos: 1 }, (err) => (err ? fail(new BspError('EFLEET_BROKER', `the broker refused the progress topics: ${err.message}`)) : step()));
  return done;
}

/**
 * Send one signed job (a reboot, an app restart) to a board or a group, and collect the
 * boards' reports on it until each expected board ended it or `waitMs` passed. A board's job
 * is retained (a board that is offline gets it when it connects, until it expires); a
 * group's is not (the boards online now). Expected boards: the one, or the group's online ones.
 */
export async function sendJob(o: { client: BrokerClient; key: KeyObject; fleet: string; target: { board: string } | { group: string }; action: JobAction; waitMs: number; now?: () => number }): Promise<{ job: string; expected: string[]; reports: Map<string, JobProgress> }> {
  const t = fleetTopics(o.fleet);
  const now = o.now ?? Date.now;
  const expected = 'board' in o.target ? [o.target.board] : (await readFleet(o.client, o.fleet, { settleMs: 500 })).filter((r) => r.online && r.state?.groups.includes((o.target as { group: string }).group)).map((r) => r.board);
  const issuedAt = now();
  const id = `j-${issuedAt.toString(36)}-${Math.floor(Math.random() * 0xffff).toString(16)}`;
  const job = signJob({ format: JOB_FORMAT, id, fleet: o.fleet, target: o.target, issuedAt, expiresAt: issuedAt + 3600_000, action: o.action }, o.key);
  const reports = new Map<string, JobProgress>();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, o.waitMs);
    const check = (): void => {
      if (expected.length && expected.every((b) => TERMINAL.has(reports.get(b)?.state ?? 'pending'))) {
        clearTimeout(timer);
        resolve();
      }
    };
    o.client.on('message', (topic, payload) => {
      const p = parseTopic(o.fleet, topic);
      const g = p?.kind === 'progress' ? parseProgress(payload) : undefined;
      if (!g || g.job !== id || p?.kind !== 'progress') return;
      reports.set(p.board, g);
      // A board's retained job is not needed once it ended.
      if ('board' in o.target && TERMINAL.has(g.state)) o.client.publish(t.boardJobs(o.target.board), '', { qos: 1, retain: true });
      check();
    });
    o.client.subscribe([t.allProgress], { qos: 1 }, () => {
      o.client.publish('board' in o.target ? t.boardJobs(o.target.board) : t.groupJobs(o.target.group), encodeJob(job).toString('utf8'), { qos: 1, retain: 'board' in o.target });
      if (!expected.length) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { job: id, expected, reports };
}
