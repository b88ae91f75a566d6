/**
 * Block maps in every format bmaptool writes, from bmaptool's own test data and from its
 * own BmapCreate (needs bmap-tools): parsed to the same ranges, checked with the ranges'
 * own checksums, flashed to a file; every form not understood is EBMAP.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { flash, parseBmap, type Bmap } from '../../flash/index.js';
import { FlashError } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { run } from '../helpers/tools.js';

const FIX = 'test/fixtures/bmaptool';
const IMAGE = gunzipSync(readFileSync(join(FIX, 'test.image.gz')));
const code = (c: string) => (e: unknown) => e instanceof FlashError && e.code === c;

/** Every range's checksum matches the image's bytes. */
function assertChecksums(b: Bmap, image: Buffer): void {
  assert.ok(b.checksumType, 'has a checksum type');
  for (const r of b.ranges) assert.equal(createHash(b.checksumType!).update(image.subarray(r.start, r.end)).digest('hex'), r.checksum, `range ${r.start}`);
}

/** A bmap written by bmaptool's own BmapCreate with a given checksum type. */
function bmaptoolCreate(image: string, type: string): string {
  const out = `${image}.${type}.bmap`;
  // The Python bmaptool itself runs with (its shebang), which has its modules.
  const bmaptool = run('sh', ['-c', 'command -v bmaptool']).toString().trim();
  const python = readFileSync(bmaptool, 'utf8').split('\n')[0]!.replace(/^#!\s*/, '').split(/\s+/).pop()!;
  run(python, ['-c', `import sys; from bmaptools import BmapCreate; BmapCreate.BmapCreate(sys.argv[1], sys.argv[2], sys.argv[3]).generate()`, image, out, type]);
  return readFileSync(out, 'utf8');
}

describe('bmap: every version and checksum bmaptool writes', () => {
  after(cleanupTemp);

  const versions = { '1.2': 'sha1', '1.3': 'sha1', '1.4': 'sha256', '2.0': 'sha256' };
  let reference: Bmap['ranges'] | undefined;
  for (const [v, type] of Object.entries(versions)) {
    it(`format ${v} (bmaptool's test data): 117 mapped blocks, ${type} range checksums that match the image`, () => {
      const b = parseBmap(readFileSync(join(FIX, `test.image.bmap.v${v}`), 'utf8'), v);
      assert.equal(b.version, v);
      assert.equal(b.imageSize, IMAGE.length);
      assert.equal(b.checksumType, type);
      assert.equal(b.ranges.reduce((n, r) => n + Math.ceil((r.end - r.start) / 4096), 0), 117);
      assertChecksums(b, IMAGE);
      const plain = b.ranges.map(({ start, end }) => ({ start, end }));
      if (reference) assert.deepEqual(plain, reference, 'all versions describe the same ranges');
      reference = plain;
    });
  }

  for (const type of ['sha1', 'sha256', 'md5', 'sha512']) {
    it(`ChecksumType ${type} from bmaptool's BmapCreate: own checksum verified, ranges match`, () => {
      const dir = tempDir();
      const image = join(dir, 'test.image');
      writeFileSync(image, IMAGE);
      const b = parseBmap(bmaptoolCreate(image, type), type);
      assert.equal(b.checksumType, type);
      assertChecksums(b, IMAGE);
    });
  }

  for (const v of ['1.2', '1.3', '2.0']) {
    it(`flash with a ${v} bmap writes exactly its mapped ranges, and a wrong range checksum is EBMAP_CHECKSUM`, async () => {
      const dir = tempDir();
      const src = join(dir, 'test.image.gz');
      writeFileSync(src, readFileSync(join(FIX, 'test.image.gz')));
      const bmapFile = join(dir, `v${v}.bmap`);
      writeFileSync(bmapFile, readFileSync(join(FIX, `test.image.bmap.v${v}`)));
      const target = join(dir, 'card.bin');
      writeFileSync(target, Buffer.alloc(IMAGE.length, 0xa5));
      const r = await flash(src, [target], { forceFile: true, bmap: bmapFile });
      assert.equal(r.targets[0]!.ok, true, r.targets[0]!.error?.message);
      const b = parseBmap(readFileSync(bmapFile, 'utf8'));
      assert.equal(r.mappedBytes, b.mappedBytes);
      assert.ok(r.mappedBytes > 0);
      const card = readFileSync(target);
      for (const x of b.ranges) assert.deepEqual(card.subarray(x.start, x.end), IMAGE.subarray(x.start, x.end));
      assert.equal(card[b.ranges[0]!.end], 0xa5, 'an unmapped block is not written');

      // One byte changed inside a mapped range: the range checksum catches it before writing.
      const bad = Buffer.from(IMAGE);
      bad[b.ranges[1]!.start + 5]! ^= 0xff;
      const badSrc = join(dir, 'bad.img');
      writeFileSync(badSrc, bad);
      const target2 = join(dir, 'card2.bin');
      writeFileSync(target2, Buffer.alloc(IMAGE.length, 0xa5));
      await assert.rejects(flash(badSrc, [target2], { forceFile: true, bmap: bmapFile }), code('EBMAP_CHECKSUM'));
      assert.deepEqual(readFileSync(target2), Buffer.alloc(IMAGE.length, 0xa5), 'nothing was written');
    });
  }

  it('an edited 1.3 or 2.0 bmap fails its own checksum (EBMAP)', () => {
    for (const v of ['1.3', '1.4', '2.0']) {
      const xml = readFileSync(join(FIX, `test.image.bmap.v${v}`), 'utf8').replace('<BlockSize> 4096 </BlockSize>', '<BlockSize> 4096  </BlockSize>');
      assert.throws(() => parseBmap(xml, v), (e: unknown) => code('EBMAP')(e) && /own checksum/.test((e as Error).message), v);
    }
  });

  it('what is not understood is EBMAP: unknown major, element, range attribute, range past the end, no ranges', () => {
    const v2 = readFileSync(join(FIX, 'test.image.bmap.v2.0'), 'utf8');
    // Edits that keep the file checksum valid are made on a file without one (1.2).
    const v12 = readFileSync(join(FIX, 'test.image.bmap.v1.2'), 'utf8');
    const cases: [string, string, RegExp][] = [
      ['major 3', v2.replace('<bmap version="2.0">', '<bmap version="3.0">'), /3\.0 is not supported/],
      ['unknown element', v12.replace('<BlockMap>', '<Compression> xz </Compression><BlockMap>'), /<Compression> is not part/],
      ['unknown range attribute', v12.replace('<Range sha1=', '<Range md5="00" sha1='), /range attribute "md5"/],
      ['2.0 range attribute in 1.2', v12.replace('<Range sha1="94789636db14cdb8929133e7b8d3a158837e2e5a">', '<Range chksum="94789636db14cdb8929133e7b8d3a158837e2e5a">'), /range attribute "chksum"/],
      ['range past the end', v12.replace(/<Range sha1="[0-9a-f]+"> 0-1 <\/Range>/, '<Range> 0-1 </Range><Range> 500-501 </Range>'), /past the image's end|out of order/],
      ['no ranges', v12.replace(/<Range[^>]*>[^<]*<\/Range>/g, ''), /no ranges/],
      ['bad range text', v12.replace('> 0-1 <', '> 0-x <'), /not "first-last"/],
      ['root', '<?xml version="1.0"?><map version="2.0"/>', /root element/],
      ['not xml', 'hello', /not well-formed|no <bmap>/],
      ['blocks count', v12.replace('<BlocksCount> 201 </BlocksCount>', '<BlocksCount> 200 </BlocksCount>'), /BlocksCount/],
      ['doctype', `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>${v12.slice(v12.indexOf('<bmap'))}`, /DOCTYPE/],
    ];
    for (const [what, xml, message] of cases) assert.throws(() => parseBmap(xml, what), (e: unknown) => code('EBMAP')(e) && message.test((e as Error).message), what);
  });

  it('a large malformed bmap is refused at once (linear-time XML parser, no backtracking regex)', () => {
    // The old regex parser took 15 s for 4 kB of this (cubic), minutes for 30 kB.
    const xml = '<bmap version="2.0"><ImageSize>' + ' '.repeat(3_000_000);
    assert.throws(() => parseBmap(xml, 'spaces'), code('EBMAP'));
    const ranges = '<Range>1</Range'.repeat(200_000);
    assert.throws(() => parseBmap(`<bmap version="1.2"><ImageSize>4096</ImageSize><BlockSize>4096</BlockSize><BlocksCount>1</BlocksCount><BlockMap>${ranges}`, 'ranges'), code('EBMAP'));
  });
});
