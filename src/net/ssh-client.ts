/**
 * The host's side of talking to a board over SSH: the user's own OpenSSH client (their keys,
 * agent, known_hosts and ~/.ssh/config apply), run in batch mode. `update --board` and
 * `deploy --board` open one of the board's subsystems (src/runtime/ssh.ts) with it: what the
 * host sends goes on stdin, the board's steps come back on stderr as `<prefix>: <step>`
 * lines, its answer as JSON lines on stdout, and a refusal as `CODE: message` with exit 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BspError } from '../errors.js';

export interface SshClientOptions {
  /** SSH port (default: ssh's, 22 or ~/.ssh/config's). */
  port?: number;
  /** Private key file for ssh -i. */
  identity?: string;
  /** More ssh -o options, e.g. StrictHostKeyChecking=accept-new. */
  sshOptions?: string[];
  /** The steps the board reports ("verify...", "system..."). */
  onStep?: (line: string) => void;
  /** The ssh client (default: ssh on PATH). */
  ssh?: string;
}

/** user@host, or host (user nodeos: the board accepts any name, the key decides). */
export function sshDestination(board: string): string {
  if (!/^([A-Za-z0-9._-]+@)?[A-Za-z0-9.:_%-]+$/.test(board) || board.startsWith('-')) throw new BspError('EUSAGE', `--board ${board}: give the board's host name or address, e.g. nodeos.local or nodeos@192.168.7.1`);
  return board.includes('@') ? board : `nodeos@${board}`;
}

/** ssh's options: batch mode (never a password prompt), then the user's. */
export function sshOptions(o: SshClientOptions): string[] {
  const args = ['-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];
  for (const opt of o.sshOptions ?? []) {
    if (!/^[A-Za-z]+[= ]\S/.test(opt)) throw new BspError('EUSAGE', `--ssh-option ${opt}: use ssh's -o form, e.g. StrictHostKeyChecking=accept-new`);
    args.push('-o', opt);
  }
  if (o.port !== undefined) {
    if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new BspError('EUSAGE', `--ssh-port ${o.port} is not 1-65535`);
    args.push('-p', String(o.port));
  }
  if (o.identity) args.push('-i', o.identity, '-o', 'IdentitiesOnly=yes');
  return args;
}

/** The ssh command line that opens one of the board's subsystems. */
export function subsystemArgs(board: string, subsystem: string, o: SshClientOptions = {}): string[] {
  return [...sshOptions(o), '-s', sshDestination(board), subsystem];
}

/** A subsystem session being run: the board's stdout lines as they come, and how it ended. */
export interface SubsystemSession {
  child: ChildProcess;
  /** Resolves with each stdout line in turn (undefined once stdout has ended). */
  nextLine(): Promise<string | undefined>;
  /** Resolves when ssh has exited: the remaining stdout lines on success, else the board's refusal (its code) or ESSH. */
  done: Promise<string[]>;
}

/**
 * Open `subsystem` on `board`: stderr lines `<prefix>: step` go to onStep, stdout is read a
 * line at a time. `done` rejects with the board's own code when it refused (`CODE: message`,
 * exit 1), with ESSH (saying what to check) when ssh could not get there.
 */
export function openSubsystem(board: string, subsystem: string, prefix: string, o: SshClientOptions = {}): SubsystemSession {
  const child = spawn(o.ssh ?? 'ssh', subsystemArgs(board, subsystem, o), { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiting: ((l: string | undefined) => void)[] = [];
  let ended = false;
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const parts = out.split('\n');
    out = parts.pop()!;
    for (const l of parts) (waiting.shift() ?? ((x: string) => void lines.push(x)))(l);
  });
  child.stdout!.on('end', () => {
    if (out) (waiting.shift() ?? ((x: string) => void lines.push(x)))(out);
    out = '';
    ended = true;
    for (const w of waiting.splice(0)) w(undefined);
  });
  let err = '';
  let partial = '';
  const stepRe = new RegExp(`^${prefix}: (.*)$`);
  child.stderr!.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      const step = stepRe.exec(l);
      if (step) o.onStep?.(step[1]!);
      else err += `${l}\n`;
    }
  });
  // The board may refuse before reading all we send (then ssh's stdin closes early).
  child.stdin!.on('error', () => undefined);
  const done = new Promise<string[]>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(new BspError('ETOOL', e.code === 'ENOENT' ? 'ssh not found: apt-get install openssh-client' : `ssh: ${e.message}`)));
    child.on('close', (code) => {
      err += partial;
      if (code === 0) return resolve(lines.splice(0));
      // The board's own refusal: CODE: message.
      const m = /^(E[A-Z_]+): ([\s\S]*)$/.exec(err.trim());
      if (code === 1 && m) return reject(new BspError(m[1]!, `${board}: ${m[2]!.trim()}`));
      if (/subsystem request failed/i.test(err)) return reject(new BspError('ESSH_SUBSYSTEM', `${board} has no ${subsystem} service: its system is older than this kit; update it first (nodeos-bsp update BUNDLE --board ${board})`));
      reject(new BspError('ESSH', `ssh to ${board} failed (exit ${code}): ${err.trim() || 'no message'}; check that the board is up, that SSH is on (build or flash --ssh-key) and that your key is authorized`));
    });
  });
  // Nobody may be waiting on done yet (a build between two lines): no unhandled rejection.
  done.catch(() => undefined);
  return {
    child,
    nextLine: () => (lines.length ? Promise.resolve(lines.shift()) : ended ? Promise.resolve(undefined) : new Promise((r) => waiting.push(r))),
    done,
  };
}

/** Ask the board to reboot (board.reboot() over SSH); the connection ends with it. */
export async function rebootOverSsh(board: string, o: SshClientOptions = {}): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(o.ssh ?? 'ssh', [...sshOptions(o), sshDestination(board), 'board.reboot()'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new BspError('ETOOL', `ssh: ${e.message}`)));
    // 255 without a login error: the board went down before ssh said goodbye, which is the point.
    child.on('close', (code) => (code === 0 || (code === 255 && !/denied|refused|resolve|verification failed|timed out/i.test(err)) ? resolve() : reject(new BspError('ESSH', `board.reboot() on ${board} failed (exit ${code}): ${err.trim()}`))));
  });
}
