/**
 * uboot-env on its own: its import graph holds nothing else of the kit; fw_printenv and
 * fw_setenv behave as Debian's libubootenv-tool on the same files and fw_env.config (output,
 * messages, exit codes, what the other tool then reads); the package packed from this
 * repository installs into an empty project and works there, library and programs.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { createImage, fwEnvTool, openEnv, packageRoot } from '../../src/index.js';
import { packUbootEnv } from '../../src/uboot-env/package.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** Run Debian's tool or ours on a copy of `files` in a fresh directory; returns output, exit code and the files after. */
function side(which: 'debian' | 'ours', program: 'fw_printenv' | 'fw_setenv', args: (dir: string) => string[], files: Record<string, Buffer | string>, stdin = ''): { out: string; err: string; code: number; files: Record<string, Buffer> } {
  const dir = tempDir();
  for (const [f, data] of Object.entries(files)) writeFileSync(join(dir, f), data);
  let out = '';
  let err = '';
  let code: number;
  if (which === 'debian') {
    const r = spawnSync(program, args(dir), { input: stdin, encoding: 'utf8' });
    [out, err, code] = [r.stdout, r.stderr, r.status ?? -1];
  } else {
    code = fwEnvTool(program, args(dir), { out: (t) => void (out += t), err: (t) => void (err += t), read: (p) => (p === '-' ? Buffer.from(stdin) : readFileSync(p)) });
  }
  return { out, err, code, files: Object.fromEntries(Object.keys(files).map((f) => [f, readFileSync(join(dir, f))])) };
}

const ENV = (text: string, redundant = false): Buffer => createImage(text, { size: 0x4000, redundant, pad: 0xff });

describe('uboot-env as a package of its own', function () {
  this.timeout(120_000);
  after(cleanupTemp);

  it('imports nothing of the kit but errors and atomic-file, and no package but Node\'s own', async () => {
    for (const entry of ['src/uboot-env/index.ts', 'src/uboot-env/tools.ts']) {
      const r = await build({ entryPoints: [join(packageRoot(), entry)], bundle: true, write: false, platform: 'node', format: 'esm', metafile: true, logLevel: 'silent' });
      const inputs = Object.keys(r.metafile.inputs).map((p) => relative(packageRoot(), join(process.cwd(), p)));
      assert.deepEqual(inputs.filter((p) => !/^src\/uboot-env\/[a-z0-9-]+\.ts$/.test(p) && p !== 'src/errors.ts' && p !== 'src/atomic-file.ts'), [], entry);
      assert.ok(!inputs.includes('src/uboot-env/package.ts'), 'the packer is not part of the library');
      const external = Object.values(r.metafile.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path));
      assert.deepEqual(external.filter((p) => !p.startsWith('node:')), [], entry);
    }
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { exports: Record<string, string> };
    assert.equal(pkg.exports['./uboot-env'], './dist/src/uboot-env/index.js');
  });

  it('fw_printenv and fw_setenv give what libubootenv-tool gives, on the same files', () => {
    const conf = (dir: string, redundant = false): string => {
      writeFileSync(join(dir, 'fw_env.config'), `${join(dir, 'env.bin')} 0x0 0x4000\n${redundant ? `${join(dir, 'env.bin')} 0x4000 0x4000\n` : ''}`);
      return join(dir, 'fw_env.config');
    };
    const single = { 'env.bin': ENV('bootcmd=run distro_bootcmd\nb=2\na=1\nempty_ok=x\n') };
    const pair = { 'env.bin': Buffer.concat([ENV('a=1\nslot=A\n', true), Buffer.alloc(0x4000, 0xff)]) };
    const corrupt = { 'env.bin': Buffer.alloc(0x4000, 0x11), 'defaults.txt': '# defaults\nd=4\nnovalue\ne=\nf=6\n' };
    const cases: [string, 'fw_printenv' | 'fw_setenv', (d: string) => string[], Record<string, Buffer | string>, string?][] = [
      ['print all', 'fw_printenv', (d) => ['-c', conf(d)], single],
      ['print names, one missing', 'fw_printenv', (d) => ['-c', conf(d), 'zz', 'a'], single],
      ['-n after the name (options anywhere)', 'fw_printenv', (d) => [`--config=${conf(d)}`, 'a', '-n'], single],
      ['a bad option is said and skipped', 'fw_printenv', (d) => ['-x', '-c', conf(d), 'b'], single],
      ['no config file', 'fw_printenv', (d) => ['-c', join(d, 'missing.config')], single],
      ['corrupt, with defaults', 'fw_printenv', (d) => ['-c', conf(d), '-f', join(d, 'defaults.txt')], corrupt],
      ['corrupt, defaults missing', 'fw_printenv', (d) => ['-c', conf(d), '-f', join(d, 'none.txt')], corrupt],
      ['-V', 'fw_printenv', () => ['-V'], {}],
      ['set pairs, delete, unchanged', 'fw_setenv', (d) => ['-c', conf(d), 'a', '1', 'b', 'two', 'new', 'x y  z', 'empty_ok'], single],
      ['nothing changes: nothing written', 'fw_setenv', (d) => ['-c', conf(d), 'a', '1'], single],
      ['= in a name', 'fw_setenv', (d) => ['-c', conf(d), 'a=b', '1'], single],
      ['a script on stdin', 'fw_setenv', (d) => ['-c', conf(d), '-s', '-'], single, '# comment\n\nk=v\nbare\nb=\nbootcmd=boot\r\n'],
      ['redundant: the other copy, next flags', 'fw_setenv', (d) => ['-c', conf(d, true), 'slot', 'B'], pair],
      ['corrupt, with defaults: stored', 'fw_setenv', (d) => ['-c', conf(d), '-f', join(d, 'defaults.txt'), 'g', '7'], corrupt],
      ['too big for the environment', 'fw_setenv', (d) => ['-c', conf(d), 'big', 'x'.repeat(20_000)], single],
    ];
    for (const [what, program, args, files, stdin] of cases) {
      const d = side('debian', program, args, files, stdin);
      const o = side('ours', program, args, files, stdin);
      assert.equal(o.code, d.code, `${what}: exit code (stderr ${JSON.stringify(d.err)} / ${JSON.stringify(o.err)})`);
      assert.equal(o.out, d.out, `${what}: stdout`);
      assert.equal(o.err, d.err, `${what}: stderr`);
      // What each wrote, read back by libubootenv's own fw_printenv.
      if (program === 'fw_setenv') {
        const after = (f: Record<string, Buffer>): string => side('debian', 'fw_printenv', (dir) => ['-c', conf(dir, files === pair)], f).out;
        assert.equal(after(o.files), after(d.files), `${what}: the environment afterwards`);
        if (what.startsWith('nothing changes')) assert.ok(o.files['env.bin']!.equals(files['env.bin'] as Buffer), 'untouched');
      }
    }
  });

  it('openEnv: a region of an image, redundant; increment counts, and refuses what is not a number (nothing written)', () => {
    const d = tempDir();
    const img = join(d, 'disk.img');
    writeFileSync(img, Buffer.concat([Buffer.alloc(0x10000), ENV('n=x\n', true), Buffer.alloc(0x4000, 0xff), Buffer.alloc(0x1000)]));
    const env = openEnv({ device: img, offset: 0x10000, size: 0x4000, redundant: true });
    assert.equal(env.increment('boot_count'), 1);
    assert.equal(env.increment('boot_count', 4), 5);
    const before = readFileSync(img);
    assert.throws(() => env.increment('n'), { code: 'EENV_FORMAT' });
    assert.ok(readFileSync(img).equals(before));
    writeFileSync(join(d, 'fw_env.config'), `${img} 0x10000 0x4000\n${img} 0x14000 0x4000\n`);
    assert.equal(openEnv({ config: join(d, 'fw_env.config') }).get('boot_count'), '5');
    assert.equal(execFileSync('fw_printenv', ['-c', join(d, 'fw_env.config'), 'boot_count']).toString(), 'boot_count=5\n');
  });

  it('npm pack gives a uboot-env package that installs into an empty project and works there', () => {
    const out = tempDir();
    const tgz = packUbootEnv(out);
    assert.match(tgz, /uboot-env-\d+\.\d+\.\d+\.tgz$/);
    const listed = execFileSync('tar', ['tzf', tgz]).toString().split('\n').filter(Boolean).sort();
    assert.ok(listed.includes('package/lib/uboot-env/index.d.ts') && listed.includes('package/bin/fw_printenv.js') && listed.includes('package/README.md'), listed.join('\n'));
    assert.deepEqual(listed.filter((f) => /runtime|image|boards|cli\//.test(f)), [], 'nothing else of the kit');
    const app = tempDir();
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', tgz], { cwd: app, stdio: 'pipe' });
    mkdirSync(join(app, 'boot'));
    writeFileSync(join(app, 'use.mjs'), `
      import { createImage, openEnv } from 'uboot-env';
      import { writeFileSync } from 'node:fs';
      writeFileSync('boot/uboot.env', createImage('bootdelay=2\\n', { size: 0x4000 }));
      const env = openEnv({ file: 'boot/uboot.env' });
      env.set('slot', 'B');
      env.increment('tries'); env.increment('tries');
      env.delete('bootdelay');
      console.log(JSON.stringify(Object.fromEntries(env.all())));
    `);
    assert.equal(execFileSync('node', ['use.mjs'], { cwd: app }).toString().trim(), JSON.stringify({ slot: 'B', tries: '2' }));
    // Its fw_printenv, installed as a program, reads the file as Debian's does.
    writeFileSync(join(app, 'fw_env.config'), `${join(app, 'boot/uboot.env')} 0 0x4000\n`);
    const ours = execFileSync(join(app, 'node_modules/.bin/fw_printenv'), ['-c', join(app, 'fw_env.config')]).toString();
    assert.equal(ours, execFileSync('fw_printenv', ['-c', join(app, 'fw_env.config')]).toString());
    assert.equal(ours, 'slot=B\ntries=2\n');
    copyFileSync(join(app, 'boot/uboot.env'), join(app, 'copy.env'));
    assert.deepEqual([...openEnv({ file: join(app, 'copy.env') }).all()], [['slot', 'B'], ['tries', '2']]);
  });
});
