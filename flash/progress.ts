/** Progress of a flash: phases in order, each reported at most every 200 ms. */

/** Phases of a flash, in order. */
export type FlashPhase = 'checking' | 'flashing' | 'verifying' | 'customizing' | 'finished';

/** A progress event, at most every 200 ms per phase. */
export interface FlashProgress {
  phase: FlashPhase;
  done: number;
  total: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

/** Reports `done` of a phase; `force` reports even within 200 ms of the last report (a phase's end). */
export type PhaseReporter = (done: number, force?: boolean) => void;

/** A throttled reporter for one phase; it announces the phase at once (done = 0). */
export function phaseReporter(phase: FlashPhase, total: number, cb?: (p: FlashProgress) => void): PhaseReporter {
  const t0 = Date.now();
  let last = 0;
  cb?.({ phase, done: 0, total, bytesPerSecond: 0, etaSeconds: null });
  return (done, force) => {
    if (!cb) return;
    const now = Date.now();
    if (!force && now - last < 200) return;
    last = now;
    const secs = (now - t0) / 1000;
    const bps = secs > 0 ? done / secs : 0;
    cb({ phase, done, total, bytesPerSecond: bps, etaSeconds: bps > 0 ? (total - done) / bps : null });
  };
}
