/** Staged rollouts: canaries, waves at a rate, the abort threshold, time-outs, resuming from the retained state. */
import assert from 'node:assert/strict';
import { createRollout, failedBoards, reportProgress, rolloutCounts, stepRollout, type ExecutionState, type RolloutOptions, type RolloutState } from '../../src/fleet/index.js';
import { thrownError } from '../helpers/error-code.js';

const T0 = 1_800_000_000_000;
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `board-${String(i).padStart(4, '0')}`);
const make = (n: number, options: Partial<RolloutOptions>): RolloutState => createRollout({ id: 'r1', fleet: 'f', group: 'all', boards: ids(n), action: { type: 'update', version: '2' }, options, now: T0 });

/**
 * Run a rollout against simulated boards: each released board reports `outcome(board)` after
 * `ms` (or never, when undefined). Steps happen at the times the rollout asks for, and on each report.
 * `interrupt` (a time) serialises the state to JSON there and goes on from the parsed copy, as a resumed controller would.
 */
function simulate(s: RolloutState, outcome: (board: string) => { state: ExecutionState; reason?: string; ms: number } | undefined, o: { until?: number; interrupt?: number } = {}): { state: RolloutState; releases: { board: string; at: number }[] } {
  const releases: { board: string; at: number }[] = [];
  const reports: { at: number; board: string; state: ExecutionState; reason?: string }[] = [];
  let now = T0;
  let nextAt: number | undefined = T0;
  let interrupted = false;
  for (let guard = 0; guard < 100_000; guard++) {
    const nextReport = reports.length ? Math.min(...reports.map((r) => r.at)) : undefined;
    const t = Math.min(nextAt ?? Infinity, nextReport ?? Infinity);
    if (!Number.isFinite(t) || t > (o.until ?? Infinity)) break;
    now = t;
    if (o.interrupt !== undefined && !interrupted && now >= o.interrupt) {
      s = JSON.parse(JSON.stringify(s)) as RolloutState;
      interrupted = true;
    }
    for (const r of reports.filter((x) => x.at <= now)) s = reportProgress(s, r.board, { state: r.state, ...(r.reason ? { reason: r.reason } : {}) }, now);
    reports.splice(0, reports.length, ...reports.filter((x) => x.at > now));
    const step = stepRollout(s, now);
    s = step.state;
    nextAt = step.nextAt;
    for (const b of step.release) {
      releases.push({ board: b, at: now });
      const out = outcome(b);
      if (out) reports.push({ at: now + out.ms, board: b, state: out.state, ...(out.reason ? { reason: out.reason } : {}) });
    }
  }
  return { state: s, releases };
}

describe('fleet rollouts', () => {
  it('the canaries get the job first; the others only once every canary succeeded, one at the start of the waves then at the rate', () => {
    const { state, releases } = simulate(make(6, { canary: 2, ratePerMinute: 60 }), (b) => ({ state: 'succeeded', ms: b <= 'board-0001' ? 120_000 : 30_000 }));
    assert.deepEqual(releases.slice(0, 2), [{ board: 'board-0000', at: T0 }, { board: 'board-0001', at: T0 }]);
    assert.deepEqual(releases.slice(2).map((r) => r.at - T0), [120_000, 121_000, 122_000, 123_000], 'after the canaries (2 min), one a second');
    assert.equal(state.phase, 'finished');
    assert.deepEqual(rolloutCounts(state), { total: 6, released: 6, inFlight: 0, succeeded: 6, failed: 0, finished: 6 });
  });

  it('a failed canary aborts the rollout: no other board is sent the job, and the reason names the board', () => {
    const { state, releases } = simulate(make(10, { canary: 3 }), (b) => (b === 'board-0001' ? { state: 'failed', reason: 'fell back to build 1 after 3 tries', ms: 90_000 } : { state: 'succeeded', ms: 60_000 }));
    assert.equal(releases.length, 3);
    assert.equal(state.phase, 'aborted');
    assert.match(state.reason!, /canary board-0001 failed: fell back to build 1 after 3 tries/);
    assert.deepEqual(failedBoards(state).map((b) => b.board), ['board-0001']);
  });

  it('rate 200/min releases a board every 300 ms after the canaries', () => {
    const { releases } = simulate(make(1000, { canary: 10, ratePerMinute: 200 }), () => ({ state: 'succeeded', ms: 10_000 }), { until: T0 + 10_000 + 3000 });
    const waves = releases.slice(10);
    assert.equal(waves.length, 11, '1 at the start + 10 in 3 s');
    assert.deepEqual(waves.slice(0, 3).map((r) => r.at - T0), [10_000, 10_300, 10_600]);
  });

  it('3 % of boards failing stops a rollout with a 2 % threshold, long before the end, and says which failed', () => {
    // Every 33rd board fails (about 3 %), after the canaries; updates take 40 s.
    const { state, releases } = simulate(make(1000, { canary: 10, ratePerMinute: 200, abortFailedPercent: 2, minFinished: 20 }), (b) => {
      const n = Number(b.slice(6));
      return n >= 10 && n % 33 === 0 ? { state: 'failed', reason: 'download: sha256 mismatch', ms: 40_000 } : { state: 'succeeded', ms: 40_000 };
    });
    assert.equal(state.phase, 'aborted');
    assert.match(state.reason!, /of \d+ finished boards failed \(\d+\.\d %, more than 2 %\)/);
    assert.ok(releases.length < 400, `stopped releasing early (${releases.length} of 1000)`);
    const afterAbort = releases.filter((r) => r.at > state.endedAt!);
    assert.deepEqual(afterAbort, [], 'nothing released after the abort');
    assert.ok(failedBoards(state).every((b) => b.reason === 'download: sha256 mismatch'));
    // The boards sent the job before the abort still report: none is left in flight.
    assert.equal(rolloutCounts(state).inFlight, 0);
  });

  it('a board that never reports times out and counts as failed; a canary that times out aborts', () => {
    const { state } = simulate(make(4, { canary: 1, timeoutMs: 5 * 60_000 }), () => undefined);
    assert.equal(state.phase, 'aborted');
    assert.equal(state.boards[0]!.state, 'timed-out');
    assert.equal(state.endedAt, T0 + 5 * 60_000);
    assert.match(state.reason!, /canary board-0000 timed-out: no result 5 min after the job was sent/);
  });

  it('resumed from its JSON state mid-way (another controller), a rollout releases exactly as it would have', () => {
    const outcome = (b: string): { state: ExecutionState; ms: number } => ({ state: Number(b.slice(6)) % 17 === 5 ? 'failed' : 'succeeded', ms: 20_000 + (Number(b.slice(6)) % 7) * 1000 });
    const whole = simulate(make(120, { canary: 5, ratePerMinute: 30, abortFailedPercent: 20 }), outcome);
    const resumed = simulate(make(120, { canary: 5, ratePerMinute: 30, abortFailedPercent: 20 }), outcome, { interrupt: T0 + 90_000 });
    assert.deepEqual(resumed.releases, whole.releases);
    assert.deepEqual(resumed.state, whole.state);
    assert.equal(whole.state.phase, 'finished');
  });

  it('reports from boards not released, backwards, or after the end are ignored; a terminal state is final', () => {
    let s = stepRollout(make(3, { canary: 1 }), T0).state;
    s = reportProgress(s, 'board-0002', { state: 'succeeded' }, T0 + 1);
    assert.equal(s.boards[2]!.state, 'pending', 'not released');
    s = reportProgress(s, 'board-0000', { state: 'downloading', percent: 40.4 }, T0 + 2);
    assert.equal(s.boards[0]!.percent, 40);
    s = reportProgress(s, 'board-0000', { state: 'queued' }, T0 + 3);
    assert.equal(s.boards[0]!.state, 'downloading', 'never backwards');
    s = reportProgress(s, 'board-0000', { state: 'failed', reason: 'x'.repeat(1000) }, T0 + 4);
    assert.equal(s.boards[0]!.reason!.length, 300, 'a reason is kept short');
    s = reportProgress(s, 'board-0000', { state: 'succeeded' }, T0 + 5);
    assert.equal(s.boards[0]!.state, 'failed');
    assert.equal(s, reportProgress(s, 'nobody', { state: 'succeeded' }, T0 + 6));
  });

  it('options are checked with messages that say what to change', () => {
    const cases: [Partial<RolloutOptions>, RegExp][] = [
      [{ canary: 0 }, /--canary must be a whole number of boards, at least 1/],
      [{ canary: 5 }, /--canary 5 is more than the 3 board\(s\)/],
      [{ ratePerMinute: 0 }, /--rate must be a positive number/],
      [{ abortFailedPercent: 120 }, /--abort-failed must be a percentage/],
      [{ timeoutMs: -1 }, /--timeout must be a positive number of minutes/],
    ];
    for (const [o, re] of cases) {
      const e = thrownError(() => make(3, o));
      assert.equal(e.code, 'EUSAGE');
      assert.match(e.message, re);
    }
    assert.equal(thrownError(() => createRollout({ id: 'r', fleet: 'f', group: 'g', boards: [], action: {}, now: T0 })).code, 'EFLEET_EMPTY');
    assert.equal(thrownError(() => createRollout({ id: 'r', fleet: 'f', group: 'g', boards: ['a/+'], action: {}, now: T0 })).code, 'EFLEET_NAME');
  });
});
