/**
 * Environments are bytes (needs u-boot-tools and libubootenv-tool): values that are not
 * UTF-8 survive a change to another variable exactly as with fw_setenv, odd stored entries
 * read as fw_printenv reads them, an empty environment is what mkenvimage writes, both
 * fw_setenv script forms are read, and names U-Boot could not handle are refused.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToText, crc32, EnvError, fileConfig, parseScript, readEnv, textToBytes, updateEnv } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { run } from '../helpers/tools.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const SIZE = 0x4000;

/** A single environment block holding exactly these data bytes. */
function envFile(path: string, data: Buffer): void {
  const body = Buffer.alloc(SIZE - 4, 0);
  data.copy(body);
  const out = Buffer.alloc(SIZE);
  out.writeUInt32LE(crc32(body), 0);
  body.copy(out, 4);
  writeFileSync(path, out);
}

const ODD = Buffer.concat([Buffer.from('a=1\0noequals\0=empty\0b='), Buffer.from([0xff, 0xfe, 0x32, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('\0u=h\u00e9llo \u{1f600}\0\0')]);

describe('uboot-env keeps bytes (fw_printenv / fw_setenv / mkenvimage)', () => {
  after(cleanupTemp);

  it('bytes <-> text is lossless for any bytes, and plain UTF-8 for UTF-8', () => {
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(Array.from({ length: 1 + (i % 40) }, (_, k) => (i * 131 + k * 71 + ((i * k) % 7)) & 0xff));
      assert.deepEqual(textToBytes(bytesToText(b)), b);
    }
    assert.equal(bytesToText(Buffer.from('h\u00e9llo \u{1f600}')), 'h\u00e9llo \u{1f600}');
  });

  it('env print prints what fw_printenv prints for odd entries and non-UTF-8 values, byte for byte', () => {
    const dir = tempDir();
    const file = join(dir, 'uboot.env');
    envFile(file, ODD);
    writeFileSync(join(dir, 'fw_env.config'), `${file} 0x0 0x4000\n`);
    const theirs = run('fw_printenv', ['-c', join(dir, 'fw_env.config')]);
    const ours = run(process.execPath, ['--import=tsx', 'src/cli/main.ts', 'env', 'print', '--file', file]);
    assert.deepEqual(ours, theirs);
    const r = readEnv(fileConfig(file, SIZE, false));
    assert.deepEqual(r.skipped, ['noequals']);
  });

  it('env set of one variable leaves the other variables\' bytes as fw_setenv does', async () => {
    const dir = tempDir();
    const ours = join(dir, 'ours.env');
    const theirs = join(dir, 'theirs.env');
    envFile(ours, ODD);
    copyFileSync(ours, theirs);
    writeFileSync(join(dir, 'fw_env.config'), `${theirs} 0x0 0x4000\n`);
    run('fw_setenv', ['-c', join(dir, 'fw_env.config'), 'c', '3']);
    const r = await runCli('env', 'set', '--file', ours, 'c=3');
    assert.equal(r.code, 0, r.err);
    // The variables' bytes are identical (libubootenv leaves old bytes after the terminator; we zero them).
    const data = (p: string): Buffer => {
      const b = readFileSync(p);
      return b.subarray(4, b.indexOf(Buffer.from([0, 0]), 4) + 2);
    };
    assert.deepEqual(data(ours), data(theirs));
    assert.match(data(ours).toString('latin1'), /b=\xff\xfe2\xc3\(\xed\xa0\x80\0c=3\0/);
  });

  it('an empty environment is one NUL, as mkenvimage writes it', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'empty.txt'), '');
    run('mkenvimage', ['-s', '0x4000', '-o', join(dir, 'ref.bin'), join(dir, 'empty.txt')]);
    const r = await runCli('env', 'create', '-s', '0x4000', '-o', join(dir, 'ours.bin'), join(dir, 'empty.txt'));
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(readFileSync(join(dir, 'ours.bin')), readFileSync(join(dir, 'ref.bin')));
    assert.equal(readEnv(fileConfig(join(dir, 'ours.bin'), SIZE, false)).vars.size, 0);
  });

  it('env set -s reads "name value" (U-Boot) and "name=value" (libubootenv) lines', () => {
    assert.deepEqual(parseScript('# c\nbootdelay 3\nbootargs=console=ttyS1 quiet\nfdtfile\nkernel=\nx  a=b c\n'), [
      ['bootdelay', '3'],
      ['bootargs', 'console=ttyS1 quiet'],
      ['fdtfile', undefined],
      ['kernel', undefined],
      ['x', 'a=b c'],
    ]);
    // libubootenv's fw_setenv reads the same name=value script the same way.
    const dir = tempDir();
    const file = join(dir, 'uboot.env');
    envFile(file, Buffer.from('\0'));
    writeFileSync(join(dir, 'fw_env.config'), `${file} 0x0 0x4000\n`);
    writeFileSync(join(dir, 'script'), 'bootargs=console=ttyS1 quiet\n');
    run('fw_setenv', ['-c', join(dir, 'fw_env.config'), '-s', join(dir, 'script')]);
    assert.equal(readEnv(fileConfig(file, SIZE, false)).vars.get('bootargs'), 'console=ttyS1 quiet');
  });

  it('names with a newline, a blank or a control character are refused and nothing is written', async () => {
    const dir = tempDir();
    const file = join(dir, 'uboot.env');
    envFile(file, Buffer.from('a=1\0\0'));
    const before = readFileSync(file);
    for (const bad of ['x\ny', 'x y', 'x\ty', 'x\u0001']) {
      const r = await runCli('env', 'set', '--file', file, `${bad}=1`);
      assert.equal(r.code, 1, bad);
      assert.match(r.err, /EENV_FORMAT/);
      assert.throws(() => updateEnv(fileConfig(file, SIZE, false), [[bad, '1']]), (e: unknown) => e instanceof EnvError && e.code === 'EENV_FORMAT');
    }
    assert.deepEqual(readFileSync(file), before);
  });
});
