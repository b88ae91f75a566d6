/**
 * The NodeOS REPL on the console: Node's own `repl`, with the image's board profile
 * available as `board.profile` until the full board API arrives.
 */
import { readFileSync } from 'node:fs';
import repl from 'node:repl';

const info = JSON.parse(readFileSync('/etc/nodeos/image.json', 'utf8')) as { board: Record<string, unknown>; build: string };
const server = repl.start({ prompt: '> ', useGlobal: true });
Object.defineProperty(server.context, 'board', {
  value: Object.freeze({ profile: info.board, build: info.build }),
  enumerable: true,
});
