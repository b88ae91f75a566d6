/**
 * The REPL over SSH: an SSH server (ssh2, pure JavaScript) whose sessions are NodeOS REPLs
 * with `board` in scope. Public keys only; each shell session gets its own REPL context;
 * `ssh board 'EXPR'` evaluates one expression, prints its result as `node -p` does and exits
 * non-zero when it throws. Runs on the board (sshd.ts) and, with the mock board, in tests.
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { PassThrough, Transform, Writable, type Readable } from 'node:stream';
import { inspect } from 'node:util';
import type { AuthContext, Connection, ServerChannel, Server as Ssh2Server } from 'ssh2';
import { BspError } from '../errors.js';
import { logText } from '../net/log-text.js';
import { fingerprint, type PublicKey } from '../net/ssh-keys.js';
import type { Board } from './board/index.js';
import { evalLine, startBoardRepl } from './repl-server.js';
import { UPDATE_SUBSYSTEM } from '../update/index.js';

const require = createRequire(import.meta.url);

export interface SshServerOptions {
  board: Board;
  /** The host key, OpenSSH private key text. */
  hostKey: string;
  /** The keys allowed to log in, read at each attempt (so new keys work without a restart). */
  authorizedKeys: () => PublicKey[];
  log: (msg: string) => void;
  port?: number;
  host?: string;
  /** REPL history file shared by the sessions. */
  historyFile?: string;
  /** More subsystems than nodeos-update (board.system.update), e.g. nodeos-deploy (sshd.ts). */
  subsystems?: Record<string, SubsystemHandler>;
}

/**
 * A subsystem session (`ssh -s BOARD NAME`): what the host sends is `input`; `say` writes a
 * line to the host's stdout, `step` a `<prefix>: step` line to its stderr. The result is
 * written as a JSON line and the session exits 0; a thrown error is `CODE: message`, exit 1.
 */
export interface SubsystemHandler {
  prefix: string;
  /** `env`: the variables the client set for this session (ssh -o SetEnv=...), as given. */
  run(input: Readable, say: (line: string) => void, step: (msg: string) => void, from: string, env: ReadonlyMap<string, string>): Promise<unknown>;
}

export interface SshServer {
  port: number;
  close(): Promise<void>;
}

/** `node -p` style: strings as they are, everything else inspected. */
export function formatResult(v: unknown): string {
  return typeof v === 'string' ? v : inspect(v, { depth: 4 });
}

/** Output for a client with a pty: the client's terminal is raw, so \n must become \r\n. */
function crlf(to: Writable): Transform {
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      cb(null, Buffer.from(chunk.toString('utf8').replace(/\r?\n/g, '\r\n')));
    },
  });
  t.pipe(to);
  return t;
}

function clientAddress(c: Connection): string {
  const sock = (c as unknown as { _sock?: { remoteAddress?: string } })._sock;
  return sock?.remoteAddress ?? 'unknown address';
}

/**
 * Evaluate one expression in a fresh REPL context (top-level await as in the REPL); what
 * console.* prints goes to `out`. Node's REPL reports a thrown error through its domain
 * instead of the eval callback, so that error is taken from the domain here (first, with
 * the REPL's own printing muted) and returned.
 */
export async function evaluateOnce(board: Board, expr: string, out: Writable): Promise<{ ok: boolean; text: string }> {
  let muted = false;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (muted) return cb();
      out.write(chunk, cb);
    },
  });
  const repl = startBoardRepl(board, { input: new PassThrough(), output: sink, ownContext: true, terminal: false, prompt: '' });
  try {
    const r = await evalLine(repl, expr, 'ssh', () => (muted = true));
    return r.ok ? { ok: true, text: formatResult(r.value) } : { ok: false, text: `Uncaught ${inspect(r.error)}` };
  } finally {
    repl.close();
  }
}

/** Start the SSH server; resolves once it listens. */
/** Failed logins on one connection before it is closed (OpenSSH's MaxAuthTries). */
export const MAX_AUTH_TRIES = 6;
/** Connections not yet logged in, from one address and in all (OpenSSH's MaxStartups is 10 in all). */
export const MAX_PENDING_PER_SOURCE = 3;
export const MAX_PENDING = 10;

/**
 * Who may open another connection that has not logged in yet: at most `perSource` from one
 * address and `total` in all; a refused address is said once a minute, not once a try.
 */
export class PendingLimit {
  private readonly pending = new Map<string, number>();
  private readonly said = new Map<string, number>();
  private total = 0;
  constructor(
    private readonly perSource = MAX_PENDING_PER_SOURCE,
    private readonly max = MAX_PENDING,
    private readonly now = (): number => Date.now(),
  ) {}

  /** Count a new connection from `from`; false (and whether to log it) when over a limit. */
  open(from: string): { ok: true } | { ok: false; log: boolean } {
    const n = this.pending.get(from) ?? 0;
    if (n >= this.perSource || this.total >= this.max) {
      const last = this.said.get(from);
      const log = last === undefined || this.now() - last >= 60000;
      if (log) {
        if (this.said.size >= 256) this.said.clear();
        this.said.set(from, this.now());
      }
      return { ok: false, log };
    }
    this.pending.set(from, n + 1);
    this.total++;
    return { ok: true };
  }

  /** The connection logged in or closed. */
  done(from: string): void {
    const n = this.pending.get(from) ?? 0;
    if (n <= 1) this.pending.delete(from);
    else this.pending.set(from, n - 1);
    if (n > 0) this.total--;
  }
}

export async function startSshServer(o: SshServerOptions): Promise<SshServer> {
  let ssh2: typeof import('ssh2');
  try {
    ssh2 = require('ssh2') as typeof import('ssh2');
  } catch (err) {
    throw new BspError('EMODULE_MISSING', `the ssh2 module is not available (${(err as Error).message}); NodeOS images ship it in /usr/lib/node_modules`, { cause: err });
  }
  const { Server, utils } = ssh2;
  const subsystems: Record<string, SubsystemHandler> = {
    [UPDATE_SUBSYSTEM]: {
      prefix: 'update',
      run: (input, _say, step, from, env) => {
        // nodeos-bsp update --board --allow-downgrade sets NODEOS_ALLOW_DOWNGRADE=1 (ssh SetEnv).
        const allowDowngrade = env.get('NODEOS_ALLOW_DOWNGRADE') === '1';
        o.log(`ssh: an update bundle is being uploaded from ${from}${allowDowngrade ? ' (older versions allowed)' : ''}`);
        return o.board.system.update(input, { log: step, allowDowngrade });
      },
    },
    ...o.subsystems,
  };
  const clients = new Set<Connection>();
  const limit = new PendingLimit();
  const server: Ssh2Server = new Server({ hostKeys: [o.hostKey] }, (client: Connection) => {
    const from = clientAddress(client);
    client.on('error', () => undefined);
    const admitted = limit.open(from);
    if (!admitted.ok) {
      if (admitted.log) o.log(`ssh: too many connections from ${from} that have not logged in; refusing more for now`);
      client.end();
      return;
    }
    let pending = true;
    const settle = (): void => {
      if (pending) limit.done(from);
      pending = false;
    };
    clients.add(client);
    client.on('close', () => (clients.delete(client), settle()));
    const refused = new Set<string>();
    let failures = 0;
    // A user name is the peer's words: escaped and cut before it reaches the console's log.
    const user = (ctx: AuthContext): string => logText(ctx.username, 64);
    const reject = (ctx: AuthContext): void => {
      if (++failures >= MAX_AUTH_TRIES) {
        o.log(`ssh: too many authentication failures for ${user(ctx)} from ${from}; disconnected`);
        ctx.reject(['publickey']);
        client.end();
        return;
      }
      ctx.reject(['publickey']);
    };
    client.on('authentication', (ctx: AuthContext) => {
      // Tries already on their way when the connection was closed are not looked at.
      if (failures >= MAX_AUTH_TRIES) return ctx.reject([]);
      // The "none" probe every client starts with is not a failure (as in OpenSSH).
      if (ctx.method === 'none') return ctx.reject(['publickey']);
      if (ctx.method !== 'publickey') return reject(ctx);
      const key = o.authorizedKeys().find((k) => k.blob.equals(ctx.key.data));
      if (!key) {
        const fp = fingerprint(ctx.key.data);
        if (!refused.has(fp)) o.log(`ssh: refused key ${fp} (${logText(ctx.key.algo, 40)}) for ${user(ctx)} from ${from}: not an authorized key`);
        refused.add(fp);
        return reject(ctx);
      }
      // Without a signature the client only asks whether the key would do.
      if (!ctx.signature) return ctx.accept();
      const parsed = utils.parseKey(key.line);
      const pub = Array.isArray(parsed) ? parsed[0] : parsed;
      if (!pub || pub instanceof Error || pub.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) {
        o.log(`ssh: refused ${user(ctx)} from ${from}: bad signature for key ${fingerprint(key.blob)}`);
        return reject(ctx);
      }
      o.log(`ssh: ${user(ctx)} logged in from ${from} with key ${fingerprint(key.blob)}${key.comment ? ` (${logText(key.comment, 80)})` : ''}`);
      ctx.accept();
    });
    client.on('ready', () => {
      settle();
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        let pty: { cols: number; rows: number } | undefined;
        let out: (Writable & { columns?: number; rows?: number }) | undefined;
        session.on('pty', (accept, _reject, info) => {
          pty = { cols: info.cols, rows: info.rows };
          accept?.();
        });
        session.on('window-change', (accept, _reject, info) => {
          pty = { cols: info.cols, rows: info.rows };
          if (out) {
            out.columns = info.cols;
            out.rows = info.rows;
            out.emit('resize');
          }
          accept?.();
        });
        // A few variables from the client are kept for the session's subsystem (bounded: it is the peer's word).
        const env = new Map<string, string>();
        session.on('env', (accept, _reject, info) => {
          if (env.size < 16 && /^[A-Z][A-Z0-9_]{0,63}$/.test(info.key) && info.val.length <= 256) env.set(info.key, info.val);
          accept?.();
        });
        session.on('shell', (accept) => {
          const channel: ServerChannel = accept();
          out = pty ? crlf(channel) : channel;
          if (pty) {
            out.columns = pty.cols;
            out.rows = pty.rows;
          }
          const repl = startBoardRepl(o.board, {
            input: channel as Readable,
            output: out,
            ownContext: true,
            terminal: Boolean(pty),
            ...(o.historyFile && pty ? { historyFile: o.historyFile } : {}),
          });
          // .exit or Ctrl-D ends the session, never the server.
          repl.on('exit', () => {
            channel.exit(0);
            channel.end();
          });
          channel.on('close', () => repl.close());
        });
        // `ssh -s BOARD nodeos-update < bundle` (nodeos-bsp update --board), nodeos-deploy
        // (nodeos-bsp deploy): the upload on stdin, the steps on stderr, the result as JSON on
        // stdout; exit 1 with CODE: message.
        session.on('subsystem', (accept, reject, info) => {
          const handler = subsystems[info.name];
          if (!handler) return reject?.();
          const channel: ServerChannel = accept();
          handler
            .run(channel as Readable, (line) => channel.write(`${line}\n`), (m) => channel.stderr.write(`${handler.prefix}: ${m}\n`), from, env)
            .then(
              (r) => {
                channel.write(`${JSON.stringify(r)}\n`);
                channel.exit(0);
              },
              (err: Error & { code?: string }) => {
                channel.stderr.write(`${err.code ?? `E${handler.prefix.toUpperCase()}`}: ${err.message}\n`);
                channel.exit(1);
              },
            )
            .finally(() => channel.end());
        });
        session.on('exec', (accept, _reject, info) => {
          const channel: ServerChannel = accept();
          void evaluateOnce(o.board, info.command, channel).then((r) => {
            if (r.ok) channel.write(`${r.text}\n`);
            else channel.stderr.write(`${r.text}\n`);
            channel.exit(r.ok ? 0 : 1);
            channel.end();
          });
        });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 22, o.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const c of clients) c.end();
      }),
  };
}
