/**
 * `import { board } from 'nodeos-bsp/board'` on a development machine: the same API on the
 * mock backend (src/runtime/board/mock.ts), shaped like the board NODEOS_BOARD names
 * (default rpi3b), with a mock TMP102-like sensor at 0x48 on bus 1. On a NodeOS board the
 * image's own nodeos-bsp/board (runtime/app-board.ts) is found instead, on the real hardware.
 */
import { getBoard } from '../../boards/index.js';
import { mockFor } from '../board-repl.js';
import { createBoard } from './board.js';

const profile = getBoard(process.env.NODEOS_BOARD ?? 'rpi3b').profile;

export const board = createBoard(profile, mockFor(profile));
export default board;
