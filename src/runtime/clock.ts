/**
 * The board's clock. A Pi has no RTC: it starts in 1970, so init first raises the clock to
 * the image's build time (the floor), then, once the network has an address, sets it from
 * SNTP (the lease's NTP servers, then `nodeos.ntp=`), falling back to the `Date` header of an
 * HTTP(S) server (`nodeos.timeurl=`, else the npm registry the board uses). Retried with
 * backoff until one answers, then again every 12 hours. What happened is said once on the
 * console and kept in /run/nodeos/clock.json for `board.info.clock`.
 */
import { busybox } from './busybox.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { httpDate, logText, ntpServer, sntpQuery, type ClockSample } from '../net/index.js';

/** Where init records the clock's state (read by board.info). */
export const CLOCK_STATE = '/run/nodeos/clock.json';

/** The clock's state as board.info shows it. */
export interface ClockState {
  synced: boolean;
  /** Where the time came from (`ntp 10.0.2.2:123`, `http https://...`, `build time`). */
  source: string;
  /** When it was last set (ISO time). */
  at: string;
  /** How far the clock was off when set, in ms. */
  offsetMs?: number;
}

/** Where the board asks for the time, in order. */
export interface TimeSources {
  ntp: string[];
  http: string[];
}

/** A comma-separated kernel argument's values (`nodeos.ntp=a,b`). */
function cmdlineList(cmdline: string, name: string): string[] {
  const out: string[] = [];
  for (const m of cmdline.matchAll(new RegExp(`(?:^|\\s)${name.replace('.', '\\.')}=(\\S+)`, 'g'))) out.push(...m[1]!.split(',').filter(Boolean));
  return out;
}

/** The lease's NTP servers first, then `nodeos.ntp=`; HTTP(S) `nodeos.timeurl=`, then the npm registry. */
export function timeSources(cmdline: string, leaseNtp: readonly string[], registry?: string): TimeSources {
  const ntp = [...new Set([...leaseNtp, ...cmdlineList(cmdline, 'nodeos.ntp')])];
  const http = [...new Set([...cmdlineList(cmdline, 'nodeos.timeurl'), ...(registry ? [registry] : [])])].filter((u) => /^https?:\/\//.test(u));
  return { ntp, http };
}

/** The first answer from the sources (SNTP in order, then HTTP), or every error. */
export async function askTime(
  s: TimeSources,
  o: { sntp?: typeof sntpQuery; http?: typeof httpDate } = {},
): Promise<{ sample?: ClockSample; errors: string[] }> {
  const sntp = o.sntp ?? sntpQuery;
  const http = o.http ?? httpDate;
  const errors: string[] = [];
  for (const server of s.ntp) {
    const at = ntpServer(server);
    if (!at) {
      errors.push(`ntp ${logText(server, 60)}: not a host or host:port`);
      continue;
    }
    try {
      return { sample: await sntp(at.host, { port: at.port }), errors };
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  for (const url of s.http) {
    try {
      return { sample: await http(url), errors };
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { errors };
}

/** Set the system clock (seconds resolution) with busybox `date`; an error text or undefined. */
export function setSystemClock(ms: number): string | undefined {
  return busybox(['date', '-u', '-s', `@${Math.round(ms / 1000)}`]);
}

export function writeClockState(s: ClockState, file = CLOCK_STATE): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(s) + '\n');
}

/** Raise the clock to the build time when it is earlier (a board without RTC, in 1970). */
export function applyFloor(buildEpoch: number, log: (m: string) => void, o: { set?: typeof setSystemClock; now?: () => number; stateFile?: string } = {}): void {
  const now = o.now ?? Date.now;
  if (now() >= buildEpoch * 1000) return;
  const err = (o.set ?? setSystemClock)(buildEpoch * 1000);
  if (err) log(`clock: cannot set the clock to the build time: ${err}`);
  writeClockState({ synced: false, source: 'build time', at: new Date(buildEpoch * 1000).toISOString() }, o.stateFile);
}

/** Delay before the next attempt: 30 s doubling to an hour while nothing answers. */
export function retryDelayMs(failures: number): number {
  return Math.min(3600_000, 30_000 * 2 ** Math.max(0, failures - 1));
}

export interface ClockKeeperOptions {
  sources: () => TimeSources;
  log: (m: string) => void;
  set?: (ms: number) => string | undefined;
  ask?: typeof askTime;
  now?: () => number;
  /** Where to record the state. Default CLOCK_STATE. */
  stateFile?: string;
  /** The image's build time (seconds): no source may set the clock before it. */
  buildEpoch?: number;
}

/**
 * Keeps the clock set while the network is up: `start()` once there is an address. Says
 * "set" once, the first failure once, and nothing for later retries.
 */
export class ClockKeeper {
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private synced = false;
  private running = false;

  constructor(private readonly o: ClockKeeperOptions) {}

  /** Ask now (if not already asking), then keep going on its own timer. */
  start(): void {
    if (this.timer) clearTimeout(this.timer);
    void this.sync();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One attempt; returns whether the clock was set. */
  async sync(): Promise<boolean> {
    if (this.running) return false;
    this.running = true;
    try {
      const now = this.o.now ?? Date.now;
      const s = this.o.sources();
      if (!s.ntp.length && !s.http.length) {
        if (this.failures++ === 0) this.o.log('clock: no time source (no NTP server in the lease, no nodeos.ntp= or nodeos.timeurl=); staying at the build time');
        return false;
      }
      const r = await (this.o.ask ?? askTime)(s);
      if (!r.sample) {
        if (this.failures++ === 0) this.o.log(`clock: no time source answered (${r.errors.join('; ')}); trying again with backoff`);
        this.schedule(retryDelayMs(this.failures));
        return false;
      }
      const target = now() + r.sample.offsetMs;
      // Whoever answers cannot take the clock back before the image was built (the floor).
      if (this.o.buildEpoch !== undefined && target < this.o.buildEpoch * 1000) {
        if (this.failures++ === 0) this.o.log(`clock: ${r.sample.source} says ${new Date(target).toISOString()}, before this image was built (${new Date(this.o.buildEpoch * 1000).toISOString()}); not used, trying again with backoff`);
        this.schedule(retryDelayMs(this.failures));
        return false;
      }
      const err = Math.abs(r.sample.offsetMs) >= 1000 ? (this.o.set ?? setSystemClock)(target) : undefined;
      if (err) {
        if (this.failures++ === 0) this.o.log(`clock: cannot set the clock: ${err}`);
        this.schedule(retryDelayMs(this.failures));
        return false;
      }
      if (!this.synced) this.o.log(`clock: set to ${new Date(target).toISOString()} from ${r.sample.source} (was off by ${(r.sample.offsetMs / 1000).toFixed(1)} s)`);
      this.synced = true;
      this.failures = 0;
      writeClockState({ synced: true, source: r.sample.source, at: new Date(target).toISOString(), offsetMs: Math.round(r.sample.offsetMs) }, this.o.stateFile);
      this.schedule(12 * 3600_000);
      return true;
    } finally {
      this.running = false;
    }
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(), ms);
    this.timer.unref?.();
  }
}
