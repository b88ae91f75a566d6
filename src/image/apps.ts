/**
 * Apps built into the image (`nodeos-bsp build --app DIR`): an ordinary npm project with its
 * package-lock.json. Its files are the ones `npm pack` would publish (package.json `files`,
 * .npmignore), its production dependencies are installed for the board from the lock
 * (`npm ci --omit=dev`, addons prebuilt or cross-compiled, see npmForTarget), and it lands in
 * the system slot under /usr/lib/nodeos/apps/<name>/, started at boot by init's supervisor.
 *
 * package.json may say how it runs, in a "nodeos" field:
 *   { "nodeos": { "main": "server.js", "network": true, "root": false } }
 * main defaults to package.json's "main", else index.js; network (start once the board has an
 * address) defaults to false; root (run as root instead of the app user) to false.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import type { Cache } from '../artifacts/index.js';
import { ArtifactError, BspError } from '../errors.js';
import { npmForTarget, treeEntries } from './target-modules.js';
import { APPS_DIR, type ImageApp } from '../layout/index.js';


/** An app ready for the system slot. */
export interface BuiltApp extends ImageApp {
  /** Files relative to the app's directory (its own, then node_modules/...). */
  files: { rel: string; data: Buffer; mode: number }[];
  /** Its installed dependencies, from the lock (for the manifest). */
  packages: { name: string; version: string; integrity?: string }[];
  /** Names everything that went in (build id). */
  hash: string;
}

interface PackageJson {
  name?: unknown;
  version?: unknown;
  main?: unknown;
  nodeos?: { main?: unknown; network?: unknown; root?: unknown };
}

const NAME = /^(?:@[a-z0-9][a-z0-9._-]*\/)?([a-z0-9][a-z0-9._-]*)$/;

/** The app's name on the board: the package name without its scope. */
export function appName(pkgName: unknown, dir: string): string {
  const m = typeof pkgName === 'string' ? NAME.exec(pkgName) : null;
  if (!m) throw new BspError('EAPP', `${dir}/package.json: "name" must be an npm package name (lowercase letters, digits, . _ -), not ${JSON.stringify(pkgName)}`);
  return m[1]!;
}

/** How an app runs, from its package.json (validated). */
export function appSettings(pkg: PackageJson, dir: string): Pick<ImageApp, 'name' | 'version' | 'main' | 'network' | 'root'> {
  const name = appName(pkg.name, dir);
  const n = pkg.nodeos ?? {};
  if (typeof n !== 'object' || Array.isArray(n)) throw new BspError('EAPP', `${dir}/package.json: "nodeos" must be an object like { "main": "server.js", "network": true }`);
  for (const k of Object.keys(n)) if (!['main', 'network', 'root'].includes(k)) throw new BspError('EAPP', `${dir}/package.json: unknown "nodeos.${k}" (known: main, network, root)`);
  for (const k of ['network', 'root'] as const) if (n[k] !== undefined && typeof n[k] !== 'boolean') throw new BspError('EAPP', `${dir}/package.json: "nodeos.${k}" must be true or false`);
  const main = n.main ?? pkg.main ?? 'index.js';
  if (typeof main !== 'string' || !main || posix.isAbsolute(main) || posix.normalize(main).startsWith('..')) throw new BspError('EAPP', `${dir}/package.json: the app's main file must be a path inside the app, not ${JSON.stringify(main)}`);
  return { name, version: typeof pkg.version === 'string' ? pkg.version : '0.0.0', main: posix.normalize(main), network: n.network === true, root: n.root === true };
}

/** The files npm would publish from `dir` (package.json "files", .npmignore), without running its scripts. */
function packedFiles(dir: string): string[] {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) throw new BspError('EAPP', `${dir}: npm pack --dry-run failed: ${(r.error?.message ?? r.stderr).trim().split('\n').slice(-5).join('\n')}`);
  const out = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  return out[0]!.files.map((f) => f.path).sort();
}

function lockPackages(lockFile: string): BuiltApp['packages'] {
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages?: Record<string, { version?: string; integrity?: string; dev?: boolean }> };
  return Object.entries(lock.packages ?? {})
    .filter(([k, v]) => k.startsWith('node_modules/') && !v.dev)
    .map(([k, v]) => ({ name: k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length), version: v.version ?? '', ...(v.integrity ? { integrity: v.integrity } : {}) }))
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

/** Build one app for the target (dependencies cached by lock, Node version and arch). */
export function buildApp(appDir: string, nodePkg: string, nodeVersion: string, arch: string, cache: Cache, offline: boolean): BuiltApp {
  const dir = resolve(appDir);
  const pkgFile = join(dir, 'package.json');
  if (!existsSync(pkgFile)) throw new BspError('EAPP', `${dir} has no package.json: an app is an npm project (npm init, then npm install its dependencies)`);
  let pkg: PackageJson;
  try {
    pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as PackageJson;
  } catch (err) {
    throw new BspError('EAPP', `${pkgFile}: ${(err as Error).message}`);
  }
  const settings = appSettings(pkg, dir);
  const lockFile = join(dir, 'package-lock.json');
  if (!existsSync(lockFile)) throw new BspError('EAPP_LOCK', `${dir} has no package-lock.json: run npm install there (the image installs exactly what the lock says)`);
  const files = packedFiles(dir);
  if (!files.includes(settings.main)) throw new BspError('EAPP', `${dir}: the app's main file ${settings.main} is not among the files npm would publish (check "main", "nodeos.main" and "files" in package.json)`);
  const own = files.map((rel) => ({ rel, data: readFileSync(join(dir, rel)), mode: statSync(join(dir, rel)).mode & 0o777 }));

  const lock = readFileSync(lockFile);
  const packages = lockPackages(lockFile);
  let deps: BuiltApp['files'] = [];
  if (packages.length) {
    const key = createHash('sha256').update(JSON.stringify({ v: 1, lock: createHash('sha256').update(lock).digest('hex'), pkg: createHash('sha256').update(readFileSync(pkgFile)).digest('hex'), nodeVersion, arch })).digest('hex').slice(0, 24);
    const dest = cache.namedPath('derived', `app-${settings.name}-${key}`);
    if (offline && !existsSync(dest)) throw new ArtifactError('EOFFLINE', `offline and the dependencies of app ${settings.name} are not built yet: build once without --offline`, `app-${settings.name}`);
    cache.tree(dest, `app-${settings.name}`, (tmp) => {
      // Without the app's own scripts: its prepare (a compiler, say) has no sources here.
      const { scripts: _scripts, ...manifest } = pkg as PackageJson & { scripts?: unknown };
      writeFileSync(join(tmp, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
      copyFileSync(lockFile, join(tmp, 'package-lock.json'));
      npmForTarget(tmp, ['ci', '--omit=dev'], nodePkg, arch, `app ${settings.name}`, offline);
    });
    deps = treeEntries(join(dest, 'node_modules')).map((f) => ({ rel: `node_modules/${f.rel}`, data: f.data!, mode: f.mode }));
  }
  const all = [...own, ...deps];
  const h = createHash('sha256');
  for (const f of all) h.update(JSON.stringify([f.rel, f.mode])).update(createHash('sha256').update(f.data).digest());
  return { ...settings, dir: `${APPS_DIR}/${settings.name}`, files: all, packages, hash: h.digest('hex') };
}
