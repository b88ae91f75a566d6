/**
 * The stages flash() is built from, each on its own and without root: the refusal plan on
 * lsblk fixtures, the check pass on images in a temporary directory, and writing, verifying
 * and customising through in-memory destinations (a card that loses a byte, one that fails).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cardFor,
  checkedReader,
  checkImage,
  customizeCards,
  drivesFromLsblk,
  openSource,
  planCustomization,
  planFlash,
  verifyImage,
  writeImage,
  type Destination,
  type Drive,
  type LsblkTree,
} from '../../flash/index.js';
import { createBmap, createImage, decodeEnv, Fat32Reader, FlashError, readLayout, VerifyError, writeSparseImage } from '../../src/index.js';
import { cardExtents, smallLayout } from '../helpers/card.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const MiB = 1 << 20;
const SIZE = 64 * MiB;
const code = (c: string) => (e: unknown) => e instanceof FlashError && e.code === c;
const drives = (): Drive[] => drivesFromLsblk(JSON.parse(readFileSync('test/fixtures/lsblk/laptop-luks-lvm.json', 'utf8')) as LsblkTree, { swaps: new Set(), held: new Set() });

/** A card in memory; `onWrite` sees every write, `corrupt` changes what reads give back. */
function memoryCard(device: string, size: number, o: { onWrite?: (offset: number, n: number) => void; corrupt?: (offset: number, data: Buffer) => void; failWrites?: boolean } = {}): Destination & { bytes: Buffer; synced: number; closed: boolean } {
  const bytes = Buffer.alloc(size, 0x5a);
  const card = {
    device,
    bytes,
    synced: 0,
    closed: false,
    write: async (data: Buffer, offset: number) => {
      if (o.failWrites) throw new Error('EIO: i/o error');
      o.onWrite?.(offset, data.length);
      data.copy(bytes, offset);
    },
    read: async (offset: number, length: number) => card.readSync(offset, length),
    readSync: (offset: number, length: number) => {
      const out = Buffer.from(bytes.subarray(offset, offset + length));
      o.corrupt?.(offset, out);
      return out;
    },
    sync: async () => void card.synced++,
    dropCache: () => undefined,
    close: async () => void (card.closed = true),
  };
  return card;
}

describe('flash stages (no root)', () => {
  let dir: string;
  let image: string;
  let data: Buffer;
  let ranges: [number, number][];

  before(() => {
    dir = tempDir();
    const env = createImage('bootargs=console=ttyS1,115200 TERM=dumb\nbootdelay=0\n', { size: 0x4000, pad: 0 });
    const extents = [
      ...cardExtents(smallLayout(4, 56, 0x1234), [{ path: 'uboot.env', data: env }, { path: 'uboot.bak', data: env }, { path: 'payload.bin', data: randomBytes(3 * MiB) }], { volumeId: 7, mtime: 1_700_000_000 }),
      { offset: 40 * MiB + 4096, data: randomBytes(2 * MiB + 123) },
    ];
    image = join(dir, 'card.img');
    ranges = writeSparseImage(image, SIZE, extents);
    writeFileSync(`${image}.bmap`, createBmap(image, SIZE, ranges));
    data = readFileSync(image);
  });
  after(cleanupTemp);

  describe('planFlash: refusals from the drive scan and the source, before anything is read', () => {
    const src = { path: 'x.img', size: SIZE };
    const card = (): Drive => drives().find((d) => d.device === '/dev/sdb')!;

    it('accepts a removable card; the stream limit is the bmap image size, else the smallest target', () => {
      const p = planFlash(src, [card()]);
      assert.deepEqual(p.targets.map((t) => [t.device, t.file]), [['/dev/sdb', false]]);
      assert.equal(p.limit.bytes, card().size);
      const bmap = { imageSize: SIZE } as NonNullable<Parameters<typeof planFlash>[0]['bmap']>;
      assert.equal(planFlash({ path: 'x.img.xz', bmap, bmapPath: 'x.img.bmap' }, [card()]).limit.bytes, SIZE);
      assert.ok(code('EBMAP')(planFlash({ path: 'x.img.xz', bmap, bmapPath: 'x.img.bmap' }, [card()]).limit.error(SIZE + 1)));
    });

    it('each refusal has its code: none given, a file, a system drive, read-only, too large, twice, too small', () => {
      const file = { device: join(dir, 'out.img'), file: true as const, size: 0 };
      assert.throws(() => planFlash(src, []), code('ENO_DEVICE'));
      assert.throws(() => planFlash(src, [file]), code('ENOT_BLOCK'));
      assert.equal(planFlash(src, [file], { forceFile: true }).targets[0]!.file, true);
      assert.throws(() => planFlash(src, [drives().find((d) => d.device === '/dev/nvme0n1')!]), code('ESYSTEM_DRIVE'));
      assert.throws(() => planFlash(src, [{ ...card(), readOnly: true }]), code('EREAD_ONLY'));
      assert.throws(() => planFlash(src, [{ ...card(), size: 256e9 }]), code('ELARGE_DRIVE'));
      assert.equal(planFlash(src, [{ ...card(), size: 256e9 }], { allowLarge: true }).targets.length, 1);
      assert.throws(() => planFlash(src, [card(), card()]), code('ENO_DEVICE'));
      assert.throws(() => planFlash(src, [{ ...card(), size: SIZE - 512 }]), (e: unknown) => code('ETOO_SMALL')(e) && /use a larger card; nothing was written/.test((e as Error).message));
    });
  });

  describe('checkImage', () => {
    it('held or not, the same ranges and digests; held data is the image\'s mapped bytes', async () => {
      const src = openSource(image);
      const held = await checkImage(src);
      const read = await checkImage(src, { holdBytes: 0 });
      assert.deepEqual(held.ranges, read.ranges);
      assert.equal(read.held, undefined);
      assert.equal(held.mappedBytes, src.bmap!.mappedBytes);
      assert.equal(held.held!.reduce((n, p) => n + p.data.length, 0), src.bmap!.mappedBytes);
      for (const p of held.held!) assert.ok(p.data.equals(data.subarray(p.offset, p.offset + p.data.length)));
      const r0 = held.ranges[0]!;
      assert.equal(r0.digest, createHash(held.algorithm).update(data.subarray(r0.start, r0.end)).digest('hex'));
      assert.deepEqual(readLayout(checkedReader(held), 'held').boot, readLayout(checkedReader(read), 'file').boot);
    });

    it('EBMAP_CHECKSUM: a byte changed in a mapped range, before any destination exists', async () => {
      const bad = join(dir, 'bad.img');
      const copy = Buffer.from(data);
      copy[ranges[1]![0] + 5]! ^= 1;
      writeFileSync(bad, copy);
      await assert.rejects(checkImage(openSource(bad, { bmap: `${image}.bmap` })), code('EBMAP_CHECKSUM'));
    });
  });

  describe('writeImage, verifyImage, customizeCards through destinations', () => {
    it('writes only mapped ranges, the first MiB last, syncs, and verifies', async () => {
      const img = await checkImage(openSource(image));
      const order: number[] = [];
      const dest = memoryCard('/dev/mem0', 128 * MiB, { onWrite: (offset) => order.push(offset) });
      const cards = [cardFor(dest)];
      await writeImage(img, cards);
      await verifyImage(img, cards);
      assert.equal(cards[0]!.result.error, undefined);
      assert.equal(cards[0]!.result.verified, true);
      assert.equal(cards[0]!.result.bytesWritten, img.mappedBytes);
      for (const [a, b] of ranges) assert.ok(dest.bytes.subarray(a, b).equals(data.subarray(a, b)), `range ${a}-${b}`);
      assert.ok(dest.bytes.subarray(30 * MiB, 31 * MiB).every((x) => x === 0x5a), 'holes are not written');
      const firstHead = order.findIndex((o) => o < MiB);
      assert.ok(firstHead > 0 && order.slice(firstHead).every((o) => o < MiB), `the first MiB is written last: ${order.join(',')}`);
      assert.ok(dest.synced >= 1);
    });

    it('a card that loses a byte is EVERIFY at that offset; a card whose writes fail is EWRITE; the good card is unaffected', async () => {
      for (const holdBytes of [undefined, 0]) {
        const img = await checkImage(openSource(image), holdBytes === undefined ? {} : { holdBytes });
        const bad = ranges[1]![0] + 777;
        const good = memoryCard('/dev/good', 128 * MiB);
        const lossy = memoryCard('/dev/lossy', 128 * MiB, { corrupt: (offset, out) => bad >= offset && bad < offset + out.length && (out[bad - offset]! ^= 0xff) });
        const broken = memoryCard('/dev/broken', 128 * MiB, { failWrites: true });
        const cards = [good, lossy, broken].map(cardFor);
        await writeImage(img, cards);
        await verifyImage(img, cards);
        assert.equal(cards[0]!.result.verified, true);
        assert.equal(cards[1]!.result.error?.code, 'EVERIFY');
        assert.equal((cards[1]!.result.error as VerifyError).offset, bad);
        assert.equal(cards[2]!.result.error?.code, 'EWRITE');
        assert.match(cards[2]!.result.error!.message, /^\/dev\/broken: EIO/);
      }
    });

    it('customisation is written and read back through the destination; a card that does not keep it is ECUSTOMIZE', async () => {
      const img = await checkImage(openSource(image));
      const plan = planCustomization(checkedReader(img), image, { hostname: 'kitchen' });
      const good = memoryCard('/dev/good', 128 * MiB);
      // This card drops every write of the customisation (they come after the image).
      let imageWritten = false;
      const deaf = memoryCard('/dev/deaf', 128 * MiB);
      const write = deaf.write;
      deaf.write = async (d, off) => (imageWritten ? undefined : write(d, off));
      const cards = [good, deaf].map(cardFor);
      await writeImage(img, cards);
      imageWritten = true;
      await customizeCards(plan, cards);
      assert.equal(cards[0]!.result.customized, true);
      const { boot } = readLayout(good.readSync, 'good');
      const fat = new Fat32Reader(good.readSync, boot.offset);
      assert.equal(decodeEnv(fat.readFile('uboot.env')).vars.get('hostname'), 'kitchen');
      assert.equal(cards[1]!.result.error?.code, 'ECUSTOMIZE');
    });
  });
});
