/**
 * `import { board } from 'nodeos-bsp/board'` on a development machine: the same API on the
 * mock backend (src/runtime/board/mock.ts), shaped like the board NODEOS_BOARD names (an id
 * from `nodeos-bsp boards list`), with a mock TMP102-like sensor at 0x48 on bus 1. On a NodeOS
 * board the image's own nodeos-bsp/board (runtime/app-board.ts) is found instead, on the real
 * hardware.
 */
import { getBoard } from '../../boards/index.js';
import { BspError } from '../../errors.js';
import { mockFor } from './mock.js';
import { createBoard } from './board.js';

const id = process.env.NODEOS_BOARD;
if (!id) throw new BspError('EUSAGE', "nodeos-bsp/board off the board is a mock of the board NODEOS_BOARD names: set it to a board id (nodeos-bsp boards list), e.g. NODEOS_BOARD=<id> node server.js");
const profile = getBoard(id).profile;

export const board = createBoard(profile, mockFor(profile));
export default board;
