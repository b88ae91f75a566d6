/**
 * Apps built into the image (`nodeos-bsp build --app DIR`): an ordinary npm project with its
 * package-lock.json. Its files are the ones `npm pack` would publish (package.json `files`,
 * .npmignore), its production dependencies are installed for the board from the lock
 * (`npm ci --omit=dev`, addons prebuilt or cross-compiled, see npmForTarget), and it lands in
 * the system slot under /usr/lib/nodeos/apps/<name>/, started at boot by init's supervisor.
 * How it runs (main, network, root) comes from its package.json: see src/apps/manifest.ts.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Cache } from '../artifacts/index.js';
import { ArtifactError, BspError } from '../errors.js';
import { npmForTarget, treeEntries } from './target-modules.js';
import { APPS_DIR, type ImageApp } from '../layout/index.js';
import { appSettings, type AppPackageJson } from '../apps/manifest.js';


/** An app ready for the system slot. */
export interface BuiltApp extends ImageApp {
  /** Files relative to the app's directory (its own, then node_modules/...). */
  files: { rel: string; data: Buffer; mode: number }[];
  /** Its installed dependencies, from the lock (for the manifest). */
  packages: { name: string; version: string; integrity?: string }[];
  /** Names everything that went in (build id). */
  hash: string;
}

/** The files npm would publish from `dir` (package.json "files", .npmignore), without running its scripts. */
function packedFiles(dir: string): string[] {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) throw new BspError('EAPP', `${dir}: npm pack --dry-run failed: ${(r.error?.message ?? r.stderr).trim().split('\n').slice(-5).join('\n')}`);
  const out = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  return out[0]!.files.map((f) => f.path).sort();
}

/** The production packages an app's lock installs (none: nothing to build for the target). */
export function lockPackages(lockFile: string): BuiltApp['packages'] {
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages?: Record<string, { version?: string; integrity?: string; dev?: boolean }> };
  return Object.entries(lock.packages ?? {})
    .filter(([k, v]) => k.startsWith('node_modules/') && !v.dev)
    .map(([k, v]) => ({ name: k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length), version: v.version ?? '', ...(v.integrity ? { integrity: v.integrity } : {}) }))
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

/**
 * An app directory's package.json (read and checked: how it runs) and its lock file, refused
 * with EAPP / EAPP_LOCK before anything is built or sent (build --app, deploy).
 */
export function readAppProject(dir: string): { pkg: AppPackageJson; pkgFile: string; settings: ReturnType<typeof appSettings>; lockFile: string } {
  const pkgFile = join(dir, 'package.json');
  if (!existsSync(pkgFile)) throw new BspError('EAPP', `${dir} has no package.json: an app is an npm project (npm init, then npm install its dependencies)`);
  let pkg: AppPackageJson;
  try {
    pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as AppPackageJson;
  } catch (err) {
    throw new BspError('EAPP', `${pkgFile}: ${(err as Error).message}`);
  }
  const settings = appSettings(pkg, dir);
  const lockFile = join(dir, 'package-lock.json');
  if (!existsSync(lockFile)) throw new BspError('EAPP_LOCK', `${dir} has no package-lock.json: run npm install there (the board gets exactly what the lock says)`);
  return { pkg, pkgFile, settings, lockFile };
}

/** Build one app for the target (dependencies cached by lock, Node version and arch). */
export function buildApp(appDir: string, nodePkg: string, nodeVersion: string, arch: string, cache: Cache, offline: boolean): BuiltApp {
  const dir = resolve(appDir);
  const { pkg, pkgFile, settings, lockFile } = readAppProject(dir);
  const files = packedFiles(dir);
  if (!files.includes(settings.main)) throw new BspError('EAPP', `${dir}: the app's main file ${settings.main} is not among the files npm would publish (check "main", "nodeos.main" and "files" in package.json)`);
  const own = files.map((rel) => ({ rel, data: readFileSync(join(dir, rel)), mode: statSync(join(dir, rel)).mode & 0o777 }));

  const lock = readFileSync(lockFile);
  const packages = lockPackages(lockFile);
  let deps: BuiltApp['files'] = [];
  if (packages.length) {
    const key = createHash('sha256').update(JSON.stringify({ v: 2, lock: createHash('sha256').update(lock).digest('hex'), pkg: createHash('sha256').update(readFileSync(pkgFile)).digest('hex'), nodeVersion, arch })).digest('hex').slice(0, 24);
    const dest = cache.namedPath('derived', `app-${settings.name}-${key}`);
    if (offline && !existsSync(dest)) throw new ArtifactError('EOFFLINE', `offline and the dependencies of app ${settings.name} are not built yet: build once without --offline`, `app-${settings.name}`);
    cache.tree(dest, `app-${settings.name}`, (tmp) => {
      // Without the app's own scripts: its prepare (a compiler, say) has no sources here.
      const { scripts: _scripts, ...manifest } = pkg as AppPackageJson & { scripts?: unknown };
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
