/**
 * Flashing real block devices (loop devices made here; needs root, util-linux, xz, zstd,
 * e2fsprogs): formats, bmap, multi-target, customisation, and every refusal leaving the
 * target untouched.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { flash, listDrives, parseBmap } from '../../flash/index.js';
import { bootPartitionIn, createBmap, createImage, decodeEnv, Fat32Reader, FlashError, VerifyError, writeSparseImage } from '../../src/index.js';
import { cardExtents, smallLayout } from '../helpers/card.js';
import { attachLoop, detachLoop, isRoot } from '../helpers/tools.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const MiB = 1 << 20;
const IMAGE_SIZE = 64 * MiB;
const PATTERN = 0xa5;

/** A 64 MiB card image: MBR, FAT32 with a uboot.env, and scattered random data (about 10% mapped). */
function makeImage(dir: string): { image: string; data: Buffer; ranges: [number, number][] } {
  const env = createImage('bootargs=console=ttyS1,115200 TERM=dumb\nbootdelay=0\nbootcmd=boot\n', { size: 0x4000, pad: 0 });
  const extents = [
    ...cardExtents(smallLayout(4, 56, 0x1234), [{ path: 'uboot.env', data: env }, { path: 'uboot.bak', data: env }, { path: 'payload.bin', data: randomBytes(3 * MiB) }], { volumeId: 7, mtime: 1_700_000_000 }),
    { offset: 40 * MiB + 4096, data: randomBytes(2 * MiB + 123) },
  ];
  const image = join(dir, 'card.img');
  const ranges = writeSparseImage(image, IMAGE_SIZE, extents);
  writeFileSync(`${image}.bmap`, createBmap(image, IMAGE_SIZE, ranges));
  return { image, data: readFileSync(image), ranges };
}

/** A loop device over a file filled with a pattern, so untouched blocks are recognisable. */
function makeCard(dir: string, size: number, name: string, readOnly = false): string {
  const f = join(dir, name);
  const fd = openSync(f, 'w');
  const chunk = Buffer.alloc(MiB, PATTERN);
  for (let i = 0; i < size / MiB; i++) writeSync(fd, chunk);
  closeSync(fd);
  return readOnly ? execFileSync('losetup', ['--find', '--show', '--read-only', f]).toString().trim() : attachLoop(f);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const code = (c: string) => (e: unknown) => e instanceof FlashError && e.code === c;

describe('flash to loop block devices (root)', function () {
  let dir: string;
  let img: ReturnType<typeof makeImage>;
  const loops: string[] = [];
  const card = (size = 128 * MiB, ro = false): string => {
    const d = makeCard(dir, size, `card${loops.length}.raw`, ro);
    loops.push(d);
    return d;
  };

  before(function () {
    if (!isRoot()) this.skip();
    dir = tempDir();
    img = makeImage(dir);
  });
  after(() => {
    for (const l of loops) detachLoop(l);
    cleanupTemp();
  });

  /** The card holds the image's mapped bytes and the pattern everywhere else. */
  function assertFlashed(dev: string, mappedOnly = true, patterned = true): void {
    const got = readFileSync(dev);
    for (const [a, b] of img.ranges) assert.ok(got.subarray(a, b).equals(img.data.subarray(a, b)), `range ${a}-${b}`);
    if (!mappedOnly) assert.ok(got.subarray(0, IMAGE_SIZE).equals(img.data));
    else if (patterned) {
      // A block nowhere near a mapped range is untouched.
      assert.ok(got.subarray(30 * MiB, 31 * MiB).every((x) => x === PATTERN), 'unmapped blocks not written');
      assert.ok(got.subarray(100 * MiB, 101 * MiB).every((x) => x === PATTERN), 'beyond the image not written');
    }
  }

  it('raw image with its .bmap: only mapped ranges are written, then verified', async () => {
    const dev = card();
    const r = await flash(img.image, [dev]);
    assert.deepEqual(r.targets.map((t) => [t.ok, t.verified]), [[true, true]]);
    assert.equal(r.mappedBytes, parseBmap(readFileSync(`${img.image}.bmap`, 'utf8')).mappedBytes);
    assert.ok(r.mappedBytes < IMAGE_SIZE / 5);
    assertFlashed(dev);
  });

  it('--no-bmap writes the whole image', async () => {
    const dev = card();
    await flash(img.image, [dev], { bmap: false });
    assertFlashed(dev, false);
  });

  for (const [ext, compress] of [
    ['xz', (p: string) => execFileSync('xz', ['-T0', '-c', p], { maxBuffer: 1 << 30 })],
    ['gz', (p: string) => gzipSync(readFileSync(p))],
    ['zst', (p: string) => execFileSync('zstd', ['-q', '-c', p], { maxBuffer: 1 << 30 })],
  ] as const) {
    it(`.${ext}: decompressed as a stream, bmap applied, verified`, async () => {
      const z = join(dir, `card.img.${ext}`);
      writeFileSync(z, compress(img.image));
      const dev = card();
      const r = await flash(z, [dev]);
      assert.equal(r.source.compression, ext);
      assert.ok(r.targets[0]!.verified);
      assertFlashed(dev);
    });
  }

  it('several targets from one read: two loop devices and a file', async () => {
    const a = card();
    const b = card();
    const file = join(dir, 'target.img');
    writeFileSync(file, Buffer.alloc(0));
    const r = await flash(img.image, [a, b, file], { forceFile: true });
    assert.deepEqual(r.targets.map((t) => t.ok), [true, true, true]);
    assertFlashed(a);
    assertFlashed(b);
    const f = readFileSync(file);
    for (const [s, e] of img.ranges) assert.ok(f.subarray(s, e).equals(img.data.subarray(s, e)));
  });

  it('one failing target does not stop the others (a file on a full tmpfs)', async () => {
    const mnt = join(dir, 'tiny');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    try {
      const good = card();
      const r = await flash(img.image, [good, join(mnt, 'x.img')], { forceFile: true });
      assert.equal(r.targets[0]!.ok, true);
      assert.equal(r.targets[1]!.ok, false);
      assert.match(r.targets[1]!.error!.message, /ENOSPC|no space/i);
      assertFlashed(good);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('customisation is written into the card\'s uboot.env and reads back', async () => {
    const dev = card();
    const r = await flash(img.image, [dev], { customize: { hostname: 'kitchen', console: 'ttyAMA0,115200', cmdline: ['quiet'], env: { bootdelay: '3', bootcmd: '' } } });
    assert.ok(r.targets[0]!.customized);
    const fat = new Fat32Reader(dev, bootPartitionIn(dev).offset);
    const env = decodeEnv(fat.readFile('uboot.env')).vars;
    fat.close();
    assert.equal(env.get('bootargs'), 'TERM=dumb console=ttyAMA0,115200 nodeos.hostname=kitchen quiet');
    assert.equal(env.get('hostname'), 'kitchen');
    assert.equal(env.get('bootdelay'), '3');
    assert.equal(env.has('bootcmd'), false);
  });

  it('EVERIFY: a card that does not keep what was written is caught, naming the first bad offset', async () => {
    const dev = card();
    const file = execFileSync('losetup', ['-n', '-O', 'BACK-FILE', dev]).toString().trim();
    const bad = img.ranges[1]![0] + 777;
    // Between writing and reading back, the "card" loses a byte (written behind the loop device's back).
    const r = await flash(img.image, [dev], {
      onProgress: (p) => {
        if (p.phase === 'verifying' && p.done === 0) {
          const fd = openSync(file, 'r+');
          writeSync(fd, Buffer.from([img.data[bad]! ^ 0xff]), 0, 1, bad);
          closeSync(fd);
        }
      },
    });
    const t = r.targets[0]!;
    assert.equal(t.ok, false);
    assert.equal(t.error?.code, 'EVERIFY');
    assert.equal((t.error as VerifyError).offset, bad);
    assert.match(t.error!.message, /card or the card reader/);
  });

  it('ELARGE_DRIVE: a drive over 128 GB needs --allow-large', async () => {
    const f = join(dir, 'huge.raw');
    writeFileSync(f, Buffer.alloc(0));
    execFileSync('truncate', ['-s', '130G', f]);
    const dev = attachLoop(f);
    loops.push(dev);
    await assert.rejects(flash(img.image, [dev]), code('ELARGE_DRIVE'));
    const head = Buffer.alloc(MiB);
    const fd = openSync(dev, 'r');
    readSync(fd, head, 0, MiB, 0);
    closeSync(fd);
    assert.ok(head.every((b) => b === 0), 'untouched');
  });

  describe('refusals leave the target untouched', () => {
    async function refused(dev: string, run: () => Promise<unknown>, c: string): Promise<void> {
      const before = sha(readFileSync(dev));
      await assert.rejects(run(), code(c));
      assert.equal(sha(readFileSync(dev)), before, 'target unchanged');
    }

    it('ETOO_SMALL: a card smaller than the image', async () => {
      const dev = card(32 * MiB);
      await refused(dev, () => flash(img.image, [dev]), 'ETOO_SMALL');
    });

    it('ETOO_SMALL from a stream: 4 GiB of zeros in a small .zst are decompressed only up to the card\'s size', async () => {
      const zst = join(dir, 'zeros.img.zst');
      // 4 GiB of zeros compress to a few hundred kB; no bmap, so only the card bounds the stream.
      execFileSync('sh', ['-c', `head -c 4G /dev/zero | zstd -q -1 -o ${zst}`]);
      const dev = card(32 * MiB);
      const seen: number[] = [];
      await refused(dev, () => flash(zst, [dev], { onProgress: (p) => p.phase === 'checking' && seen.push(p.done) }), 'ETOO_SMALL');
      assert.ok(Math.max(0, ...seen) <= 32 * MiB, `stopped after ${Math.max(0, ...seen)} bytes, not after 4 GiB`);
    });

    it('EREAD_ONLY: a read-only device', async () => {
      const dev = card(128 * MiB, true);
      await refused(dev, () => flash(img.image, [dev]), 'EREAD_ONLY');
    });

    it('ESYSTEM_DRIVE: a disk holding a system path; the root disk is marked system', async () => {
      const dev = card();
      // No lazy init and a read-only mount: the kernel must not write the device behind the test's back.
      execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', dev]);
      const mnt = join(dir, 'sys');
      mkdirSync(mnt, { recursive: true });
      execFileSync('mount', ['-o', 'ro', dev, mnt]);
      try {
        await refused(dev, () => flash(img.image, [dev], { scan: { systemPaths: [mnt] } }), 'ESYSTEM_DRIVE');
      } finally {
        execFileSync('umount', [mnt]);
      }
    });

    it('the disk holding / is listed and marked a system drive', function () {
      const rootDev = execFileSync('findmnt', ['-n', '-o', 'SOURCE', '/']).toString().trim();
      // A root on overlayfs or tmpfs (a container) has no disk to find: say so, do not pass.
      if (!rootDev.startsWith('/dev/')) this.skip();
      const all = listDrives();
      const real = realpathSync(rootDev);
      const names = [rootDev, real];
      const holds = (d: (typeof all)[number]): boolean =>
        names.includes(d.device) || d.partitions.some((p) => names.includes(p.device)) || d.systemReasons.some((r) => names.some((n) => r.startsWith(`${n} `)) && / on \/$/.test(r));
      const root = all.find(holds);
      assert.ok(root, `a drive holding ${rootDev} is listed (${all.map((d) => d.device).join(', ')})`);
      assert.equal(root.isSystem, true, `${root.device} holds /`);
      assert.ok(root.systemReasons.some((r) => /mounted on \/$/.test(r)), root.systemReasons.join('; '));
    });

    it('EMOUNTED: a mounted filesystem in use cannot be unmounted; an idle one is unmounted and flashed', async () => {
      const dev = card();
      // No lazy init and a read-only mount: the kernel must not write the device behind the test's back.
      execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', dev]);
      const mnt = join(dir, 'busy');
      mkdirSync(mnt, { recursive: true });
      execFileSync('mount', ['-o', 'ro', dev, mnt]);
      const holder = spawn('sleep', ['60'], { cwd: mnt, stdio: 'ignore' });
      try {
        await refused(dev, () => flash(img.image, [dev]), 'EMOUNTED');
      } finally {
        holder.kill();
        await new Promise((r) => holder.on('exit', r));
      }
      const r = await flash(img.image, [dev]);
      assert.ok(r.targets[0]!.ok);
      assert.equal(spawnSync('findmnt', ['-n', mnt]).status, 1, 'the idle mount was unmounted first');
      assertFlashed(dev, true, false);
    });

    it('EBMAP_CHECKSUM: a corrupted image (its bytes do not match the bmap)', async () => {
      const bad = join(dir, 'bad.img');
      const data = Buffer.from(img.data);
      data[img.ranges[1]![0] + 10]! ^= 0xff;
      writeFileSync(bad, data);
      writeFileSync(`${bad}.bmap`, readFileSync(`${img.image}.bmap`));
      const dev = card();
      await refused(dev, () => flash(bad, [dev]), 'EBMAP_CHECKSUM');
    });

    it('EBMAP: an edited bmap (its own checksum fails)', async () => {
      const edited = join(dir, 'edited.img');
      writeFileSync(edited, img.data);
      writeFileSync(`${edited}.bmap`, readFileSync(`${img.image}.bmap`, 'utf8').replace(/chksum="([0-9a-f])/, (_m, ch: string) => `chksum="${ch === 'a' ? 'b' : 'a'}`));
      const dev = card();
      await refused(dev, () => flash(edited, [dev]), 'EBMAP');
    });

    it('ESOURCE: a truncated .xz is caught before the card is touched', async () => {
      const xz = execFileSync('xz', ['-c', img.image], { maxBuffer: 1 << 30 });
      const cut = join(dir, 'cut.img.xz');
      writeFileSync(cut, xz.subarray(0, Math.floor(xz.length * 0.8)));
      const dev = card();
      await refused(dev, () => flash(cut, [dev], { bmap: `${img.image}.bmap` }), 'ESOURCE');
    });

    it('ECHECKSUM: an image that does not match its .sha256', async () => {
      const p = join(dir, 'summed.img');
      const data = Buffer.from(img.data);
      data[50 * MiB]! ^= 1; // outside the mapped ranges: only the .sha256 can tell
      writeFileSync(p, data);
      writeFileSync(`${p}.sha256`, `${sha(img.data)}  summed.img\n`);
      const dev = card();
      await refused(dev, () => flash(p, [dev], { bmap: false }), 'ECHECKSUM');
    });

    it('ENOT_BLOCK: a regular file without --force-file', async () => {
      const f = join(dir, 'plain.bin');
      writeFileSync(f, Buffer.alloc(128, 1));
      await assert.rejects(flash(img.image, [f]), code('ENOT_BLOCK'));
      assert.deepEqual(readFileSync(f), Buffer.alloc(128, 1));
    });
  });
});
