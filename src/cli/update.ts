/** `update` (a card's other slot from a signed bundle) and `keys create` (the signing key pair). */
import { Command } from 'commander';
import { updateCard, type CardUpdateOptions } from '../../flash/index.js';
import { createKeyPair } from '../update/index.js';
import { json, type Io } from './output.js';

export function registerUpdate(program: Command, io: Io): void {
  program
    .command('update')
    .argument('<bundle>', 'update bundle: out/nodeos-<board>.nodeos-update from nodeos-bsp build --signing-key')
    .description("install a signed update into the slot a card does not boot; it boots the new system next, and falls back by itself if that does not come up")
    .requiredOption('-d, --device <path>', 'the card (whole disk, e.g. /dev/sdb), or an image file with --force-file')
    .option('--force-file', 'the target is an image file, not a block device')
    .option('--json', 'the result as JSON')
    .addHelpText(
      'after',
      `
The bundle's signature is checked against the keys the card's system trusts, and its layout
against the card's layout.json, before anything is written. The running slot and the users'
partition are never touched; a write cut short leaves the card booting its old system.
On the board itself: board.system.update('/home/nodeos-rpi3b.nodeos-update').

Examples:
  $ nodeos-bsp update out/nodeos-rpi3b.nodeos-update --device /dev/sdb
  $ nodeos-bsp update out/nodeos-rpi3b.nodeos-update --device card.img --force-file --json`,
    )
    .action(async (bundle: string, o: { device: string; forceFile?: boolean; json?: boolean }) => {
      const opts: CardUpdateOptions = { ...(o.forceFile ? { forceFile: true } : {}), ...(o.json ? {} : { onStep: (s) => io.err(`${s}...\n`) }) };
      const r = await updateCard(bundle, o.device, opts);
      if (o.json) return json(io, r);
      io.out(`${o.device}: slot ${r.slot} now holds build ${r.build} (signed by ${r.signedBy}); it boots next and confirms itself, or the card falls back to the other slot\n`);
    });

  const keys = program.command('keys').description('update signing keys').addHelpText('after', '\nExamples:\n  $ nodeos-bsp keys create --out keys');
  keys
    .command('create')
    .description('make an Ed25519 key pair for signing update bundles (the private key file is mode 0600; keep it out of the repository)')
    .option('-o, --out <dir>', 'where to write nodeos-update.key and nodeos-update.pub', 'keys')
    .option('--json', 'the file names and the key id as JSON')
    .addHelpText('after', '\nExamples:\n  $ nodeos-bsp keys create --out ~/.config/nodeos-bsp\n  $ nodeos-bsp build --board rpi3b --signing-key ~/.config/nodeos-bsp/nodeos-update.key')
    .action((o: { out: string; json?: boolean }) => {
      const r = createKeyPair(o.out);
      if (o.json) return json(io, r);
      io.out(`${r.privateKey} (private: keep it secret, build with --signing-key ${r.privateKey})\n${r.publicKey}\nkey id ${r.id}\n`);
    });
}
