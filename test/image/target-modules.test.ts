import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError, Cache, packageRoot, targetModules, targetPackages } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { addonPackages } from '../../src/image/target-modules.js';

describe('npm modules for the target', () => {
  after(cleanupTemp);

  it('a missing cross compiler is ETOOL naming the Debian package', () => {
    const saved = process.env.PATH;
    process.env.PATH = tempDir();
    try {
      assert.throws(
        () => targetModules(tempDir(), '24.0.0', 'arm64', new Cache(tempDir()), false),
        (e: unknown) => e instanceof BspError && e.code === 'ETOOL' && /apt-get install g\+\+-aarch64-linux-gnu/.test(e.message),
      );
    } finally {
      process.env.PATH = saved;
    }
  });

  it('addons with a linux-arm64 glibc prebuild are taken as shipped; the others are built (npm\'s record of the install)', () => {
    const d = tempDir();
    const pkgs: Record<string, { hasInstallScript?: boolean }> = {
      'node_modules/@serialport/bindings-cpp': { hasInstallScript: true },
      'node_modules/epoll': { hasInstallScript: true },
      'node_modules/musl-only': { hasInstallScript: true },
      'node_modules/plain': {},
      'node_modules/a/node_modules/epoll': { hasInstallScript: true },
      'node_modules/gone': { hasInstallScript: true },
    };
    for (const p of Object.keys(pkgs).filter((p) => !p.endsWith('gone'))) mkdirSync(join(d, p), { recursive: true });
    mkdirSync(join(d, 'node_modules/@serialport/bindings-cpp/prebuilds/linux-arm64'), { recursive: true });
    writeFileSync(join(d, 'node_modules/@serialport/bindings-cpp/prebuilds/linux-arm64/@serialport+bindings-cpp.armv8.glibc.node'), '');
    mkdirSync(join(d, 'node_modules/epoll/prebuilds/linux-x64'), { recursive: true });
    writeFileSync(join(d, 'node_modules/epoll/prebuilds/linux-x64/epoll.node'), '');
    mkdirSync(join(d, 'node_modules/musl-only/prebuilds/linux-arm64'), { recursive: true });
    writeFileSync(join(d, 'node_modules/musl-only/prebuilds/linux-arm64/x.musl.node'), '');
    writeFileSync(join(d, 'node_modules/.package-lock.json'), JSON.stringify({ packages: pkgs }));
    assert.deepEqual(addonPackages(d, 'arm64'), { prebuilt: ['@serialport/bindings-cpp'], build: ['epoll', 'musl-only'] });
    assert.deepEqual(addonPackages(tempDir(), 'arm64'), { prebuilt: [], build: [] });
  });

  it('offline and not built yet is EOFFLINE; an unknown arch is refused', () => {
    assert.throws(() => targetModules(tempDir(), '24.0.0', 'arm64', new Cache(tempDir()), true), (e: unknown) => e instanceof BspError && e.code === 'EOFFLINE');
    assert.throws(() => targetModules(tempDir(), '24.0.0', 'riscv64', new Cache(tempDir()), false), (e: unknown) => e instanceof BspError && e.code === 'EBOARD_UNSUPPORTED');
  });

  it('the kit\'s target modules are pinned whole by target-modules/package-lock.json, with no registry host in it', () => {
    const dir = join(packageRoot(), 'target-modules');
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const text = readFileSync(join(dir, 'package-lock.json'), 'utf8');
    const lock = JSON.parse(text) as { lockfileVersion: number; packages: Record<string, { version?: string; integrity?: string; dependencies?: Record<string, string> }> };
    assert.equal(lock.lockfileVersion, 3);
    // Exact versions in package.json, and the lock says the same ones.
    for (const [name, range] of Object.entries(pkg.dependencies)) {
      assert.match(range, /^\d+\.\d+\.\d+$/, `${name} is pinned exactly`);
      assert.equal(lock.packages[`node_modules/${name}`]?.version, range, name);
    }
    assert.deepEqual(lock.packages['']?.dependencies, pkg.dependencies, 'the lock was made from this package.json (npm install --package-lock-only)');
    // Every package of the tree has its integrity (npm ci checks each tarball against it).
    const unpinned = Object.entries(lock.packages).filter(([k, v]) => k.startsWith('node_modules/') && !v.integrity && !k.includes('/node_modules/npm/') && !/^node_modules\/npm\/node_modules\//.test(k));
    assert.deepEqual(unpinned.map(([k]) => k), []);
    assert.doesNotMatch(text, /"resolved": "https?:/, 'no registry host in the repository');
    assert.deepEqual(targetPackages(), Object.entries(pkg.dependencies).map(([n, v]) => `${n}@${v}`));
  });
});
