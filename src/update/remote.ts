/**
 * `nodeos-bsp update BUNDLE --board HOST`: a running board's other slot, over SSH. The host's
 * OpenSSH client opens the board's `nodeos-update` subsystem (src/runtime/ssh.ts) and sends
 * the bundle on stdin; the board keeps it on its users' partition, checks it against the keys
 * its system trusts and installs it exactly as board.system.update() does. The steps come
 * back on stderr, the result as JSON on stdout (src/net/ssh-client.ts).
 */
import { closeSync, createReadStream, fstatSync, openSync } from 'node:fs';
import { BspError } from '../errors.js';
import { readFullyAt } from '../fat/index.js';
import { openSubsystem, subsystemArgs, type SshClientOptions } from '../net/ssh-client.js';
import { openBundle, verifyBundle } from './bundle.js';
import type { InstallResult } from './install.js';

/** The SSH subsystem the board's server (src/runtime/ssh.ts) receives a bundle on. */
export const UPDATE_SUBSYSTEM = 'nodeos-update';

export type RemoteUpdateOptions = SshClientOptions;

/** The ssh command line that opens the board's update subsystem (the bundle goes on stdin). */
export function sshArgs(board: string, o: RemoteUpdateOptions = {}): string[] {
  return subsystemArgs(board, UPDATE_SUBSYSTEM, o);
}

/**
 * Send `bundle` to the board and install it there. The bundle's form is checked here first
 * (its signature against the board's keys is checked on the board, before anything is written).
 */
export async function updateOverSsh(bundle: string, board: string, o: RemoteUpdateOptions = {}): Promise<InstallResult> {
  // The flags first (EUSAGE), then the bundle.
  sshArgs(board, o);
  const fd = openSync(bundle, 'r');
  try {
    const b = openBundle((p, n) => readFullyAt(fd, p, n), fstatSync(fd).size, bundle);
    // The board checks the signature against the keys it trusts; unsigned is refused here already.
    if (b.signature.length === 0) verifyBundle(b, [], bundle);
  } finally {
    closeSync(fd);
  }
  const s = openSubsystem(board, UPDATE_SUBSYSTEM, 'update', o);
  const sent = new Promise<never>((_, reject) => {
    createReadStream(bundle).on('error', (e) => reject(new BspError('EUPDATE_BUNDLE', `${bundle}: ${e.message}`))).pipe(s.child.stdin!);
  });
  const out = await Promise.race([s.done, sent]);
  try {
    return JSON.parse(out.join('\n')) as InstallResult;
  } catch {
    throw new BspError('EUPDATE', `${board} answered something that is not an update result: ${out.join('\n').slice(0, 200)}`);
  }
}
