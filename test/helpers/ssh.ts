/** The host's OpenSSH client, for tests that log in to a board (or the server on loopback). */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './tools.js';

/** A user key pair made by ssh-keygen in `dir`. */
export function userKey(dir: string, name: string, type = 'ed25519'): { file: string; pub: string } {
  const file = join(dir, name);
  run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `${name}@test`, '-f', file]);
  return { file, pub: readFileSync(`${file}.pub`, 'utf8') };
}

export interface SshResult {
  code: number | null;
  out: string;
  err: string;
}

/**
 * `ssh -p PORT nodeos@127.0.0.1 ARGS` with only `identity`, known hosts in `dir/known_hosts`
 * (new hosts accepted unless `strict`, which also refuses a changed host key).
 */
export function ssh(port: number, dir: string, identity: string, args: string[], o: { input?: string; strict?: boolean; timeoutMs?: number } = {}): Promise<SshResult> {
  return new Promise((resolve) => {
    const p = spawn('ssh', [
      '-p', String(port),
      '-i', identity,
      '-o', 'IdentitiesOnly=yes',
      '-o', 'BatchMode=yes',
      '-o', `StrictHostKeyChecking=${o.strict ? 'yes' : 'accept-new'}`,
      '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      '-o', `ConnectTimeout=${Math.ceil((o.timeoutMs ?? 60000) / 1000)}`,
      '-o', 'LogLevel=ERROR',
      'nodeos@127.0.0.1',
      ...args,
    ]);
    let out = '';
    let err = '';
    const timer = setTimeout(() => p.kill(), o.timeoutMs ?? 60000);
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
    p.stdin.end(o.input ?? '');
  });
}
