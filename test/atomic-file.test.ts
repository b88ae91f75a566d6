/** Replacing files next to environments: no predictable temporary name, never through a planted link. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createImage, fileConfig, readEnv, updateEnv } from '../src/index.js';
import { replaceFileAtomically } from '../src/atomic-file.js';
import { runCli } from './helpers/cli.js';
import { cleanupTemp, tempDir } from './helpers/tmp.js';

describe('atomic file replacement', () => {
  after(cleanupTemp);

  it('links planted at the names the kit used to use redirect nothing (env set, env create)', async () => {
    const dir = tempDir();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep me');
    const env = join(dir, 'uboot.env');
    writeFileSync(env, createImage('bootdelay=0\n', { size: 0x4000 }));
    // The old temporary names: .<name>.tmp-<pid> (env set) and <name>.tmp-<pid> (env create).
    symlinkSync(victim, join(dir, `.uboot.env.tmp-${process.pid}`));
    symlinkSync(victim, join(dir, `new.env.tmp-${process.pid}`));
    updateEnv(fileConfig(env, 0x4000, false), [['bootdelay', '3']]);
    assert.equal(readEnv(fileConfig(env, 0x4000, false)).vars.get('bootdelay'), '3');
    writeFileSync(join(dir, 'in.txt'), 'a=1\n');
    const r = await runCli('env', 'create', '-s', '0x4000', '-o', join(dir, 'new.env'), join(dir, 'in.txt'));
    assert.equal(r.code, 0, r.err);
    assert.equal(readFileSync(victim, 'utf8'), 'keep me');
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left');
  });

  it('the temporary file is created exclusively and is never a symlink', () => {
    const dir = tempDir();
    const target = join(dir, 'f');
    for (let i = 0; i < 20; i++) replaceFileAtomically(target, Buffer.from(String(i)));
    assert.equal(readFileSync(target, 'utf8'), '19');
    assert.deepEqual(readdirSync(dir), ['f']);
  });
});
