/** The image layout: made from a profile, written as layout.json, read back from a card with its MBR checked. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildFat32, buildMbr, fileReadAt, getBoard, layoutFor, mbrPartitions, parseLayout, parseMbr, partUuid, readLayout, SECTOR, writeSparseImage, type ImageLayout } from '../../src/index.js';
import { BspError } from '../../src/errors.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const MiB = 1 << 20;

function card(layout: ImageLayout, edit: { mbr?: (b: Buffer) => void; layoutText?: string } = {}): string {
  const boot = layout.partitions[0]!;
  const fat = buildFat32(edit.layoutText === '' ? [] : [{ path: 'layout.json', data: Buffer.from(edit.layoutText ?? JSON.stringify(layout)) }], { size: (boot.sizeMiB as number) * MiB, volumeId: 1, mtime: 0, hiddenSectors: (boot.startMiB * MiB) / SECTOR });
  const mbr = buildMbr(mbrPartitions(layout), parseInt(layout.diskSignature, 16));
  edit.mbr?.(mbr);
  const path = join(tempDir(), 'card.img');
  writeSparseImage(path, 640 * MiB, [{ offset: 0, data: mbr }, ...fat.extents.map((e) => ({ offset: e.offset + boot.startMiB * MiB, data: e.data }))]);
  return path;
}

describe('image layout', () => {
  after(cleanupTemp);
  const profile = getBoard('rpi3b').profile;
  const layout = layoutFor(profile, 0xa1b2c3d4);

  it('is the profile\'s partitions with their roles; the MBR holds what the build writes', () => {
    assert.deepEqual(layout.partitions.map((p) => [p.number, p.role, p.slot ?? '', p.startMiB, p.sizeMiB]), [
      [1, 'boot', '', 4, 124],
      [2, 'system', 'A', 128, 256],
      [3, 'system', 'B', 384, 256],
      [4, 'users', '', 640, 'fill'],
    ]);
    assert.equal(partUuid(layout, layout.partitions[1]!), 'a1b2c3d4-02');
    const mbr = parseMbr(buildMbr(mbrPartitions(layout), 0xa1b2c3d4))!;
    assert.deepEqual(mbr.entries.map((e) => [e.number, e.type, e.start, e.sectors, e.bootable]), [
      [1, 0x0c, 8192, 124 * 2048, true],
      [2, 0x83, 128 * 2048, 256 * 2048, false],
      [3, 0x83, 384 * 2048, 256 * 2048, false],
    ]);
  });

  it('reads back from a card: layout.json on the boot partition, checked against the MBR', () => {
    const r = readLayout(fileReadAt(card(layout)), 'card');
    assert.deepEqual(r.layout, layout);
    assert.deepEqual(r.boot, { offset: 4 * MiB, size: 124 * MiB });
  });

  it('refuses a card whose MBR disagrees, an older image without layout.json, and another format', () => {
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (err) {
        return `${(err as BspError).code}: ${(err as Error).message}`;
      }
      return 'no error';
    };
    const moved = card(layout, { mbr: (b) => b.writeUInt32LE(129 * 2048, 446 + 16 + 8) });
    assert.match(code(() => readLayout(fileReadAt(moved), 'moved')), /^ELAYOUT: .*partition 2 \(system-a\)/);
    const resigned = card(layout, { mbr: (b) => b.writeUInt32LE(1, 440) });
    assert.match(code(() => readLayout(fileReadAt(resigned), 'x')), /^ELAYOUT: .*disk signature 00000001/);
    assert.match(code(() => readLayout(fileReadAt(card(layout, { layoutText: '' })), 'old')), /^ELAYOUT: old has no layout\.json .*older nodeos-bsp/);
    assert.match(code(() => parseLayout(JSON.stringify({ ...layout, format: 'nodeos-layout/9' }), 'x')), /^ELAYOUT: .*not nodeos-layout\/1/);
    assert.match(code(() => parseLayout(JSON.stringify({ ...layout, bootlimit: 12 }), 'x')), /^ELAYOUT: .*bootlimit 12 is not 1-9/);
    const noB = { ...layout, partitions: layout.partitions.filter((p) => p.slot !== 'B') };
    assert.match(code(() => parseLayout(JSON.stringify(noB), 'x')), /slot B/);
  });
});
