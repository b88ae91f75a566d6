/**
 * The kit's own formats checked with the real tools (needs cpio, dosfstools, mtools,
 * fdisk, bmap-tools; the loop-device copy needs root).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError, buildFat32, buildMbr, createBmap, Fat32Reader, readCpio, readElfDeps, writeCpio, writeSparseImage, type FatFile } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { attachLoop, detachLoop, isRoot, run } from '../helpers/tools.js';

const MiB = 1 << 20;
const START = 8192;
const SECTORS = 124 * 2048;

function sampleFiles(): FatFile[] {
  return [
    { path: 'config.txt', data: Buffer.from('arm_64bit=1\nenable_uart=1\n') },
    { path: 'u-boot.bin', data: Buffer.alloc(700_000, 0x5a) },
    { path: 'bcm2710-rpi-3-b.dtb', data: Buffer.alloc(21_585, 1) },
    { path: 'BOOTCODE.BIN', data: Buffer.alloc(52_456, 2) },
    { path: 'overlays/a-long-overlay-name-for-lfn.dtbo', data: Buffer.from('dtbo') },
    { path: 'overlays/README', data: Buffer.from('readme') },
    { path: 'empty', data: Buffer.alloc(0) },
  ];
}

/** A 128 MiB image: MBR + FAT32 at 4 MiB, like a board image. */
function sampleImage(dir: string, files = sampleFiles(), mtime = 1_700_000_000): { path: string; mapped: [number, number][] } {
  const fat = buildFat32(files, { size: SECTORS * 512, volumeId: 0x1234abcd, mtime, hiddenSectors: START });
  const extents = [{ offset: 0, data: buildMbr([{ start: START, sectors: SECTORS, type: 0x0c, bootable: true }], 0x4e4f4445) }, ...fat.extents.map((e) => ({ offset: e.offset + START * 512, data: e.data }))];
  const path = join(dir, 'disk.img');
  return { path, mapped: writeSparseImage(path, 128 * MiB, extents) };
}

function partition(dir: string, image: string): string {
  const p = join(dir, 'part.img');
  execFileSync('dd', [`if=${image}`, `of=${p}`, 'bs=512', `skip=${START}`, `count=${SECTORS}`, 'status=none']);
  return p;
}

describe('image formats against the real tools', () => {
  after(cleanupTemp);

  it('cpio: the archive lists with cpio -t, with modes, device nodes and symlinks', () => {
    const a = writeCpio(
      [
        { path: 'bin/node', type: 'file', data: Buffer.from('ELF'), mode: 0o755 },
        { path: 'lib', type: 'symlink', target: 'usr/lib' },
        { path: 'dev/console', type: 'char', major: 5, minor: 1 },
        { path: 'init', type: 'file', data: Buffer.from('#!/bin/node\n'), mode: 0o755 },
      ],
      1_700_000_000,
    );
    const list = run('cpio', ['-itv', '--quiet'], a).toString();
    assert.match(list, /^-rwxr-xr-x .* 3 Nov 14\s+2023 bin\/node$/m);
    assert.match(list, /^lrwxrwxrwx .* lib -> usr\/lib$/m);
    assert.match(list, /^crw------- .* 5,\s+1 .* dev\/console$/m);
    assert.match(list, /^drwxr-xr-x .* bin$/m, 'parent directories are added');
    assert.deepEqual(run('cpio', ['-it', '--quiet'], a).toString().trim().split('\n'), ['bin', 'bin/node', 'dev', 'dev/console', 'init', 'lib']);
    assert.equal(a.length % 4, 0);
  });

  it('cpio: readCpio reads what GNU cpio -o -H newc writes, and refuses a cut or damaged archive', () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    execFileSync('mkdir', ['-p', join(src, 'lib/deep')]);
    writeFileSync(join(src, 'main.js'), 'console.log(1)\n', { mode: 0o755 });
    writeFileSync(join(src, 'lib/deep/a b.txt'), Buffer.alloc(1001, 7));
    writeFileSync(join(src, 'empty'), '');
    writeFileSync(join(src, '.hidden'), 'h');
    execFileSync('ln', ['-s', 'lib/deep', join(src, 'link')]);
    const a = execFileSync('sh', ['-c', 'find . | LC_ALL=C sort | cpio -o -H newc --quiet'], { cwd: src });
    const m = readCpio(a);
    const by = new Map(m.map((e) => [e.path, e]));
    assert.deepEqual([...by.keys()].sort(), ['.hidden', 'empty', 'lib', 'lib/deep', 'lib/deep/a b.txt', 'link', 'main.js']);
    assert.deepEqual(by.get('main.js'), { path: 'main.js', type: 'file', data: Buffer.from('console.log(1)\n'), mode: 0o755 });
    assert.deepEqual((by.get('lib/deep/a b.txt') as { data: Buffer }).data, Buffer.alloc(1001, 7));
    assert.deepEqual(by.get('link'), { path: 'link', type: 'symlink', target: 'lib/deep' });
    assert.equal(by.get('lib')?.type, 'dir');
    // Ours reads back too, and a cut anywhere (or a bad magic) is an error, not fewer files.
    const ours = writeCpio([{ path: 'x/y', type: 'file', data: Buffer.from('hello'), mode: 0o600 }], 0);
    assert.deepEqual(readCpio(ours).map((e) => e.path), ['x', 'x/y']);
    for (const cut of [5, 110, 120, ours.length - 20]) assert.throws(() => readCpio(ours.subarray(0, cut)), /not a whole newc cpio archive/);
    const bad = Buffer.from(ours);
    bad.write('0707', 0, 'latin1');
    bad.write('99', 4, 'latin1');
    assert.throws(() => readCpio(bad), /bad magic/);
    assert.throws(() => readCpio(writeCpio([{ path: 'dev/null', type: 'char', major: 1, minor: 3 }], 0)), /neither a file/);
  });

  it('FAT32: fsck.fat -n finds nothing, mdir lists every long name, our reader reads it back', () => {
    const dir = tempDir();
    const { path } = sampleImage(dir);
    const part = partition(dir, path);
    run('fsck.fat', ['-n', part]);
    const root = run('mdir', ['-i', part, '::'], undefined).toString();
    // 8.3 names are listed as such (mdir shows them in their stored case), long ones with their long name.
    for (const n of ['config   txt', 'u-boot   bin', 'overlays     <DIR>']) assert.match(root, new RegExp(`^${n}`, 'm'), n);
    for (const n of ['bcm2710-rpi-3-b.dtb']) assert.match(root, new RegExp(`\\s${n.replace(/\./g, '\\.')}$`, 'm'), n);
    assert.match(root, /^BOOTCODE BIN\s+52456 2023-11-14/m);
    assert.match(run('mdir', ['-i', part, '::overlays']).toString(), /a-long-overlay-name-for-lfn\.dtbo/);
    assert.deepEqual(execFileSync('mtype', ['-i', part, '::config.txt']), Buffer.from('arm_64bit=1\nenable_uart=1\n'));
    const r = new Fat32Reader(path, START * 512);
    for (const f of sampleFiles()) assert.deepEqual(r.readFile(f.path), f.data, f.path);
    assert.equal(r.stat('nope'), undefined);
    r.close();
  });

  it('FAT32: files that do not fit are EFAT, not a corrupt filesystem', () => {
    assert.throws(
      () => buildFat32([{ path: 'big', data: Buffer.alloc(40 * MiB) }], { size: 36 * MiB, volumeId: 1, mtime: 0, hiddenSectors: 0 }),
      (e: unknown) => e instanceof BspError && e.code === 'EFAT',
    );
    assert.throws(() => buildFat32([], { size: 16 * MiB, volumeId: 1, mtime: 0, hiddenSectors: 0 }), /too small for FAT32/);
  });

  it('the same inputs give the same bytes', () => {
    const a = sampleImage(tempDir());
    const b = sampleImage(tempDir());
    assert.deepEqual(readFileSync(a.path), readFileSync(b.path));
  });

  it('MBR: sfdisk --dump shows the layout; the image is sparse', () => {
    const { path } = sampleImage(tempDir());
    const dump = run('sfdisk', ['--dump', path]).toString();
    assert.match(dump, /^label: dos$/m);
    assert.match(dump, /^label-id: 0x4e4f4445$/m);
    assert.match(dump, /disk\.img1 : start=\s+8192, size=\s+253952, type=c, bootable$/m);
    assert.equal(dump.match(/disk\.img\d :/g)?.length, 1);
    const st = statSync(path);
    assert.equal(st.size, 128 * MiB);
    assert.ok(st.blocks * 512 < 8 * MiB, `sparse: ${st.blocks * 512} bytes allocated`);
  });

  it('bmap: bmaptool copy accepts it and reproduces the image', () => {
    const dir = tempDir();
    const { path, mapped } = sampleImage(dir);
    writeFileSync(`${path}.bmap`, createBmap(path, 128 * MiB, mapped));
    const out = join(dir, 'copy.img');
    run('bmaptool', ['copy', path, out]);
    assert.deepEqual(readFileSync(out), readFileSync(path));
    // A bmap whose checksum does not match is refused by bmaptool.
    writeFileSync(`${path}.bmap`, readFileSync(`${path}.bmap`, 'utf8').replace(/chksum="([0-9a-f])/, (_m, c: string) => `chksum="${c === '0' ? '1' : '0'}`));
    assert.throws(() => run('bmaptool', ['copy', path, join(dir, 'copy2.img')]));
  });

  it('bmap: bmaptool copy onto a loop block device (root)', function () {
    if (!isRoot()) this.skip();
    const dir = tempDir();
    const { path, mapped } = sampleImage(dir);
    writeFileSync(`${path}.bmap`, createBmap(path, 128 * MiB, mapped));
    const target = join(dir, 'card.img');
    writeFileSync(target, Buffer.alloc(0));
    execFileSync('truncate', ['-s', String(256 * MiB), target]);
    const dev = attachLoop(target);
    try {
      run('bmaptool', ['copy', path, dev]);
      assert.deepEqual(readFileSync(dev).subarray(0, 128 * MiB), readFileSync(path));
    } finally {
      detachLoop(dev);
    }
  });

  it('ELF: reads the interpreter and DT_NEEDED of a real binary', () => {
    const d = readElfDeps(readFileSync(process.execPath));
    assert.ok(d.needed.includes('libc.so.6'), d.needed.join(','));
    assert.match(d.interpreter ?? '', /ld-linux/);
  });
});

