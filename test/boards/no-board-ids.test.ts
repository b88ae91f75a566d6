/**
 * Boards are data: the image builder, emulation, runtime, artifacts, U-Boot environment and
 * flash code name no board id, and no SoC, vendor or loader of a family added after the Pi. (The CLI's help texts use ids in their examples, and are
 * left out.) A board-specific branch would have to name one, so this finds it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadBoards, packageRoot } from '../../src/index.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : /\.ts$/.test(n) ? [p] : [];
  });
}

describe('no board ids in code', () => {
  it('src/ (outside the CLI help) and flash/ never name a board of boards/', () => {
    const root = packageRoot();
    const ids = loadBoards().boards.map((b) => b.profile.id);
    assert.ok(ids.length >= 10);
    const files = [...sources(join(root, 'src')).filter((f) => !f.includes('/src/cli/')), ...sources(join(root, 'flash'))];
    assert.ok(files.length > 30, `scanned ${files.length} files`);
    const hits: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const id of ids) if (new RegExp(`(?<![\\w-])${id}(?![\\w-])`).test(text)) hits.push(`${f.slice(root.length + 1)}: ${id}`);
    }
    assert.deepEqual(hits, []);
  });

  it("src/ and flash/ never name the SoC, vendor or boot loader of a board beyond the Pi (its offsets and files are profile data)", () => {
    const root = packageRoot();
    // The Pis and QEMU's virt came first: the code names Broadcom (gpiozero's BCM pin names)
    // and QEMU; every family added after them is data only.
    const later = loadBoards().boards.map((b) => b.profile).filter((p) => !/^(brcm|linux|qemu),/.test(p.soc.compatible) && p.soc.id !== 'qemu-virt');
    assert.ok(later.some((p) => p.id === 'pine64-plus'), 'a board beyond the Pi is in boards/');
    const words = [...new Set(later.flatMap((p) => [...p.soc.compatible.split(','), p.soc.id, p.boot.uboot?.package ?? '', ...(p.boot.uboot?.raw ?? []).map((r) => r.file.split('/').pop()!)]))].filter((w) => w.length > 3);
    const files = [...sources(join(root, 'src')).filter((f) => !f.includes('/src/cli/')), ...sources(join(root, 'flash'))];
    const hits: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, 'utf8').toLowerCase();
      for (const w of words) if (text.includes(w.toLowerCase())) hits.push(`${f.slice(root.length + 1)}: ${w}`);
    }
    assert.ok(words.includes('allwinner') && words.includes('u-boot-sunxi') && words.includes('rockchip') && words.includes('idbloader.img'), words.join(' '));
    assert.deepEqual(hits, []);
  });
});
