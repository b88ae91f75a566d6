/**
 * Integration with the real tools (needs u-boot-tools and libubootenv-tool; the loop-device
 * test needs root): our bytes against mkenvimage, fw_printenv reading what we write, and
 * us reading what fw_setenv writes, on files and on a block device at an offset.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createImage,
  encodeEnv,
  EnvError,
  fileConfig,
  fromText,
  parseFwEnvConfig,
  readEnv,
  readRaw,
  updateEnv,
} from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { attachLoop, detachLoop, isRoot, run } from '../helpers/tools.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const SAMPLE = [
  '# NodeOS boot environment',
  'arch=arm',
  'bootcmd=fatload mmc 0:1 ${kernel_addr_r} Image.gz; fatload mmc 0:1 ${fdt_addr_r} bcm2837-rpi-3-b.dtb; booti ${kernel_addr_r} - ${fdt_addr_r}',
  '',
  'bootargs=console=ttyS1,115200 TERM=dumb',
  'multi=first line\\',
  'second line',
  'empty=',
  'unicode=héllo wörld',
  'bootdelay=2',
  '',
].join('\n');

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/** What fw_printenv prints for a config. */
const fwPrint = (cfg: string, ...names: string[]): string => run('fw_printenv', ['-c', cfg, ...names]).toString();

describe('uboot-env against mkenvimage, fw_printenv, fw_setenv (needs u-boot-tools, libubootenv-tool)', () => {
  after(cleanupTemp);
  let dir: string;
  let input: string;
  beforeEach(() => {
    dir = tempDir();
    input = join(dir, 'env.txt');
    writeFileSync(input, SAMPLE);
  });

  for (const flags of [[], ['-r'], ['-p', '0'], ['-r', '-p', '0x5a'], ['-p', '255']]) {
    for (const size of ['0x4000', '0x2000', '8192']) {
      it(`env create ${flags.join(' ')} -s ${size} equals mkenvimage byte for byte`, async () => {
        run('mkenvimage', ['-s', size, ...flags, '-o', join(dir, 'ref.bin'), input]);
        const r = await runCli('env', 'create', '-s', size, ...flags, '-o', join(dir, 'ours.bin'), input);
        assert.equal(r.code, 0, r.err);
        assert.deepEqual(readFileSync(join(dir, 'ours.bin')), readFileSync(join(dir, 'ref.bin')));
      });
    }
  }

  it('env create matches mkenvimage on awkward input: no final newline, comments after continuations', () => {
    for (const text of ['a=1', 'a=1\\\n#b=2\nc=3\n', '\n\n#x\ny=\\\n\nz=1\n']) {
      writeFileSync(input, text);
      run('mkenvimage', ['-s', '0x400', '-o', join(dir, 'ref.bin'), input]);
      assert.deepEqual(createImage(Buffer.from(text), { size: 0x400 }), readFileSync(join(dir, 'ref.bin')), JSON.stringify(text));
    }
  });

  it('env create refuses input that does not fit, as mkenvimage does, and writes nothing', async () => {
    const big = `x=${'y'.repeat(0x4000)}\n`;
    writeFileSync(input, big);
    assert.throws(() => run('mkenvimage', ['-s', '0x4000', '-o', join(dir, 'ref.bin'), input]));
    const out = join(dir, 'ours.bin');
    const r = await runCli('env', 'create', '-s', '0x4000', '-o', out, input);
    assert.equal(r.code, 1);
    assert.match(r.err, /\[EENV_FULL\]/);
    assert.throws(() => statSync(out));
  });

  it('fw_printenv reads what we write; env print prints what fw_printenv prints (single file)', async () => {
    const env = join(dir, 'uboot.env');
    writeFileSync(env, encodeEnv([...fromText(SAMPLE)], { size: 0x4000 }));
    const cfg = join(dir, 'fw_env.config');
    writeFileSync(cfg, `${env} 0x0 0x4000\n`);
    const ours = await runCli('env', 'print', '--file', env);
    assert.equal(ours.out, fwPrint(cfg));
    assert.match(ours.out, /^multi=first line\nsecond line$/m);
    assert.equal((await runCli('env', 'print', '-c', cfg, 'bootdelay', 'arch')).out, fwPrint(cfg, 'bootdelay', 'arch'));
    assert.equal((await runCli('env', 'print', '-c', cfg, '-n', 'bootargs')).out, run('fw_printenv', ['-c', cfg, '-n', 'bootargs']).toString());
  });

  it('we read what fw_setenv writes, and fw_printenv reads our env set (single file, alternating)', async () => {
    const env = join(dir, 'uboot.env');
    run('mkenvimage', ['-s', '0x4000', '-o', env, input]);
    const cfg = join(dir, 'fw_env.config');
    writeFileSync(cfg, `${env} 0x0 0x4000\n`);
    run('fw_setenv', ['-c', cfg, 'fromfw', 'value one']);
    run('fw_setenv', ['-c', cfg, 'bootdelay']);
    let vars = readEnv(fileConfig(env)).vars;
    assert.equal(vars.get('fromfw'), 'value one');
    assert.equal(vars.has('bootdelay'), false);
    const r = await runCli('env', 'set', '--file', env, 'fromus=a=b c', 'fromfw=', 'arch=arm64');
    assert.equal(r.code, 0, r.err);
    const printed = fwPrint(cfg);
    assert.match(printed, /^fromus=a=b c$/m);
    assert.match(printed, /^arch=arm64$/m);
    assert.doesNotMatch(printed, /^fromfw=/m);
    assert.equal((await runCli('env', 'print', '--file', env)).out, printed);
    vars = readEnv(fileConfig(env)).vars;
    assert.deepEqual([...vars.keys()], [...vars.keys()].sort(), 'written sorted, like saveenv and fw_setenv');
  });

  it('redundant pair in one file: both tools agree on the current copy through many writes and a flags wrap', async () => {
    const env = join(dir, 'uboot.env');
    const copy = createImage(SAMPLE, { size: 0x4000, redundant: true, pad: 0 });
    const copy1 = Buffer.from(copy);
    copy1[4] = 250;
    writeFileSync(env, Buffer.concat([copy, copy1]));
    const cfg = join(dir, 'fw_env.config');
    writeFileSync(cfg, `${env} 0x0 0x4000\n${env} 0x4000 0x4000\n`);
    for (let i = 0; i < 8; i++) {
      const name = `round${i}`;
      if (i % 2 === 0) run('fw_setenv', ['-c', cfg, name, String(i)]);
      else assert.equal((await runCli('env', 'set', '--file', env, '-r', `${name}=${i}`)).code, 0);
      const ours = readEnv(fileConfig(env, 0x4000, true));
      assert.equal(ours.vars.get(name), String(i), `after write ${i}`);
      assert.equal((await runCli('env', 'print', '-c', cfg)).out, fwPrint(cfg), `print after write ${i}`);
    }
    const final = readEnv(fileConfig(env, 0x4000, true));
    assert.ok(final.flags !== undefined && final.flags < 250, `flags wrapped past 255 (now ${final.flags})`);
  });

  it('a redundant write cut short leaves the previous values readable (by us and by fw_printenv)', () => {
    const env = join(dir, 'uboot.env');
    const a = createImage('v=old\n', { size: 0x4000, redundant: true });
    const b = Buffer.from(a);
    b[4] = 2; // copy 1 is current
    writeFileSync(env, Buffer.concat([a, b]));
    const cfg = fileConfig(env, 0x4000, true);
    const before = readEnv(cfg);
    assert.equal(before.copy, 1);
    // Simulate a power cut: the new block for copy 0 (flags 3) gets only its first half written.
    const next = encodeEnv([['v', 'new']], { size: 0x4000, redundant: true, flags: 3, pad: 0 });
    const disk = readFileSync(env);
    next.copy(disk, 0, 0, 0x2000);
    writeFileSync(env, disk);
    const after = readEnv(cfg);
    assert.equal(after.vars.get('v'), 'old');
    assert.equal(after.copy, 1);
    const fwcfg = join(dir, 'fw_env.config');
    writeFileSync(fwcfg, `${env} 0x0 0x4000\n${env} 0x4000 0x4000\n`);
    assert.equal(fwPrint(fwcfg, 'v'), 'v=old\n');
    // The next complete write recovers by writing the inactive (broken) copy.
    updateEnv(cfg, [['v', 'newer']]);
    assert.equal(readEnv(cfg).vars.get('v'), 'newer');
    assert.equal(readEnv(cfg).copy, 0);
  });

  it('corrupt env: print fails with EENV_CRC, set changes nothing; an explicit default is used only when asked', async () => {
    const env = join(dir, 'uboot.env');
    writeFileSync(env, createImage(SAMPLE, { size: 0x4000 }));
    const disk = readFileSync(env);
    disk[100]! ^= 0x20;
    writeFileSync(env, disk);
    const hash = sha(env);
    const p = await runCli('env', 'print', '--file', env);
    assert.equal(p.code, 1);
    assert.match(p.err, /bad CRC.*\[EENV_CRC\]/);
    assert.equal(p.out, '');
    const s = await runCli('env', 'set', '--file', env, 'a=1');
    assert.match(s.err, /\[EENV_CRC\]/);
    assert.equal(sha(env), hash, 'nothing written');
    const defaults = join(dir, 'defaults.txt');
    writeFileSync(defaults, 'bootdelay=5\n');
    const d = await runCli('env', 'print', '--file', env, '--default', defaults);
    assert.equal(d.out, 'bootdelay=5\n');
    assert.match(d.err, /using the given default/);
  });

  it('a set that would not fit writes nothing (EENV_FULL); a wrong size is EENV_SIZE', async () => {
    const env = join(dir, 'uboot.env');
    writeFileSync(env, createImage(SAMPLE, { size: 0x1000 }));
    const hash = sha(env);
    const r = await runCli('env', 'set', '--file', env, '--size', '0x1000', `big=${'x'.repeat(0x1000)}`);
    assert.match(r.err, /\[EENV_FULL\]/);
    assert.equal(sha(env), hash);
    const w = await runCli('env', 'print', '--file', env);
    assert.match(w.err, /4096 bytes .* pass the right --size.*\[EENV_SIZE\]/);
  });

  it('a file is replaced atomically: new inode, no temporary file left behind', () => {
    const env = join(dir, 'uboot.env');
    writeFileSync(env, createImage(SAMPLE, { size: 0x4000 }));
    const ino = statSync(env).ino;
    updateEnv(fileConfig(env), [['x', '1']]);
    assert.notEqual(statSync(env).ino, ino);
    assert.deepEqual(readdirSync(dir).sort(), ['env.txt', 'uboot.env']);
  });

  it('env at an offset on a loop block device (root): both directions, both copies, negative offsets', async function () {
    if (!isRoot()) this.skip();
    const img = join(dir, 'disk.img');
    writeFileSync(img, Buffer.alloc(8 << 20, 0xe5));
    const dev = attachLoop(img);
    try {
      const cfg = join(dir, 'fw_env.config');
      writeFileSync(cfg, `${dev} 0x100000 0x4000\n${dev} 0x104000 0x4000\n`);
      const config = parseFwEnvConfig(readFileSync(cfg, 'utf8'));
      // Start from an image the real tool made, written into both slots.
      const first = createImage(SAMPLE, { size: 0x4000, redundant: true, pad: 0 });
      const disk = readFileSync(img);
      first.copy(disk, 0x100000);
      first.copy(disk, 0x104000);
      writeFileSync(dev, disk.subarray(0, 0x108000));
      assert.equal(fwPrint(cfg, 'bootdelay'), 'bootdelay=2\n');
      assert.equal((await runCli('env', 'set', '-c', cfg, 'bootdelay=0', 'ours=1')).code, 0);
      assert.equal(fwPrint(cfg, 'bootdelay', 'ours'), 'bootdelay=0\nours=1\n');
      run('fw_setenv', ['-c', cfg, 'theirs', '2']);
      const r = readEnv(config);
      assert.equal(r.vars.get('theirs'), '2');
      assert.equal(r.vars.get('ours'), '1');
      assert.equal((await runCli('env', 'print', '-c', cfg)).out, fwPrint(cfg));
      // The same copies, addressed from the end of the 8 MiB device.
      const neg = parseFwEnvConfig(`${dev} -0x700000 0x4000\n${dev} -0x6fc000 0x4000\n`);
      assert.deepEqual(readEnv(neg).vars, r.vars);
      assert.deepEqual(readRaw(neg.copies[0]), readRaw(config.copies[0]));
      // Bytes outside the two copies are untouched.
      const after = readFileSync(img);
      assert.ok(after.subarray(0, 0x100000).every((b) => b === 0xe5));
      assert.ok(after.subarray(0x108000).every((b) => b === 0xe5));
    } finally {
      detachLoop(dev);
    }
  });

  it('an env region beyond the end of the device is EENV_SIZE, not a read of garbage', () => {
    const img = join(dir, 'small.img');
    writeFileSync(img, Buffer.alloc(0x5000));
    assert.throws(() => readEnv(parseFwEnvConfig(`${img} 0x2000 0x4000`)), (e: unknown) => e instanceof EnvError && e.code === 'EENV_SIZE');
  });
});
