/** `update` (a card's other slot from a signed bundle) and `keys create` (the signing key pair). */
import { Command } from 'commander';
import { updateCard, type CardUpdateOptions } from '../../flash/index.js';
import { BspError } from '../errors.js';
import { rebootOverSsh } from '../net/ssh-client.js';
import { createKeyPair, updateOverSsh, type RemoteUpdateOptions } from '../update/index.js';
import { nameProblem } from '../fleet/index.js';
import { json, type Io } from './output.js';

interface UpdateFlags {
  device?: string;
  forceFile?: boolean;
  board?: string;
  sshPort?: number;
  identity?: string;
  sshOption: string[];
  reboot?: boolean;
  allowDowngrade?: boolean;
  json?: boolean;
}

export function registerUpdate(program: Command, io: Io): void {
  program
    .command('update')
    .argument('<bundle>', 'update bundle: out/nodeos-<board>.nodeos-update from nodeos-bsp build --signing-key')
    .description("install a signed update into the slot a card (or a running board) does not boot; it boots the new system next, and falls back by itself if that does not come up")
    .option('-d, --device <path>', 'the card in a reader (whole disk, e.g. /dev/sdb), or an image file with --force-file')
    .option('--force-file', 'the target is an image file, not a block device')
    .option('--board <host>', "a running board, over SSH (its name or address, e.g. nodeos.local or nodeos@192.168.7.1)")
    .option('--ssh-port <port>', 'with --board: the SSH port (default 22)', (v: string) => Number(v))
    .option('-i, --identity <file>', 'with --board: the SSH private key to log in with (default: your ssh agent and keys)')
    .option('--ssh-option <option>', "with --board: an ssh -o option, e.g. StrictHostKeyChecking=accept-new (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--reboot', 'with --board: reboot the board into the new system once it is installed')
    .option('--allow-downgrade', "install a bundle older than the system the card runs (refused otherwise, EUPDATE_DOWNGRADE: an old signed bundle could bring back an old hole)")
    .option('--json', 'the result as JSON')
    .addHelpText(
      'after',
      `
The bundle's signature is checked against the keys the card's system trusts, and its layout
against the card's layout.json, before anything is written. Its signed version (the build's
SOURCE_DATE_EPOCH: set it to your commit time) must not be older than the running system's,
unless --allow-downgrade. The running slot and the users'
partition are never touched; a write cut short leaves the card booting its old system.
With --board the bundle goes over SSH (your OpenSSH client, keys and known_hosts) to the
board, which checks and installs it as board.system.update() does there.
On the board itself: board.system.update('/home/nodeos-rpi3b.nodeos-update').

Examples:
  $ nodeos-bsp update out/nodeos-rpi3b.nodeos-update --device /dev/sdb
  $ nodeos-bsp update out/nodeos-rpi3b.nodeos-update --device card.img --force-file --json
  $ nodeos-bsp update out/nodeos-rpi3b.nodeos-update --board nodeos.local --reboot
  $ nodeos-bsp update old/nodeos-rpi3b.nodeos-update --device /dev/sdb --allow-downgrade
  $ nodeos-bsp update out/nodeos-rpi3b.nodeos-update --board 127.0.0.1 --ssh-port 2222 -i ~/.ssh/id_ed25519`,
    )
    .action(async (bundle: string, o: UpdateFlags) => {
      if (Boolean(o.device) === Boolean(o.board)) throw new BspError('EUSAGE', 'say where to install: --device CARD (a card in a reader) or --board HOST (a running board over SSH)');
      const boardOnly = [o.sshPort !== undefined && '--ssh-port', o.identity && '--identity', o.sshOption.length > 0 && '--ssh-option', o.reboot && '--reboot'].filter(Boolean);
      if (o.device && boardOnly.length) throw new BspError('EUSAGE', `${boardOnly.join(', ')} go${boardOnly.length === 1 ? 'es' : ''} with --board, not --device`);
      if (o.board && o.forceFile) throw new BspError('EUSAGE', '--force-file goes with --device, not --board');
      const onStep = o.json ? undefined : (s: string): void => io.err(`${s}${s.endsWith('...') ? '' : '...'}\n`);
      if (o.board) {
        const remote: RemoteUpdateOptions = {
          ...(o.sshPort !== undefined ? { port: o.sshPort } : {}),
          ...(o.identity ? { identity: o.identity } : {}),
          // The board's update subsystem reads it from the session's environment (ssh SetEnv).
          sshOptions: [...o.sshOption, ...(o.allowDowngrade ? ['SetEnv=NODEOS_ALLOW_DOWNGRADE=1'] : [])],
          ...(onStep ? { onStep } : {}),
        };
        const r = await updateOverSsh(bundle, o.board, remote);
        if (o.reboot) await rebootOverSsh(o.board, remote);
        if (o.json) return json(io, { ...r, ...(o.reboot ? { rebooting: true } : {}) });
        io.out(`${o.board}: slot ${r.slot} now holds build ${r.build} (signed by ${r.signedBy}); ${o.reboot ? 'the board is rebooting into it' : 'it boots at the next reboot'} and confirms itself, or the board falls back to the other slot (board.system shows which)\n`);
        return;
      }
      const opts: CardUpdateOptions = { ...(o.forceFile ? { forceFile: true } : {}), ...(onStep ? { onStep } : {}), ...(o.allowDowngrade ? { allowDowngrade: true } : {}) };
      const r = await updateCard(bundle, o.device!, opts);
      if (o.json) return json(io, r);
      io.out(`${o.device}: slot ${r.slot} now holds build ${r.build} (signed by ${r.signedBy}); it boots next and confirms itself, or the card falls back to the other slot\n`);
    });

  const keys = program.command('keys').description('update signing keys').addHelpText('after', '\nExamples:\n  $ nodeos-bsp keys create --out keys');
  keys
    .command('create')
    .description('make an Ed25519 key pair for signing update bundles (the private key file is mode 0600; keep it out of the repository)')
    .option('-o, --out <dir>', 'where to write <name>.key and <name>.pub', 'keys')
    .option('--name <name>', 'the files\' name: nodeos-update for update bundles, nodeos-fleet for fleet jobs', 'nodeos-update')
    .option('--json', 'the file names and the key id as JSON')
    .addHelpText('after', '\nExamples:\n  $ nodeos-bsp keys create --out ~/.config/nodeos-bsp\n  $ nodeos-bsp build --board rpi3b --signing-key ~/.config/nodeos-bsp/nodeos-update.key\n  $ nodeos-bsp keys create --name nodeos-fleet --out ~/.config/nodeos-bsp')
    .action((o: { out: string; name: string; json?: boolean }) => {
      if (nameProblem('rollout', o.name)) throw new BspError('EUSAGE', `--name ${JSON.stringify(o.name)}: use letters, digits, '-', '_' or '.'`);
      const r = createKeyPair(o.out, o.name);
      if (o.json) return json(io, r);
      io.out(`${r.privateKey} (private: keep it secret, ${o.name === 'nodeos-fleet' ? `sign fleet jobs with --key ${r.privateKey}` : `build with --signing-key ${r.privateKey}`})\n${r.publicKey}\nkey id ${r.id}\n`);
    });
}
