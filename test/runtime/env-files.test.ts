/**
 * The board's environment files on FAT: a change overwrites uboot.env and uboot.bak where
 * they are. Replacing them (a new file renamed over the old) would put the new environment in
 * new clusters and leave the old ones free but not cleared, with what the old environment held:
 * the Wi-Fi PSK init moves off the card. That the card then holds no PSK at all is checked on
 * the emulated board (wifi.e2e: the card as the board left it, after the first boot).
 */
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EnvError } from '../../src/errors.js';
import { createImage } from '../../src/uboot-env/index.js';
import { envFiles, readEnvFiles, updateEnvFiles } from '../../src/runtime/env-files.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe("the board's environment files", () => {
  after(cleanupTemp);

  it('a change overwrites uboot.env and uboot.bak in place (the same inodes), the copy first', () => {
    const dir = tempDir();
    const env = createImage('a=1\nsecret=x\n', { size: 0x4000, pad: 0 });
    for (const f of ['uboot.env', 'uboot.bak']) writeFileSync(join(dir, f), env);
    const before = ['uboot.env', 'uboot.bak'].map((f) => statSync(join(dir, f)).ino);
    updateEnvFiles(envFiles(dir), (v) => (v.delete('secret'), v));
    assert.deepEqual(['uboot.env', 'uboot.bak'].map((f) => statSync(join(dir, f)).ino), before);
    assert.deepEqual([...readEnvFiles(envFiles(dir)).vars], [['a', '1']]);
  });

  it("a 64 KiB environment (the size a sunxi U-Boot build reads, which the layout carries) is read and rewritten at its size", () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'uboot.env'), createImage('a=1\n', { size: 0x10000, pad: 0 }));
    writeFileSync(join(dir, 'uboot.bak'), createImage('a=1\n', { size: 0x10000, pad: 0 }));
    assert.throws(() => readEnvFiles(envFiles(dir)), (e: EnvError) => e.code === 'EENV_SIZE', 'not readable as a 16 KiB environment');
    const files = envFiles(dir, 'uboot.env', 'uboot.bak', 0x10000);
    updateEnvFiles(files, (v) => v.set('b', '2'));
    assert.deepEqual([...readEnvFiles(files).vars], [['a', '1'], ['b', '2']]);
    assert.deepEqual(['uboot.env', 'uboot.bak'].map((f) => statSync(join(dir, f)).size), [0x10000, 0x10000]);
  });
});
