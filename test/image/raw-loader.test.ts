/**
 * Boot loader pieces on the card's raw sectors (profile boot.uboot.raw): the signature the
 * boot ROM looks for, no overlap with the MBR, each other or the first partition, and the
 * boot-chain rule BC_RAW on an image carrying them.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildMbr, checkBootChain, getBoard, layoutFor, layoutProblem, writeSparseImage, type BoardProfile, type BspError } from '../../src/index.js';
import { rawPieces, rawRegions } from '../../src/image/raw-loader.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const EGON = Buffer.from('eGON.BT0', 'latin1').toString('hex');
/** An Allwinner-style loader: a branch, "eGON.BT0" at byte 4, then `size` bytes in all. */
const spl = (size = 860_000): Buffer => {
  const b = Buffer.alloc(size, 0x5a);
  b.writeUInt32LE(0xea000016, 0);
  b.write('eGON.BT0', 4, 'latin1');
  return b;
};
const base = getBoard('qemu-virt').profile;
const withRaw = (raw: NonNullable<NonNullable<BoardProfile['boot']['uboot']>['raw']>, startMiB = 4): BoardProfile => ({
  ...base,
  boot: { ...base.boot, uboot: { ...base.boot.uboot!, package: 'u-boot-sunxi', raw } },
  partitions: base.partitions.map((p, i) => (i === 0 ? { ...p, startMiB } : p)),
});
const sunxi = withRaw([{ file: 'pine64_plus/u-boot-sunxi-with-spl.bin', offset: 8192, signature: { at: 4, hex: EGON } }]);
const MiB = 1 << 20;

describe('raw boot loader pieces (Allwinner, Rockchip)', () => {
  after(cleanupTemp);

  it('reads each piece, checks the signature the boot ROM looks for, and records where it goes', () => {
    const files = new Map([['pine64_plus/u-boot-sunxi-with-spl.bin', spl()]]);
    const pieces = rawPieces(sunxi, (f) => files.get(f)!, 4 * MiB);
    assert.deepEqual(rawRegions(pieces), [{ file: 'pine64_plus/u-boot-sunxi-with-spl.bin', offset: 8192, size: 860_000 }]);
    const wrong = spl();
    wrong.write('eGON.XXX', 4, 'latin1');
    assert.throws(() => rawPieces(sunxi, () => wrong, 4 * MiB), (e: BspError) => e.code === 'EARTIFACT' && /has 65474f4e2e585858 at byte 4, not 65474f4e2e425430/.test(e.message));
  });

  it('refuses a piece that runs into the first partition, another piece or the MBR, saying where the partition must start', () => {
    assert.throws(() => rawPieces(sunxi, () => spl(5 * MiB), 4 * MiB), (e: BspError) => e.code === 'EPROFILE_INVALID' && /inside the first partition \(it starts at 4 MiB\): start the first partition at 8 MiB or later/.test(e.message));
    const rockchip = withRaw([{ file: 'rock64-rk3328/idbloader.img', offset: 32768 }, { file: 'rock64-rk3328/u-boot.itb', offset: 100 * 1024 }], 16);
    assert.throws(() => rawPieces(rockchip, () => Buffer.alloc(135_168, 1), 16 * MiB), (e: BspError) => e.code === 'EPROFILE_INVALID' && /u-boot\.itb at 100 KiB overlaps rock64-rk3328\/idbloader\.img \(135168 bytes at 32 KiB\)/.test(e.message));
    assert.throws(() => rawPieces(withRaw([{ file: 'x.bin', offset: 0 }]), () => Buffer.alloc(10), 4 * MiB), (e: BspError) => /overlaps the MBR/.test(e.message));
    // layout.json says the same, so a card's layout cannot claim overlapping pieces either.
    assert.throws(() => layoutFor(sunxi, 1, { raw: [{ file: 'a', offset: 8192, size: 5 * MiB }] }), (e: BspError) => e.code === 'EPROFILE_INVALID' && /raw piece a \(5242880 bytes at 8192\) overlaps/.test(e.message));
    assert.deepEqual(layoutFor(sunxi, 1, { raw: [{ file: 'a', offset: 8192, size: 860_000 }] }).raw, [{ file: 'a', offset: 8192, size: 860_000 }]);
  });

  it("zeros where the U-Boot build reads its own environment on the card: mapped like a piece, refused where a piece is", () => {
    const rockchip = withRaw([{ file: 'rock64-rk3328/idbloader.img', offset: 32768 }, { file: 'rock64-rk3328/u-boot.itb', offset: 8 * MiB }], 16);
    const pieces = rawPieces(rockchip, () => Buffer.alloc(135_168, 1), 16 * MiB, [{ offset: 0x3f8000, size: 0x8000 }]);
    const env = pieces.find((p) => p.zeros)!;
    assert.deepEqual([env.offset, env.data.length, env.data.every((b) => b === 0)], [0x3f8000, 0x8000, true]);
    assert.deepEqual(rawRegions(pieces).map((r) => [r.offset, r.size, r.zeros ?? false]), [[32768, 135_168, false], [8 * MiB, 135_168, false], [0x3f8000, 0x8000, true]]);
    assert.equal(layoutFor(rockchip, 1, { raw: rawRegions(pieces) }).raw?.length, 3);
    assert.throws(() => rawPieces(rockchip, () => Buffer.alloc(135_168, 1), 16 * MiB, [{ offset: 65536, size: 0x8000 }]), (e: BspError) => e.code === 'EPROFILE_INVALID' && /U-Boot's own environment \(CONFIG_ENV_OFFSET 0x10000\) at 64 KiB overlaps rock64-rk3328\/idbloader\.img/.test(e.message));
  });

  it("BC_RAW: the image carries the signature at the piece's offset, before the first partition", () => {
    const layout = layoutFor(sunxi, 0x1234);
    assert.equal(layoutProblem({ ...layout, raw: [{ file: 'a', offset: 8192, size: 5 * MiB }] })?.startsWith('raw piece a'), true);
    const image = (loader: Buffer | undefined): string => {
      const path = join(tempDir(), 'card.img');
      writeSparseImage(path, 8 * MiB, [{ offset: 0, data: buildMbr([{ start: 8192, sectors: 4096, type: 0x0c, bootable: true }], 0x1234) }, ...(loader ? [{ offset: 8192, data: loader }] : [])]);
      return path;
    };
    const rule = (path: string): { ok: boolean; detail: string } | undefined => checkBootChain(path, sunxi).find((r) => r.id === 'BC_RAW');
    assert.deepEqual(rule(image(spl(100_000))), { id: 'BC_RAW', step: 'rom', ok: true, detail: 'pine64_plus/u-boot-sunxi-with-spl.bin at 8192: 65474f4e2e425430 at byte 4' } as never);
    assert.equal(rule(image(undefined))?.ok, false, 'zeros where the loader belongs');
  });
});
