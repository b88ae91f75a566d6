/**
 * The flasher's source handling on regular files (needs xz, zstd, gzip; no root): .sha256
 * files next to compressed images, damaged streams ending as ESOURCE (never a crash), a
 * source changed between checking and writing, and customisation refused before writing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { flash, type FlashProgress } from '../../flash/index.js';
import { BspError, createBmap, createImage, writeSparseImage } from '../../src/index.js';
import { cardExtents, smallLayout } from '../helpers/card.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const MiB = 1 << 20;
const SIZE = 48 * MiB;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;

/** A small card image: MBR + FAT32 with uboot.env (4 KiB env, easy to fill) + random data. */
function makeImage(dir: string, name = 'card.img'): { path: string; data: Buffer } {
  const env = createImage('bootargs=console=ttyS1,115200\nbootcmd=boot\n', { size: 0x1000, pad: 0 });
  const path = join(dir, name);
  const ranges = writeSparseImage(path, SIZE, [
    ...cardExtents(smallLayout(1, 40, 0x99), [{ path: 'uboot.env', data: env }, { path: 'uboot.bak', data: env }], { volumeId: 9, mtime: 1_700_000_000 }),
    { offset: 44 * MiB, data: randomBytes(MiB) },
  ]);
  writeFileSync(`${path}.bmap`, createBmap(path, SIZE, ranges));
  return { path, data: readFileSync(path) };
}

/** A target file filled with a pattern, so a write shows. */
function target(dir: string, name = 'target.bin'): string {
  const p = join(dir, name);
  writeFileSync(p, Buffer.alloc(SIZE, 0xa5));
  return p;
}
const untouched = (p: string): boolean => readFileSync(p).equals(Buffer.alloc(SIZE, 0xa5));

describe('flash sources (regular files, no root)', () => {
  after(cleanupTemp);

  for (const [ext, compress] of [
    ['xz', (p: string) => spawnSync('xz', ['-k', '-T1', '-0', p])],
    ['zst', (p: string) => spawnSync('zstd', ['-q', '-k', p, '-o', `${p}.zst`])],
    ['gz', (p: string) => writeFileSync(`${p}.gz`, gzipSync(readFileSync(p), { level: 1 }))],
  ] as const) {
    it(`.${ext}.sha256 (of the compressed file) and .img.sha256 (of the image) are both checked`, async () => {
      const dir = tempDir();
      const img = makeImage(dir);
      compress(img.path);
      const src = `${img.path}.${ext}`;
      const t = target(dir);
      // Right checksum of the compressed file: flashed.
      writeFileSync(`${src}.sha256`, `${sha(readFileSync(src))}  card.img.${ext}\n`);
      const ok = await flash(src, [t], { forceFile: true });
      assert.equal(ok.targets[0]!.ok, true, ok.targets[0]!.error?.message);
      // Wrong one: ECHECKSUM, the target untouched.
      const t2 = target(dir, 't2.bin');
      writeFileSync(`${src}.sha256`, `${'0'.repeat(64)}  card.img.${ext}\n`);
      await assert.rejects(flash(src, [t2], { forceFile: true }), (e: unknown) => code('ECHECKSUM')(e) && /the file/.test((e as Error).message));
      assert.ok(untouched(t2));
      // A .sha256 of another file is refused, not ignored.
      writeFileSync(`${src}.sha256`, `${sha(readFileSync(src))}  other.img.${ext}\n`);
      await assert.rejects(flash(src, [t2], { forceFile: true }), (e: unknown) => code('ECHECKSUM')(e) && /no line for/.test((e as Error).message));
      // The BSD form (sha256 -r, shasum --tag) names the file the same way.
      writeFileSync(`${src}.sha256`, `SHA256 (card.img.${ext}) = ${sha(readFileSync(src))}\n`);
      assert.equal((await flash(src, [t2], { forceFile: true })).targets[0]!.ok, true);
      // The image's own .sha256 names the .img: checked against the decompressed stream.
      writeFileSync(`${src}.sha256`, `${sha(img.data)}  card.img\n`);
      assert.equal((await flash(src, [t2], { forceFile: true })).targets[0]!.ok, true);
      const t3 = target(dir, 't3.bin');
      writeFileSync(`${src}.sha256`, `${sha(Buffer.concat([img.data, Buffer.from('x')]))}  card.img\n`);
      await assert.rejects(flash(src, [t3], { forceFile: true }), (e: unknown) => code('ECHECKSUM')(e) && /the image/.test((e as Error).message));
      assert.ok(untouched(t3));
    });
  }

  it('a truncated .gz is ESOURCE from the CLI and the library, with no unhandled rejection', async () => {
    const dir = tempDir();
    const img = makeImage(dir);
    const gz = gzipSync(img.data, { level: 1 });
    const src = join(dir, 'cut.img.gz');
    writeFileSync(src, gz.subarray(0, Math.floor(gz.length / 2)));
    const t = target(dir);
    await assert.rejects(flash(src, [t], { forceFile: true, bmap: false }), code('ESOURCE'));
    assert.ok(untouched(t));
    // In a process of its own: an unhandled rejection would kill it with a stack trace.
    const r = spawnSync(process.execPath, ['--import=tsx', 'src/cli/main.ts', 'flash', src, '--device', t, '--force-file', '--yes', '--no-bmap'], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /ESOURCE/);
    assert.doesNotMatch(r.stderr, /Unhandled|triggerUncaughtException|at .*node:internal/);
    // Give a late rejection a chance to surface in this process too.
    await new Promise((res) => setTimeout(res, 200));
  });

  it('decompression stops at the bmap\'s image size: a stream longer than its bmap is EBMAP after reading no more', async () => {
    const dir = tempDir();
    const img = makeImage(dir);
    const long = join(dir, 'long.img');
    writeFileSync(long, Buffer.concat([img.data, Buffer.alloc(200 * MiB)]));
    spawnSync('zstd', ['-q', '--rm', long, '-o', `${long}.zst`]);
    const events: FlashProgress[] = [];
    await assert.rejects(flash(`${long}.zst`, [target(dir)], { forceFile: true, bmap: `${img.path}.bmap`, onProgress: (p) => events.push(p) }), (e: unknown) => code('EBMAP')(e) && /decompresses to more/.test((e as Error).message));
    const read = Math.max(...events.filter((e) => e.phase === 'checking').map((e) => e.done));
    assert.ok(read <= SIZE, `checked ${read} bytes of a ${SIZE}-byte image, no further`);
  });

  it('customisation that cannot be written is refused before the card is touched, with its own code', async () => {
    const dir = tempDir();
    const img = makeImage(dir);
    const t = target(dir);
    const cases: [string, Parameters<typeof flash>[2], string][] = [
      ['env does not fit', { customize: { env: { big: 'x'.repeat(5000) } } }, 'EENV_FULL'],
      ['command line too long', { customize: { cmdline: Array.from({ length: 300 }, (_, i) => `nodeos.arg${i}=1`) } }, 'ECUSTOMIZE'],
      ['unbalanced quote', { customize: { cmdline: ['nodeos.run="board.GPIO17.write(1)'] } }, 'ECUSTOMIZE'],
      ['newline in a name', { customize: { env: { 'a\nb': '1' } } }, 'ECUSTOMIZE'],
      ['space in a name', { customize: { env: { 'a b': '1' } } }, 'ECUSTOMIZE'],
    ];
    for (const [what, o, c] of cases) {
      await assert.rejects(flash(img.path, [t], { forceFile: true, ...o }), code(c), what);
      assert.ok(untouched(t), `${what}: the card was not touched`);
    }
    // A quoted argument with spaces is one argument, and is written.
    const r = await flash(img.path, [t], { forceFile: true, customize: { cmdline: ['nodeos.run="board.GPIO17.write(1); 1"'] } });
    assert.equal(r.targets[0]!.customized, true, r.targets[0]!.error?.message);
  });

  it('customisation of a compressed image too large to hold is planned from its boot partition, kept from the one read', async () => {
    const dir = tempDir();
    const img = makeImage(dir);
    writeFileSync(`${img.path}.gz`, gzipSync(img.data, { level: 1 }));
    const t = target(dir);
    await assert.rejects(flash(`${img.path}.gz`, [t], { forceFile: true, holdBytes: 0, customize: { env: { big: 'x'.repeat(5000) } } }), code('EENV_FULL'));
    assert.ok(untouched(t), 'refused before writing');
    const r = await flash(`${img.path}.gz`, [t], { forceFile: true, holdBytes: 0, customize: { hostname: 'kitchen' } });
    assert.equal(r.targets[0]!.customized, true, r.targets[0]!.error?.message);
  });

  it('a source changed between the check and the write never ends "ok", even without read-back', async () => {
    const dir = tempDir();
    const img = makeImage(dir);
    const t = target(dir);
    let changed = false;
    const r = await flash(img.path, [t], {
      forceFile: true,
      verify: false,
      holdBytes: 0, // read twice, as for an image too large to keep in memory
      onProgress: (p) => {
        if (p.phase === 'flashing' && !changed) {
          changed = true;
          const d = Buffer.from(img.data);
          d[44 * MiB + 100]! ^= 0xff;
          writeFileSync(img.path, d);
        }
      },
    });
    assert.equal(changed, true);
    assert.equal(r.targets[0]!.ok, false);
    assert.equal(r.targets[0]!.error?.code, 'ESOURCE_CHANGED');
  });
});
