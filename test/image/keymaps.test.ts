/**
 * The screen's keyboard layouts through the real tools: ckbcomp (console-setup) from XKB's
 * data, then loadkeys -u -b (kbd), here with this machine's copies of the packages the build
 * pins. The German layout swaps Y and Z against the US one: the binary keymaps say so.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Artifacts } from '../../src/artifacts/index.js';
import { Cache } from '../../src/artifacts/index.js';
import { keymaps } from '../../src/image/keymaps.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** Map 0 (no modifier) of a busybox binary keymap: 'bkeymap', 256 flags, then 128 u16 per map that is on. */
function plainMap(bk: Buffer): number[] {
  assert.equal(bk.toString('latin1', 0, 7), 'bkeymap');
  assert.equal(bk[7], 1, 'map 0 is present');
  const at = 7 + 256;
  return Array.from({ length: 128 }, (_, i) => bk.readUInt16LE(at + 2 * i));
}
/** The character of a keysym value (KT_LATIN/KT_LETTER: type in the high byte, the character in the low one). */
const ch = (v: number): string => String.fromCharCode(v & 0xff);

describe('keyboard layouts (ckbcomp + loadkeys)', () => {
  after(cleanupTemp);

  it('makes every layout; de swaps Y and Z, fr has A where us has Q', () => {
    assert.ok(existsSync('/usr/bin/ckbcomp') && existsSync('/usr/share/X11/xkb/symbols/de'), 'console-setup and xkb-data are installed (.ci/setup)');
    const fake = { debs: { xkbData: '/', consoleSetup: '/' }, lock: { debian: { xkbData: { sha256: 'host' }, consoleSetup: { sha256: 'host' } } } } as unknown as Artifacts;
    const maps = new Map(keymaps(fake, new Cache(tempDir())).map((k) => [k.layout, plainMap(k.data)]));
    assert.deepEqual([...maps.keys()], ['us', 'uk', 'de', 'fr', 'es', 'it']);
    // Linux key codes: 16 = Q, 21 = Y, 30 = A, 44 = Z.
    const us = maps.get('us')!;
    const de = maps.get('de')!;
    const fr = maps.get('fr')!;
    assert.deepEqual([ch(us[21]!), ch(us[44]!)], ['y', 'z']);
    assert.deepEqual([ch(de[21]!), ch(de[44]!)], ['z', 'y']);
    assert.deepEqual([ch(fr[16]!), ch(fr[30]!)], ['a', 'q']);
  });
});
