/** `deploy`: a new version of an app onto a running board, over SSH, kept only if it runs. */
import { Command } from 'commander';
import { DEFAULT_SETTLE_MS } from '../apps/deploy-wire.js';
import { deployOverSsh, type DeployOptions } from '../apps/deploy.js';
import { json, type Io } from './output.js';

interface DeployFlags {
  board: string;
  settle: number;
  sshPort?: number;
  identity?: string;
  sshOption: string[];
  offline?: boolean;
  json?: boolean;
}

export function registerDeploy(program: Command, io: Io): void {
  program
    .command('deploy')
    .argument('<dir>', 'the app: an npm project with its package-lock.json (as for build --app)')
    .description('build an app for a running board and run it there in place of its running version, without reflashing or rebooting; rolled back if it does not keep running')
    .requiredOption('--board <host>', "the running board, over SSH (its name or address, e.g. nodeos.local or nodeos@192.168.7.1)")
    .option('--settle <seconds>', 'how long the new version must run without exiting before it replaces the old one', (v: string) => Number(v) * 1000, DEFAULT_SETTLE_MS)
    .option('--ssh-port <port>', 'the SSH port (default 22)', (v: string) => Number(v))
    .option('-i, --identity <file>', 'the SSH private key to log in with (default: your ssh agent and keys)')
    .option('--ssh-option <option>', 'an ssh -o option, e.g. StrictHostKeyChecking=accept-new (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--offline', "build from the cache only (the board's Node package and the app's dependencies must be there)")
    .option('--json', 'the result as JSON')
    .addHelpText(
      'after',
      `
The board says which Node it runs; the app is built here for exactly that Node and arch (its
lock's production dependencies, addons prebuilt or cross-compiled, as build --app does), sent
over SSH (your OpenSSH client, keys and known_hosts), and started by the board's init in place
of the running version. The new version is kept (and runs at every boot) once it has run
--settle seconds without exiting; if it exits sooner, the old version is put back and started
again, and deploy fails with EDEPLOY_CRASHED and the end of the app's log. A deployed copy of
an app built into the image runs on the system it was deployed to: a system update brings the
image's version back. On the board, board.apps shows the release; .logs NAME its log.

Examples:
  $ nodeos-bsp deploy examples/thermometer --board nodeos.local
  $ nodeos-bsp deploy . --board nodeos@192.168.7.1 --settle 30 --json
  $ nodeos-bsp deploy examples/blink --board 127.0.0.1 --ssh-port 2222 -i ~/.ssh/id_ed25519`,
    )
    .action(async (dir: string, o: DeployFlags) => {
      const opts: DeployOptions = {
        settleMs: o.settle,
        ...(o.sshPort !== undefined ? { port: o.sshPort } : {}),
        ...(o.identity ? { identity: o.identity } : {}),
        sshOptions: o.sshOption,
        ...(o.offline ? { offline: true } : {}),
        ...(o.json ? {} : { onStep: (s: string) => io.err(`${s}\n`) }),
      };
      const r = await deployOverSsh(dir, o.board, opts);
      if (o.json) return json(io, r);
      if (r.unchanged) return io.out(`${o.board}: ${r.name} ${r.version} (release ${r.release}) is already the deployed version; nothing changed (board.apps.${r.name}.restart() restarts it)\n`);
      io.out(`${o.board}: ${r.name} ${r.version} (release ${r.release}) runs${r.pid !== undefined ? ` as pid ${r.pid}` : ''}${r.previous ? `, in place of ${r.previous.version} (release ${r.previous.release})` : r.replacesImageApp ? ', in place of the image\'s version' : ''}; it starts at every boot\n`);
    });
}
