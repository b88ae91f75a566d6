/**
 * The NodeOS REPL on the console, with `board` on the Linux backend.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import type { BoardProfile } from '../boards/schema.js';
import { createBoard, linuxBackends } from './board/index.js';
import { SCREEN_REPL_ENV, type ImageLayout } from '../layout/index.js';
import { evalLine, startBoardRepl, startupLines } from './repl-server.js';

const info = JSON.parse(readFileSync('/etc/nodeos/image.json', 'utf8')) as { board: BoardProfile; build: string; layout?: ImageLayout };
const board = createBoard(info.board, linuxBackends(info.layout ? { env: { file: `/boot/${info.layout.env.file}`, size: info.layout.env.size } } : {}), { build: info.build });
const server = startBoardRepl(board, existsSync('/home/.nodeos') ? { historyFile: '/home/.node_repl_history' } : {});
// The prompt shows: init starts what waited for it (the console's REPL has an IPC channel for this only).
process.send?.('prompt', () => process.disconnect?.());
// The console's first REPL of a boot runs the nodeos.run= lines of the kernel command line
// (/run is a tmpfs); the screen's never does.
const ran = '/run/nodeos-startup-ran';
if (process.env[SCREEN_REPL_ENV] !== '1' && !existsSync(ran)) {
  writeFileSync(ran, '');
  // One after the other, each shown after the prompt as if typed, with its result.
  const lines = startupLines(readFileSync('/proc/cmdline', 'utf8'));
  // A line that throws is reported (by the REPL itself, when it comes through its domain); the next ones still run.
  void (async () => {
    for (const line of lines) {
      server.output.write(`${line}\n`);
      const r = await evalLine(server, line, 'nodeos.run');
      if (r.ok || !r.reported) {
        server.output.write(`${r.ok ? server.writer(r.value) : `Uncaught ${inspect(r.error)}`}\n`);
        server.displayPrompt();
      }
    }
  })();
}
