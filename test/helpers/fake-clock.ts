/** A clock whose time moves only when the test says so; timers fire in order. */
import type { Clock } from '../../src/net/index.js';

export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Move time forward, firing every timer that falls due (including ones set meanwhile). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers].filter(([, x]) => x.at <= end).sort(([a, x], [b, y]) => x.at - y.at || a - b)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
  /** When the next timer is due, relative to now (undefined when none is set). */
  nextIn(): number | undefined {
    const ats = [...this.timers.values()].map((x) => x.at);
    return ats.length ? Math.min(...ats) - this.t : undefined;
  }
}
