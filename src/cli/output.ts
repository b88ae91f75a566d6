/** Output conventions: human text by default, `--json` for scripts, colour only on a TTY. */
import type { BspError } from '../errors.js';
import { textToBytes } from '../uboot-env/format.js';

/** Where CLI text goes; tests pass their own. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** True when stdout is a terminal and NO_COLOR is unset. */
  color: boolean;
}

export const processIo = (): Io => ({
  // Environment values may carry non-UTF-8 bytes (as lone surrogates): print the bytes themselves.
  out: (t) => process.stdout.write(/[\udc80-\udcff]/.test(t) ? textToBytes(t) : t),
  err: (t) => process.stderr.write(t),
  color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
});

/**
 * A closed pipe (EPIPE: the reader, e.g. `head`, has what it wanted) ends the process
 * quietly with the status a shell gives a command killed by SIGPIPE (128 + 13), as `ls | head` does.
 */
export function quietOnClosedPipe(stream: NodeJS.WriteStream, exit: (code: number) => void = (c) => process.exit(c)): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') return exit(141);
    throw err;
  });
}

export const json = (io: Io, value: unknown): void => io.out(JSON.stringify(value, null, 2) + '\n');

/** Pad columns of a table (no borders), like `ls -l`. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}

/** Print an error the way every command does: message and code; the stack only with --verbose. */
export function reportError(io: Io, err: unknown, verbose: boolean): void {
  // Matched by shape, not instanceof: a second copy of the kit (or a loader that
  // re-instantiates modules) still gets its code printed.
  const code = err instanceof Error ? (err as Partial<BspError>).code : undefined;
  if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code)) {
    io.err(`nodeos-bsp: ${(err as Error).message} [${code}]\n`);
  } else {
    io.err(`nodeos-bsp: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  if (verbose && err instanceof Error && err.stack) io.err(err.stack + '\n');
}
