/** Where the kit's own data lives, whether it runs from `src/` (tsx) or `dist/src/` (built). */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { BspError } from './errors.js';
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

/**
 * Why a path from a profile is not a plain relative path inside its folder, or undefined
 * when it is: no absolute paths, no `..` or empty segments, no backslashes or NUL.
 */
export function profilePathProblem(rel: string): string | undefined {
  if (rel === '') return 'is empty';
  if (rel.includes('\0')) return 'holds a NUL byte';
  if (rel.includes('\\')) return 'holds a backslash (use /)';
  if (isAbsolute(rel)) return 'is absolute (give a path relative to its folder)';
  const parts = rel.split('/');
  if (parts.some((p) => p === '..')) return 'climbs out of its folder with ..';
  if (parts.some((p) => p === '' || p === '.')) return 'has an empty or "." segment';
  return undefined;
}

/**
 * `rel` (a path from a profile) resolved inside `root`, following symlinks: EPROFILE_PATH
 * when it names anything outside, so a profile can never copy a host file into an image or
 * write outside a scratch folder.
 */
export function insideRoot(root: string, rel: string, field: string): string {
  const problem = profilePathProblem(rel);
  if (problem) throw new BspError('EPROFILE_PATH', `${field} "${rel}" ${problem}`);
  const base = resolve(root);
  const full = resolve(base, rel);
  const within = (p: string, r: string): boolean => p === r || p.startsWith(r.endsWith(sep) ? r : r + sep);
  if (!within(full, base)) throw new BspError('EPROFILE_PATH', `${field} "${rel}" is outside ${root}`);
  if (existsSync(full) && existsSync(base)) {
    const real = realpathSync(full);
    if (!within(real, realpathSync(base))) throw new BspError('EPROFILE_PATH', `${field} "${rel}" leads (through a symlink) to ${real}, outside ${root}`);
  }
  return full;
}
