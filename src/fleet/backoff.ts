/**
 * When a board's agent tries its broker again: exponential, capped, with jitter, so a
 * thousand boards that lost the broker together do not all come back in the same second.
 */

export interface Backoff {
  /** The first retry's delay. Default 1 s. */
  baseMs: number;
  /** The longest delay. Default 5 min. */
  capMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 1000, capMs: 5 * 60_000 };

/**
 * The delay before retry number `attempt` (0 for the first): a random point in the upper
 * half of min(cap, base * 2^attempt) ("equal jitter"), so it never collapses to zero.
 * `random` returns [0, 1), as Math.random does.
 */
export function retryDelay(attempt: number, b: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const n = Math.max(0, Math.min(Math.floor(attempt), 30));
  const ceiling = Math.min(b.capMs, b.baseMs * 2 ** n);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
