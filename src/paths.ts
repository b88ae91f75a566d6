/** Where the kit's own data lives, whether it runs from `src/` (tsx) or `dist/src/` (built). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The directory holding the kit's package.json. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'nodeos-bsp') {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('nodeos-bsp: cannot find the package root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** Default board-profile directory: `boards/` of the kit. */
export const defaultBoardsDir = (): string => join(packageRoot(), 'boards');
/** Default kernel-config fragment directory: `kernel-configs/` of the kit. */
export const defaultKernelConfigsDir = (): string => join(packageRoot(), 'kernel-configs');
