import assert from 'node:assert/strict';
import { BspError, Cache, targetModules } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

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

  it('offline and not built yet is EOFFLINE; an unknown arch is refused', () => {
    assert.throws(() => targetModules(tempDir(), '24.0.0', 'arm64', new Cache(tempDir()), true), (e: unknown) => e instanceof BspError && e.code === 'EOFFLINE');
    assert.throws(() => targetModules(tempDir(), '24.0.0', 'riscv64', new Cache(tempDir()), false), (e: unknown) => e instanceof BspError && e.code === 'EBOARD_UNSUPPORTED');
  });
});
