/**
 * `nodeos-bsp update BUNDLE --board HOST`: a running board's other slot, over SSH. The host's
 * OpenSSH client (the user's keys, agent, known_hosts and ~/.ssh/config apply) opens the
 * board's `nodeos-update` subsystem (src/runtime/ssh.ts) and sends the bundle on stdin; the
 * board keeps it on its users' partition, checks it against the keys its system trusts and
 * installs it exactly as board.system.update() does. The steps come back on stderr, the result
 * as JSON on stdout.
 */
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, fstatSync, openSync } from 'node:fs';
import { BspError } from '../errors.js';
import { readFullyAt } from '../fat/index.js';
import { openBundle, verifyBundle } from './bundle.js';
import type { InstallResult } from './install.js';

/** The SSH subsystem the board's server (src/runtime/ssh.ts) receives a bundle on. */
export const UPDATE_SUBSYSTEM = 'nodeos-update';

export interface RemoteUpdateOptions {
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
function sshOptions(o: RemoteUpdateOptions): string[] {
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

/** The ssh command line that opens the board's update subsystem (the bundle goes on stdin). */
export function sshArgs(board: string, o: RemoteUpdateOptions = {}): string[] {
  return [...sshOptions(o), '-s', sshDestination(board), UPDATE_SUBSYSTEM];
}

/** Ask the board to reboot (board.reboot() over SSH); the connection ends with it. */
export async function rebootOverSsh(board: string, o: RemoteUpdateOptions = {}): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(o.ssh ?? 'ssh', [...sshOptions(o), sshDestination(board), 'board.reboot()'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new BspError('ETOOL', `ssh: ${e.message}`)));
    // 255 without a login error: the board went down before ssh said goodbye, which is the point.
    child.on('close', (code) => (code === 0 || (code === 255 && !/denied|refused|resolve|verification failed|timed out/i.test(err)) ? resolve() : reject(new BspError('ESSH', `board.reboot() on ${board} failed (exit ${code}): ${err.trim()}`))));
  });
}

/**
 * Send `bundle` to the board and install it there. The bundle's form is checked here first
 * (its signature against the board's keys is checked on the board, before anything is written).
 */
export async function updateOverSsh(bundle: string, board: string, o: RemoteUpdateOptions = {}): Promise<InstallResult> {
  const args = sshArgs(board, o);
  const fd = openSync(bundle, 'r');
  try {
    const b = openBundle((p, n) => readFullyAt(fd, p, n), fstatSync(fd).size, bundle);
    // The board checks the signature against the keys it trusts; unsigned is refused here already.
    if (b.signature.length === 0) verifyBundle(b, [], bundle);
  } finally {
    closeSync(fd);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(o.ssh ?? 'ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let partial = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        const step = /^update: (.*)$/.exec(l);
        if (step) o.onStep?.(step[1]!);
        else err += `${l}\n`;
      }
    });
    child.on('error', (e: NodeJS.ErrnoException) => reject(new BspError('ETOOL', e.code === 'ENOENT' ? 'ssh not found: apt-get install openssh-client' : `ssh: ${e.message}`)));
    // The board may refuse before reading it all (then ssh's stdin closes early).
    child.stdin.on('error', () => undefined);
    createReadStream(bundle).on('error', (e) => reject(new BspError('EUPDATE_BUNDLE', `${bundle}: ${e.message}`))).pipe(child.stdin);
    child.on('close', (code) => {
      err += partial;
      if (code === 0) {
        try {
          return resolve(JSON.parse(out) as InstallResult);
        } catch {
          return reject(new BspError('EUPDATE', `${board} answered something that is not an update result: ${out.slice(0, 200)}`));
        }
      }
      // The board's own refusal: CODE: message.
      const m = /^(E[A-Z_]+): ([\s\S]*)$/.exec(err.trim());
      if (code === 1 && m) return reject(new BspError(m[1]!, `${board}: ${m[2]!.trim()}`));
      reject(new BspError('ESSH', `ssh to ${board} failed (exit ${code}): ${err.trim() || 'no message'}; check that the board is up, that SSH is on (build or flash --ssh-key) and that your key is authorized`));
    });
  });
}
