/**
 * The NodeOS REPL on the console, with `board` on the Linux backend.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import type { BoardProfile } from '../boards/schema.js';
import { createBoard, linuxBackends } from './board/index.js';
import { startBoardRepl, startupLines } from './board-repl.js';

const info = JSON.parse(readFileSync('/etc/nodeos/image.json', 'utf8')) as { board: BoardProfile; build: string };
const board = createBoard(info.board, linuxBackends());
const server = startBoardRepl(board, existsSync('/home/.nodeos') ? { historyFile: '/home/.node_repl_history' } : {});
// The first REPL of a boot runs the nodeos.run= lines of the kernel command line (/run is a tmpfs).
const ran = '/run/nodeos-startup-ran';
if (!existsSync(ran)) {
  writeFileSync(ran, '');
  // One after the other, each shown after the prompt as if typed, with its result.
  const lines = startupLines(readFileSync('/proc/cmdline', 'utf8'));
  const run = (i: number): void => {
    const line = lines[i];
    if (line === undefined) return;
    server.output.write(`${line}\n`);
    server.eval(line, server.context, 'nodeos.run', (err, result) => {
      server.output.write(`${err ? `Uncaught ${inspect(err)}` : server.writer(result)}\n`);
      server.displayPrompt();
      run(i + 1);
    });
  };
  run(0);
}
