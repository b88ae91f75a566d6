/**
 * `import { board } from 'nodeos-bsp/board'` in an app on the board: the same `board` the
 * REPL has (GPIO, I2C, serial, LEDs, the U-Boot environment, board.apps), on the Linux
 * backend, for the board this image was built for. The image links it as the package
 * nodeos-bsp in /usr/lib/node_modules, which every app's imports reach.
 */
import { readFileSync } from 'node:fs';
import type { BoardProfile } from '../boards/schema.js';
import type { ImageLayout } from '../layout/index.js';
import { createBoard, linuxBackends } from './board/index.js';

const info = JSON.parse(readFileSync('/etc/nodeos/image.json', 'utf8')) as { board: BoardProfile; build: string; layout?: ImageLayout };

export const board = createBoard(info.board, linuxBackends(info.layout ? { env: { file: `/boot/${info.layout.env.file}`, size: info.layout.env.size } } : {}), { build: info.build });
export default board;
