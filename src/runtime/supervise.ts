/**
 * Services that live inside init (PID 1): a throw in one of them must never end init, whose
 * end is a kernel panic (and, on an unconfirmed system, a spent boot try). A supervised
 * service reports its faults (`fault(err)`, from every handler that takes input from outside);
 * the supervisor says so once per distinct fault, stops that instance and starts a new one
 * after a backoff (1 s doubling to a minute, back to 1 s after a minute without faults).
 * `lastResort` catches what still escapes, says it once, and init goes on.
 */
import { logText } from '../net/log-text.js';

export interface Stoppable {
  stop?(): unknown;
}

export interface SupervisorOptions {
  log: (m: string) => void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (h: unknown) => void;
}

export interface Supervised<T> {
  /** The running instance (undefined while starting or waiting to restart). */
  current(): T | undefined;
  /** How many times it was started. */
  starts(): number;
  stop(): void;
}

const message = (err: unknown): string => logText(err instanceof Error ? err.message : String(err), 160);

/** The delay before the next start after `faults` faults in a row. */
export const restartDelayMs = (faults: number): number => Math.min(60_000, 1000 * 2 ** Math.max(0, faults - 1));

/** Run `start` under supervision: it gets the `fault` callback its handlers report to. */
export function supervise<T extends Stoppable>(name: string, start: (fault: (err: unknown) => void) => T | Promise<T>, o: SupervisorOptions): Supervised<T> {
  const now = o.now ?? Date.now;
  const setTimer =
    o.setTimer ??
    ((fn: () => void, ms: number): unknown => {
      const t = setTimeout(fn, ms);
      t.unref?.();
      return t;
    });
  const clearTimer = o.clearTimer ?? ((h: unknown) => clearTimeout(h as NodeJS.Timeout));
  const said = new Set<string>();
  let instance: T | undefined;
  let generation = 0;
  let faults = 0;
  let startedAt = 0;
  let count = 0;
  let timer: unknown;
  let stopped = false;

  const run = (): void => {
    if (stopped) return;
    const gen = ++generation;
    count++;
    startedAt = now();
    // A fault from an instance that was already replaced is not the new one's.
    const fault = (err: unknown): void => {
      if (gen !== generation || stopped) return;
      generation++;
      const old = instance;
      instance = undefined;
      try {
        old?.stop?.();
      } catch {
        /* it is being replaced anyway */
      }
      if (now() - startedAt > 60_000) faults = 0;
      faults++;
      const delay = restartDelayMs(faults);
      const m = message(err);
      if (!said.has(m)) {
        if (said.size < 100) said.add(m);
        o.log(`${name}: failed (${m}); starting it again in ${delay / 1000} s`);
      }
      timer = setTimer(run, delay);
    };
    try {
      const r = start(fault);
      if (r instanceof Promise) {
        r.then(
          (v) => {
            if (gen === generation && !stopped) instance = v;
            else
              try {
                v.stop?.();
              } catch {
                /* a late start of a replaced instance */
              }
          },
          fault,
        );
      } else instance = r;
    } catch (err) {
      fault(err);
    }
  };
  run();
  return {
    current: () => instance,
    starts: () => count,
    stop: () => {
      stopped = true;
      if (timer !== undefined) clearTimer(timer);
      try {
        instance?.stop?.();
      } catch {
        /* stopping */
      }
      instance = undefined;
    },
  };
}

/**
 * PID 1's last line: an exception or rejection nothing else caught is said (once per
 * distinct message, escaped) and init goes on, instead of the kernel panicking.
 */
export function lastResort(log: (m: string) => void, proc: Pick<NodeJS.Process, 'on'> = process): void {
  const said = new Set<string>();
  const say = (what: string, err: unknown): void => {
    const m = message(err);
    if (said.has(m)) return;
    if (said.size < 100) said.add(m);
    log(`init: ${what} caught and ignored (${m}); init goes on`);
  };
  proc.on('uncaughtException', (err) => say('an exception', err));
  proc.on('unhandledRejection', (err) => say('a rejection', err));
}
