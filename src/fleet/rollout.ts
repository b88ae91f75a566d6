/**
 * A staged rollout as a pure state machine (the controller keeps its state retained on the
 * broker, so any machine can resume it). The canary boards get the job first; the rest
 * follows, at a rate, only once every canary succeeded; the rollout stops releasing as soon
 * as the share of failed boards passes the threshold, and says which failed and why.
 *
 * Nothing here reads a clock or the network: `now` is passed in, the boards' reports are
 * fed in with {@link reportProgress}, and {@link stepRollout} says whom to send the job to
 * and when to step again.
 */
import { BspError } from '../errors.js';
import { checkName } from './topics.js';

/** Where one board is with its job (AWS IoT Jobs' execution states, plus the steps of an update). */
export type ExecutionState = 'pending' | 'queued' | 'downloading' | 'installed' | 'rebooting' | 'succeeded' | 'failed' | 'rejected' | 'timed-out';

export const TERMINAL: ReadonlySet<ExecutionState> = new Set(['succeeded', 'failed', 'rejected', 'timed-out']);
export const FAILED: ReadonlySet<ExecutionState> = new Set(['failed', 'rejected', 'timed-out']);

export interface RolloutOptions {
  /** Boards that get the job first; all must succeed before any other board gets it. Default 1. */
  canary: number;
  /** Boards released per minute after the canaries. Default 60. */
  ratePerMinute: number;
  /** Stop releasing once more than this percentage of the boards that finished failed. Default 10. */
  abortFailedPercent: number;
  /** Failures are judged only once this many boards finished (the canaries always count). Default 10. */
  minFinished: number;
  /** A board that has not succeeded or failed this long after its release counts as failed (timed-out). Default 30 min. */
  timeoutMs: number;
}

export const DEFAULT_ROLLOUT: RolloutOptions = { canary: 1, ratePerMinute: 60, abortFailedPercent: 10, minFinished: 10, timeoutMs: 30 * 60_000 };

export interface BoardExecution {
  board: string;
  state: ExecutionState;
  releasedAt?: number;
  updatedAt?: number;
  /** Download progress, 0-100. */
  percent?: number;
  /** Why it failed, as the board said it (or why it timed out). */
  reason?: string;
}

export type RolloutPhase = 'canary' | 'waves' | 'finished' | 'aborted';

/** A rollout's whole state: JSON, kept retained on the broker. */
export interface RolloutState {
  format: 'nodeos-fleet-rollout/1';
  id: string;
  fleet: string;
  group: string;
  /** What the boards are asked to do (the job's action: an update's URL, SHA-256, version). */
  action: Record<string, unknown>;
  options: RolloutOptions;
  createdAt: number;
  phase: RolloutPhase;
  /** In release order: the first `options.canary` are the canaries. */
  boards: BoardExecution[];
  wavesStartedAt?: number;
  endedAt?: number;
  /** Why it stopped early. */
  reason?: string;
}

/** Check options (EUSAGE with what to change). */
export function checkRolloutOptions(o: Partial<RolloutOptions>, boards: number): RolloutOptions {
  const r = { ...DEFAULT_ROLLOUT, ...o };
  const bad = (what: string): never => {
    throw new BspError('EUSAGE', what);
  };
  if (!Number.isSafeInteger(r.canary) || r.canary < 1) bad(`--canary must be a whole number of boards, at least 1 (got ${r.canary})`);
  if (r.canary > boards) bad(`--canary ${r.canary} is more than the ${boards} board(s) in the rollout`);
  if (!(r.ratePerMinute > 0) || !Number.isFinite(r.ratePerMinute)) bad(`--rate must be a positive number of boards per minute (got ${r.ratePerMinute})`);
  if (!(r.abortFailedPercent >= 0 && r.abortFailedPercent <= 100)) bad(`--abort-failed must be a percentage, 0-100 (got ${r.abortFailedPercent})`);
  if (!Number.isSafeInteger(r.minFinished) || r.minFinished < 1) bad(`the minimum of finished boards must be at least 1 (got ${r.minFinished})`);
  if (!(r.timeoutMs > 0) || !Number.isFinite(r.timeoutMs)) bad(`--timeout must be a positive number of minutes (got ${r.timeoutMs / 60_000})`);
  return r;
}

/** A new rollout over `boards` (released in the order given; duplicates dropped). */
export function createRollout(o: { id: string; fleet: string; group: string; boards: readonly string[]; action: Record<string, unknown>; options?: Partial<RolloutOptions>; now: number }): RolloutState {
  const boards = [...new Set(o.boards.map((b) => checkName('board', b)))];
  if (boards.length === 0) throw new BspError('EFLEET_EMPTY', `group ${o.group} has no boards: check fleet status --group ${o.group}`);
  return {
    format: 'nodeos-fleet-rollout/1',
    id: checkName('rollout', o.id),
    fleet: checkName('fleet', o.fleet),
    group: checkName('group', o.group),
    action: o.action,
    options: checkRolloutOptions(o.options ?? {}, boards.length),
    createdAt: o.now,
    phase: 'canary',
    boards: boards.map((board) => ({ board, state: 'pending' })),
  };
}

/** The order the states come in: a report never moves a board backwards, and a terminal state is final. */
const RANK: Record<ExecutionState, number> = { pending: 0, queued: 1, downloading: 2, installed: 3, rebooting: 4, succeeded: 5, failed: 5, rejected: 5, 'timed-out': 5 };

/** A board's report on its job. Reports from boards not (yet) released, late ones, and going backwards are ignored. */
export function reportProgress(s: RolloutState, board: string, r: { state: ExecutionState; percent?: number; reason?: string }, now: number): RolloutState {
  const i = s.boards.findIndex((b) => b.board === board);
  const b = s.boards[i];
  if (!b || b.state === 'pending' || TERMINAL.has(b.state) || r.state === 'pending' || RANK[r.state] < RANK[b.state]) return s;
  const next: BoardExecution = { ...b, state: r.state, updatedAt: now };
  if (r.state === 'downloading' && r.percent !== undefined && Number.isFinite(r.percent)) next.percent = Math.max(0, Math.min(100, Math.round(r.percent)));
  if (r.reason !== undefined) next.reason = r.reason.slice(0, 300);
  const boards = [...s.boards];
  boards[i] = next;
  return { ...s, boards };
}

/** Counts at a glance. */
export function rolloutCounts(s: RolloutState): { total: number; released: number; inFlight: number; succeeded: number; failed: number; finished: number } {
  let released = 0;
  let succeeded = 0;
  let failed = 0;
  for (const b of s.boards) {
    if (b.state !== 'pending') released++;
    if (b.state === 'succeeded') succeeded++;
    if (FAILED.has(b.state)) failed++;
  }
  return { total: s.boards.length, released, inFlight: released - succeeded - failed, succeeded, failed, finished: succeeded + failed };
}

/** The boards that failed, with their reasons. */
export const failedBoards = (s: RolloutState): BoardExecution[] => s.boards.filter((b) => FAILED.has(b.state));

/**
 * Move the rollout on at `now`: time out boards, judge the canaries and the threshold,
 * release what the rate allows. Returns the new state, the boards to send the job to now,
 * and when to step again (undefined once nothing is left to wait for).
 */
export function stepRollout(s0: RolloutState, now: number): { state: RolloutState; release: string[]; nextAt?: number } {
  const o = s0.options;
  // Boards released too long ago without an end fail (timed-out).
  const boards = s0.boards.map((b): BoardExecution => (b.state !== 'pending' && !TERMINAL.has(b.state) && b.releasedAt !== undefined && now - b.releasedAt >= o.timeoutMs ? { ...b, state: 'timed-out', updatedAt: now, reason: `no result ${Math.round(o.timeoutMs / 60_000)} min after the job was sent` } : b));
  let s: RolloutState = { ...s0, boards };
  const release: string[] = [];
  const releaseAt = (i: number): void => {
    const b = s.boards[i]!;
    s.boards[i] = { ...b, state: 'queued', releasedAt: now, updatedAt: now };
    release.push(b.board);
  };
  const timeoutAt = (): number | undefined => {
    const t = s.boards.filter((b) => b.state !== 'pending' && !TERMINAL.has(b.state)).map((b) => b.releasedAt! + o.timeoutMs);
    return t.length ? Math.min(...t) : undefined;
  };
  const end = (phase: 'finished' | 'aborted', reason?: string): { state: RolloutState; release: string[]; nextAt?: number } => {
    s = { ...s, phase, endedAt: now, ...(reason ? { reason } : {}) };
    // Boards already sent the job still report: watch them until they end.
    const t = timeoutAt();
    return { state: s, release, ...(t !== undefined ? { nextAt: t } : {}) };
  };

  if (s.phase === 'finished' || s.phase === 'aborted') {
    const t = timeoutAt();
    return { state: s, release, ...(t !== undefined ? { nextAt: t } : {}) };
  }

  if (s.phase === 'canary') {
    const canaries = s.boards.slice(0, o.canary);
    if (canaries.every((b) => b.state === 'pending')) {
      for (let i = 0; i < o.canary; i++) releaseAt(i);
      return { state: s, release, nextAt: timeoutAt()! };
    }
    const failed = canaries.filter((b) => FAILED.has(b.state));
    if (failed.length) return end('aborted', `canary ${failed.map((b) => `${b.board} ${b.state}${b.reason ? `: ${b.reason}` : ''}`).join('; ')}`);
    if (!canaries.every((b) => b.state === 'succeeded')) return { state: s, release, nextAt: timeoutAt()! };
    if (s.boards.length === o.canary) return end('finished');
    s = { ...s, phase: 'waves', wavesStartedAt: now };
  }

  // Waves: judge the threshold on the boards that finished, then release at the rate.
  const c = rolloutCounts(s);
  if (c.finished >= Math.min(o.minFinished, c.total) && (c.failed * 100) / c.finished > o.abortFailedPercent) {
    return end('aborted', `${c.failed} of ${c.finished} finished boards failed (${((c.failed * 100) / c.finished).toFixed(1)} %, more than ${o.abortFailedPercent} %)`);
  }
  const start = s.wavesStartedAt!;
  const perBoardMs = 60_000 / o.ratePerMinute;
  // The rate allows one board at the start of the waves, then one every perBoardMs.
  const allowed = Math.floor((now - start) / perBoardMs) + 1;
  const releasedInWaves = c.released - o.canary;
  let toRelease = Math.max(0, allowed - releasedInWaves);
  for (let i = 0; i < s.boards.length && toRelease > 0; i++) {
    if (s.boards[i]!.state === 'pending') {
      releaseAt(i);
      toRelease--;
    }
  }
  const after = rolloutCounts(s);
  if (after.released === after.total && after.finished === after.total) return end('finished');
  const nextRelease = after.released < after.total ? start + (releasedInWaves + release.length) * perBoardMs : undefined;
  const candidates = [nextRelease, timeoutAt()].filter((x): x is number => x !== undefined);
  return { state: s, release, ...(candidates.length ? { nextAt: Math.min(...candidates) } : {}) };
}
