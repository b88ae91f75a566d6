/**
 * Users' own apps: a package a user installed with `npm install -g` (into their prefix on
 * the users' partition) and marked with `board.apps.enable('name')` starts at every boot,
 * supervised like the image's apps — the NodeOS idea of every home carrying its own
 * packages and its own init. The list is kept on the users' partition.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { appSettings, type AppPackageJson } from '../apps/manifest.js';
import { replaceFileAtomically } from '../atomic-file.js';
import { BspError } from '../errors.js';
import type { AppSpec } from './apps.js';

/** Where the enabled list lives: {"enabled": ["cowsay-server", "@acme/door"]}. */
export const USER_APPS_FILE = '/home/.local/state/nodeos/apps.json';
/** The users' npm prefix (npm.ts): global packages are in <prefix>/lib/node_modules. */
export const USER_PREFIX = '/home/.npm-global';

const PACKAGE = /^(?:@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;

/** The app a globally installed package makes (refused with a code and what to do). */
export function userAppSpec(pkgName: string, prefix = USER_PREFIX): AppSpec {
  if (!PACKAGE.test(pkgName)) throw new BspError('EAPP', `${JSON.stringify(pkgName)} is not an npm package name`);
  const dir = join(prefix, 'lib/node_modules', pkgName);
  if (!existsSync(join(dir, 'package.json'))) throw new BspError('EAPP_NOT_INSTALLED', `${pkgName} is not installed in ${prefix}: .npm install -g ${pkgName} first`);
  const s = appSettings(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as AppPackageJson, dir);
  if (!existsSync(join(dir, s.main))) throw new BspError('EAPP', `${pkgName}: its main file ${s.main} is missing from ${dir}`);
  return { name: s.name, version: s.version, dir, main: s.main, network: s.network, root: s.root, source: 'user', package: pkgName };
}

/** The packages enabled to start at boot (none when the file is missing or unreadable). */
export function readEnabled(file = USER_APPS_FILE): string[] {
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { enabled?: unknown };
    return Array.isArray(j.enabled) ? j.enabled.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** Write the list whole (renamed into place: a power cut leaves the old or the new one). */
export function writeEnabled(names: string[], file = USER_APPS_FILE): void {
  mkdirSync(dirname(file), { recursive: true });
  replaceFileAtomically(file, Buffer.from(JSON.stringify({ enabled: [...new Set(names)].sort() }, null, 2) + '\n'));
}
