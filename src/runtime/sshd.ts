/**
 * The board's SSH server process, started by init once the partitions are mounted (and
 * restarted if it dies). Keys that may log in: `nodeos_ssh_keys` in the card's U-Boot
 * environment (written by `build --ssh-key` / `flash --ssh-key`) and the users' own
 * `~/.ssh/authorized_keys`. With neither, SSH stays off and says so. The host key is made on
 * first boot and kept on the users' partition, so it survives reboots.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BoardProfile } from '../boards/schema.js';
import { replaceFileAtomically } from '../atomic-file.js';
import { BspError } from '../errors.js';
import { ENV_SSH_KEYS, fingerprint, newHostKey, openSshPublicLine, parseAuthorizedKeys, parsePublicKeyLine, type PublicKey } from '../net/ssh-keys.js';
import { createBoard, linuxBackends } from './board/index.js';
import { SSHD_OFF } from './exit-codes.js';
import { sshOff } from './later.js';
import { startSshServer } from './ssh.js';
import { DEPLOY_SUBSYSTEM, type PinnedNode } from '../apps/deploy-wire.js';
import type { ImageApp, ImageLayout } from '../layout/index.js';
import { APPS_SOCKET, controlApp } from './app-control.js';
import { receiveDeploy } from './deploy.js';


function log(msg: string): void {
  process.stdout.write(`nodeos: ${msg}\n`);
}

const info = JSON.parse(readFileSync('/etc/nodeos/image.json', 'utf8')) as { board: BoardProfile; build: string; layout?: ImageLayout; node?: PinnedNode; apps?: ImageApp[] };
const board = createBoard(info.board, linuxBackends(info.layout ? { env: { file: `/boot/${info.layout.env.file}`, size: info.layout.env.size } } : {}), { build: info.build });
const home = process.env.HOME ?? '/home';
const users = existsSync('/home/.nodeos');
const reported = new Set<string>();

/** The authorized keys now; a bad line is reported once and skipped. */
function authorizedKeys(): PublicKey[] {
  const keys: PublicKey[] = [];
  const add = (where: string, text: string): void => {
    const { keys: found, errors } = parseAuthorizedKeys(text);
    for (const e of errors) {
      const what = `${where} line ${e.line}: ${e.error}`;
      if (!reported.has(what)) log(`ssh: ignoring ${what}`);
      reported.add(what);
    }
    for (const k of found) if (!keys.some((o) => o.blob.equals(k.blob))) keys.push(k);
  };
  try {
    const fromEnv = board.env.get(ENV_SSH_KEYS);
    if (fromEnv) add(`${ENV_SSH_KEYS} (U-Boot environment)`, fromEnv);
  } catch {
    // No environment (no boot partition): only the users' file counts.
  }
  const file = join(home, '.ssh/authorized_keys');
  if (existsSync(file)) add(file, readFileSync(file, 'utf8'));
  return keys;
}

function hostKey(): string {
  const dir = users ? '/home/.local/state/nodeos/ssh' : '/run/nodeos/ssh';
  const file = join(dir, 'ssh_host_ed25519_key');
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    try {
      openSshPublicLine(text);
      return text;
    } catch (err) {
      log(`ssh: ${file} is damaged (${(err as Error).message}); making a new host key`);
    }
  }
  if (!users) log('ssh: no users partition: the host key is made again at every boot');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const k = newHostKey(`nodeos@${info.board.id}`);
  replaceFileAtomically(file, Buffer.from(k.privateKey), 0o600);
  replaceFileAtomically(`${file}.pub`, Buffer.from(`${k.publicKey}\n`), 0o644);
  return k.privateKey;
}

async function main(): Promise<void> {
  if (!authorizedKeys().length) {
    log(sshOff(join(home, '.ssh/authorized_keys')));
    process.exit(SSHD_OFF);
  }
  const key = hostKey();
  const pub = parsePublicKeyLine(openSshPublicLine(key));
  const port = 22;
  // nodeos-bsp deploy --board: an app built on the host, run by init once it settled.
  const deploy = {
    prefix: 'deploy',
    run: (input: Parameters<typeof receiveDeploy>[0], say: (l: string) => void, step: (m: string) => void, from: string) => {
      log(`ssh: an app is being deployed from ${from}`);
      if (!users) throw new BspError('EDEPLOY_NO_USERS', 'deployed apps are kept on the users\' partition (/home), which this boot does not have');
      return receiveDeploy(input, say, step, {
        hello: { board: info.board.id, build: info.build, arch: process.arch, ...(info.node ? { node: info.node } : {}) },
        imageApps: (info.apps ?? []).map((a) => a.name),
        // Stopping the old version, starting the new and its settle time, with room to spare.
        start: (name, release, settleMs) => controlApp('deploy', name, APPS_SOCKET, settleMs + 60_000, { release, settleMs }),
      });
    },
  };
  await startSshServer({ board, hostKey: key, authorizedKeys, log, port, subsystems: { [DEPLOY_SUBSYSTEM]: deploy }, ...(users ? { historyFile: '/home/.local/state/nodeos/ssh/repl_history' } : {}) });
  log(`ssh: listening on port ${port}, host key ${'error' in pub ? '?' : fingerprint(pub.blob)} (ED25519)`);
}

main().catch((err: Error) => {
  log(`ssh: ${err.message}`);
  process.exit(1);
});
