import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBoards, matchBoard, readIdentity } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** A fake root with /proc/device-tree as the kernel exposes it. */
function fakeRoot(compatible: string[], revision?: number, cpuinfoRevision?: string): string {
  const root = tempDir();
  const dt = join(root, 'proc/device-tree');
  mkdirSync(join(dt, 'system'), { recursive: true });
  writeFileSync(join(dt, 'compatible'), compatible.map((c) => c + '\0').join(''));
  writeFileSync(join(dt, 'model'), 'Raspberry Pi 3 Model B Rev 1.2\0');
  if (revision !== undefined) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(revision);
    writeFileSync(join(dt, 'system/linux,revision'), b);
  }
  if (cpuinfoRevision) writeFileSync(join(root, 'proc/cpuinfo'), `processor\t: 0\nRevision\t: ${cpuinfoRevision}\n`);
  return root;
}

describe('board detection', () => {
  after(cleanupTemp);
  const boards = loadBoards().boards;

  it('reads compatible, model and the revision code from the device tree', () => {
    const id = readIdentity(fakeRoot(['raspberrypi,3-model-b', 'brcm,bcm2837'], 0xa02082));
    assert.deepEqual(id, { compatible: ['raspberrypi,3-model-b', 'brcm,bcm2837'], model: 'Raspberry Pi 3 Model B Rev 1.2', revision: 'a02082' });
  });

  it('matches by revision first, then compatible', () => {
    const byRev = matchBoard(boards, readIdentity(fakeRoot(['raspberrypi,3-model-b'], 0xa020d3)));
    assert.equal(byRev.board?.profile.id, 'rpi3bplus');
    assert.equal(byRev.by, 'revision');
    const byCompat = matchBoard(boards, readIdentity(fakeRoot(['raspberrypi,4-model-b', 'brcm,bcm2711'])));
    assert.equal(byCompat.board?.profile.id, 'rpi4b');
    assert.equal(byCompat.by, 'compatible');
  });

  it('ignores the flag bits: a warranty-void code (2a020d3) is the board of a020d3; a03111 is a 4B', () => {
    const voided = matchBoard(boards, readIdentity(fakeRoot(['x,unknown'], 0x02a020d3)));
    assert.equal(voided.board?.profile.id, 'rpi3bplus');
    assert.equal(voided.by, 'revision');
    assert.equal(matchBoard(boards, readIdentity(fakeRoot(['x,unknown'], undefined, '2a020d3'))).board?.profile.id, 'rpi3bplus');
    assert.equal(matchBoard(boards, readIdentity(fakeRoot(['x,unknown'], 0xa03111))).board?.profile.id, 'rpi4b');
  });

  it('falls back to /proc/cpuinfo for the revision', () => {
    const d = matchBoard(boards, readIdentity(fakeRoot(['x,unknown'], undefined, '9020e0')));
    assert.equal(d.board?.profile.id, 'rpi3aplus');
  });

  it('finds nothing for a board no profile claims', () => {
    const d = matchBoard(boards, readIdentity(fakeRoot(['qemu,virt'])));
    assert.equal(d.board, undefined);
  });
});
