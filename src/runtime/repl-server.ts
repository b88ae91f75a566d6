/**
 * The NodeOS REPL with `board` injected (johnny-five style): Node's own repl, top-level
 * await, history, and the commands .pinout, .gpio, .i2cdetect [bus], .env, .npm ARGS.
 */
import { spawn } from 'node:child_process';
import repl, { type REPLServer } from 'node:repl';
import type { Readable, Writable } from 'node:stream';
import type { Board } from './board/index.js';
import { examplePin } from '../boards/pins.js';

export interface BoardReplOptions {
  input?: Readable;
  output?: Writable;
  /** File for the history (on the users' partition on a board). */
  historyFile?: string;
  prompt?: string;
  /** A context of its own instead of the process's global (each SSH session has one). */
  ownContext?: boolean;
  /** Line editing and echo (a console or an SSH pty); default: whether output is a TTY. */
  terminal?: boolean;
}

/** An i2cdetect-style grid of the addresses that answered. */
export function i2cGrid(found: number[]): string {
  const rows = ['     0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f'];
  for (let r = 0; r < 8; r++) {
    let line = `${(r * 16).toString(16).padStart(2, '0')}:`;
    for (let c = 0; c < 16; c++) {
      const a = r * 16 + c;
      line += a < 3 || a > 0x77 ? '   ' : found.includes(a) ? ` ${a.toString(16).padStart(2, '0')}` : ' --';
    }
    rows.push(line);
  }
  return rows.join('\n');
}

/**
 * The `nodeos.run=<line>` kernel arguments, in order: lines the first REPL of a boot runs as
 * if typed (e.g. nodeos.run="board.GPIO17.write(1)" to set a pin at power-on; set them when
 * flashing with --cmdline). Double quotes allow spaces, as the kernel's own parser does.
 */
export function startupLines(cmdline: string): string[] {
  const out: string[] = [];
  for (const m of cmdline.matchAll(/(?:^|\s)nodeos\.run=(?:"([^"]*)"|(\S*))/g)) {
    const line = (m[1] ?? m[2] ?? '').trim();
    if (line) out.push(line);
  }
  return out;
}

/** Start the REPL with `board` in its context. */
export function startBoardRepl(board: Board, o: BoardReplOptions = {}): REPLServer {
  const server = repl.start({
    prompt: o.prompt ?? '> ',
    useGlobal: !o.ownContext,
    ...(o.terminal !== undefined ? { terminal: o.terminal } : {}),
    ...(o.input ? { input: o.input } : {}),
    ...(o.output ? { output: o.output } : {}),
  });
  Object.defineProperty(server.context, 'board', { value: board, enumerable: true });
  const say = (text: string): void => {
    server.output.write(text.endsWith('\n') ? text : `${text}\n`);
    server.displayPrompt();
  };
  const guard = async (fn: () => unknown): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      say(`${(err as Error).message}${(err as { code?: string }).code ? ` [${(err as { code?: string }).code}]` : ''}`);
    }
  };
  server.defineCommand('pinout', { help: 'Draw the GPIO header (opened pins marked)', action: () => void guard(() => say(board.pinout())) });
  server.defineCommand('gpio', {
    help: 'List opened pins with direction and value',
    action: () =>
      void guard(() => {
        const ex = examplePin(board.profile);
        say(board.opened().map((p) => p.toString()).join('\n') || `no pins opened yet${ex ? ` (try board.${ex.label}.value)` : ''}`);
      }),
  });
  server.defineCommand('i2cdetect', {
    help: "Scan an I2C bus (default: the board's first, 1 on a Pi)",
    action: (arg: string) =>
      void guard(async () => {
        const bus = await board.i2c(arg.trim() ? Number(arg) : undefined);
        try {
          say(i2cGrid(await bus.scan()));
        } finally {
          await bus.close();
        }
      }),
  });
  server.defineCommand('logs', {
    help: 'Show the end of an app\'s log: .logs NAME [LINES]',
    action: (arg: string) =>
      void guard(() => {
        const [name, lines] = arg.trim().split(/\s+/);
        if (!name) return say(`name an app: ${Object.keys(board.apps).join(', ') || '(no apps)'}`);
        const app = board.apps[name];
        if (!app) return say(`no app named ${name}: the apps are ${Object.keys(board.apps).join(', ') || '(none)'}`);
        say(app.logs(lines ? Number(lines) : 40) || `(${name} has written nothing yet)`);
      }),
  });
  server.defineCommand('env', {
    help: 'Print the U-Boot environment',
    action: () => void guard(() => say(Object.entries(board.env.all()).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('\n'))),
  });
  server.defineCommand('npm', {
    help: 'Run npm, e.g. .npm install -g cowsay (global packages live on the users\' partition; require them right after)',
    action: (arg: string) => {
      const args = arg.trim().split(/\s+/).filter(Boolean);
      server.pause();
      const child = spawn('npm', args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
      child.stdout.on('data', (d: Buffer) => server.output.write(d));
      child.stderr.on('data', (d: Buffer) => server.output.write(d));
      child.on('error', (err) => say(`cannot run npm: ${err.message}`));
      child.on('close', (code) => {
        server.resume();
        if (code === 0) server.displayPrompt();
        else say(`npm exited with status ${code}`);
      });
    },
  });
  if (o.historyFile) server.setupHistory(o.historyFile, () => undefined);
  return server;
}

/** What evaluating one line gave: its value, or the error it threw. */
export type LineResult = { ok: true; value: unknown } | { ok: false; error: unknown; /** printed by the REPL already */ reported: boolean };

/**
 * Evaluate a line as if typed (top-level await included). Node's REPL reports an error the
 * line throws through its domain, printing it itself, and never calls the eval callback:
 * the error is taken from the domain here, so a caller running several lines goes on.
 * `beforeReport` runs before the REPL prints the error (e.g. to silence it).
 */
export function evalLine(server: REPLServer, line: string, filename: string, beforeReport?: () => void): Promise<LineResult> {
  const domain = (server as unknown as { _domain?: { prependListener(e: 'error', l: (err: unknown) => void): void; off(e: 'error', l: (err: unknown) => void): void } })._domain;
  return new Promise((resolve) => {
    const thrown = (error: unknown): void => {
      domain?.off('error', thrown);
      beforeReport?.();
      resolve({ ok: false, error, reported: true });
    };
    domain?.prependListener('error', thrown);
    server.eval(line, server.context, filename, (error, value) => {
      domain?.off('error', thrown);
      resolve(error ? { ok: false, error, reported: false } : { ok: true, value });
    });
  });
}
