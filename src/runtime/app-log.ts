/**
 * An app's output on the board: appended to <dir>/<name>.log, which is moved to <name>.log.1
 * when it passes the size limit (one old file kept), so a chatty app never fills the users'
 * partition and the last output before a crash survives the reboot that follows.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Per app: the live file plus one old one, so at most twice this on the card. */
export const APP_LOG_BYTES = 256 * 1024;

export class AppLog {
  private fd: number | undefined;
  private size = 0;

  private failed = false;

  constructor(
    readonly dir: string,
    readonly name: string,
    private readonly maxBytes = APP_LOG_BYTES,
    /** Told once when the log cannot be written (init says it on the console). */
    private readonly onError?: (err: Error) => void,
  ) {}

  get path(): string {
    return join(this.dir, `${this.name}.log`);
  }

  /** Append; never throws (a full or missing disk must not stop the app or init). */
  write(data: Buffer | string): void {
    try {
      if (this.fd === undefined) this.open();
      if (this.size > 0 && this.size + data.length > this.maxBytes) {
        closeSync(this.fd!);
        renameSync(this.path, `${this.path}.1`);
        this.open();
      }
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      // An app that writes more than the limit in one go keeps its end.
      const part = buf.length > this.maxBytes ? buf.subarray(buf.length - this.maxBytes) : buf;
      writeSync(this.fd!, part);
      this.size += part.length;
    } catch (err) {
      this.close();
      if (!this.failed) this.onError?.(err as Error);
      this.failed = true;
    }
  }

  /** A line of the supervisor's own ("--- started, pid 42 ---"), with the time. */
  mark(text: string, now = new Date()): void {
    this.write(`--- ${now.toISOString()} ${text} ---\n`);
  }

  close(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // Already gone.
      }
    }
    this.fd = undefined;
  }

  private open(): void {
    mkdirSync(this.dir, { recursive: true });
    this.fd = openSync(this.path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }
}

/** The last `lines` lines of an app's log (the old file first, when the live one is short). */
export function tailAppLog(dir: string, name: string, lines = 40): string {
  const read = (p: string): string => (existsSync(p) ? readFileSync(p, 'utf8') : '');
  const text = read(join(dir, `${name}.log.1`)) + read(join(dir, `${name}.log`));
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  return all.slice(-lines).join('\n');
}
