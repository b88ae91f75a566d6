/** `repl --mock`: the board REPL on this machine, over the mock backend. */
import { Command } from 'commander';
import { getBoard } from '../boards/index.js';
import { UsageError } from '../errors.js';
import { createBoard } from '../runtime/board/index.js';
import { startBoardRepl } from '../runtime/repl-server.js';
import { mockFor } from '../runtime/board/mock.js';
import { fileConfig } from '../uboot-env/index.js';
import type { Io } from './output.js';

export function registerRepl(program: Command, _io: Io): void {
  program
    .command('repl')
    .description('the NodeOS REPL with `board`, here, on a mock backend (no hardware needed)')
    .requiredOption('-b, --board <id>', 'board profile')
    .option('--mock', 'use the mock backend (the only backend off the board)')
    .option('--env-file <file>', 'uboot.env to use as board.env (default: none)')
    .addHelpText(
      'after',
      `
The same board API as on the device: board.GPIO17.value, board.pin('J8:11').write(1),
board.pinout(), await board.i2c(1) (a mock sensor answers at 0x48), board.leds, board.info,
and the commands .pinout, .gpio, .i2cdetect, .env.

Examples:
  $ nodeos-bsp repl --board rpi3b --mock
  $ nodeos-bsp repl --board rpi4b --mock --env-file out/boot/uboot.env`,
    )
    .action((o: { board: string; mock?: boolean; envFile?: string }) => {
      if (!o.mock) throw new UsageError('off the board only the mock backend exists: pass --mock');
      const profile = getBoard(o.board).profile;
      const board = createBoard(profile, mockFor(profile), o.envFile ? { env: fileConfig(o.envFile) } : {});
      process.stdout.write(`NodeOS REPL on a mock ${profile.name}: try board.GPIO17.value, .pinout, .i2cdetect\n`);
      startBoardRepl(board);
    });
}
