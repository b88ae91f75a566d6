/**
 * The NodeOS REPL on the console, with `board` on the Linux backend.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { BoardProfile } from '../boards/schema.js';
import { createBoard, linuxBackends } from './board/index.js';
import { startBoardRepl } from './board-repl.js';

const info = JSON.parse(readFileSync('/etc/nodeos/image.json', 'utf8')) as { board: BoardProfile; build: string };
const board = createBoard(info.board, linuxBackends());
startBoardRepl(board, existsSync('/home/.nodeos') ? { historyFile: '/home/.node_repl_history' } : {});
