/**
 * How an app runs, read from its package.json: shared by the builder (apps built into the
 * image) and the board's init (apps a user enabled from their npm prefix). package.json may
 * say it in a "nodeos" field:
 *   { "nodeos": { "main": "server.js", "network": true, "root": false } }
 * main: nodeos.main, else the package's bin (its only one, or the one named like the package:
 * the program of a package installed with npm install -g), else "main", else index.js.
 * network (start once the board has an address) and root (run as root instead of the app
 * user) default to false.
 */
import { posix } from 'node:path';
import { BspError } from '../errors.js';

/** The parts of package.json an app's settings come from. */
export interface AppPackageJson {
  name?: unknown;
  version?: unknown;
  main?: unknown;
  bin?: unknown;
  nodeos?: { main?: unknown; network?: unknown; root?: unknown };
}

export interface AppSettings {
  name: string;
  version: string;
  main: string;
  network: boolean;
  root: boolean;
}

const NAME = /^(?:@[a-z0-9][a-z0-9._-]*\/)?([a-z0-9][a-z0-9._-]*)$/;

/** The app's name on the board: the package name without its scope. */
export function appName(pkgName: unknown, where: string): string {
  const m = typeof pkgName === 'string' ? NAME.exec(pkgName) : null;
  if (!m) throw new BspError('EAPP', `${where}/package.json: "name" must be an npm package name (lowercase letters, digits, . _ -), not ${JSON.stringify(pkgName)}`);
  return m[1]!;
}

function binOf(bin: unknown, name: string): unknown {
  if (bin === undefined || typeof bin === 'string') return bin;
  if (bin && typeof bin === 'object') {
    const entries = Object.entries(bin as Record<string, unknown>);
    return entries.length === 1 ? entries[0]![1] : (bin as Record<string, unknown>)[name];
  }
  return undefined;
}

/** How an app runs, from its package.json (validated; `where` names it in errors). */
export function appSettings(pkg: AppPackageJson, where: string): AppSettings {
  const name = appName(pkg.name, where);
  const n = pkg.nodeos ?? {};
  if (typeof n !== 'object' || Array.isArray(n)) throw new BspError('EAPP', `${where}/package.json: "nodeos" must be an object like { "main": "server.js", "network": true }`);
  for (const k of Object.keys(n)) if (!['main', 'network', 'root'].includes(k)) throw new BspError('EAPP', `${where}/package.json: unknown "nodeos.${k}" (known: main, network, root)`);
  for (const k of ['network', 'root'] as const) if (n[k] !== undefined && typeof n[k] !== 'boolean') throw new BspError('EAPP', `${where}/package.json: "nodeos.${k}" must be true or false`);
  const main = n.main ?? binOf(pkg.bin, name) ?? pkg.main ?? 'index.js';
  if (typeof main !== 'string' || !main || posix.isAbsolute(main) || posix.normalize(main).startsWith('..')) throw new BspError('EAPP', `${where}/package.json: the app's main file must be a path inside the app, not ${JSON.stringify(main)}`);
  return { name, version: typeof pkg.version === 'string' ? pkg.version : '0.0.0', main: posix.normalize(main), network: n.network === true, root: n.root === true };
}
