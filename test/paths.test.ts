/** Paths from profiles stay inside their folder, whatever the profile says (no root needed). */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError } from '../src/index.js';
import { applyOverlays } from '../src/devicetree/index.js';
import { insideRoot, profilePathProblem } from '../src/paths.js';
import { cleanupTemp, tempDir } from './helpers/tmp.js';

const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;

describe('profile paths stay inside their root', () => {
  after(cleanupTemp);

  it('plain relative paths pass; absolute, .., empty segments and backslashes do not', () => {
    for (const ok of ['rpi_arm64/u-boot.bin', 'broadcom/bcm2837-rpi-3-b.dtb', 'soc/bcm283x.config', 'a..b']) assert.equal(profilePathProblem(ok), undefined, ok);
    for (const bad of ['/etc/shadow', '../x', 'a/../../x', 'a//b', './a', 'a\\b', '', 'a\0b']) assert.notEqual(profilePathProblem(bad), undefined, JSON.stringify(bad));
  });

  it('a symlink inside the root that points outside is refused', () => {
    const root = tempDir();
    const outside = tempDir();
    writeFileSync(join(outside, 'secret'), 'x');
    mkdirSync(join(root, 'dir'));
    symlinkSync(join(outside, 'secret'), join(root, 'dir', 'link'));
    writeFileSync(join(root, 'dir', 'ok'), 'y');
    assert.equal(insideRoot(root, 'dir/ok', 'f'), join(root, 'dir', 'ok'));
    assert.throws(() => insideRoot(root, 'dir/link', 'f'), code('EPROFILE_PATH'));
    assert.throws(() => insideRoot(root, '../x', 'f'), code('EPROFILE_PATH'));
  });

  it('an overlay name with .. is EPROFILE_PATH before dtc ever runs', () => {
    const dir = tempDir();
    assert.throws(() => applyOverlays(Buffer.alloc(0), ['../../etc/evil'], join(dir, 'overlays'), join(dir, 'scratch')), code('EPROFILE_PATH'));
  });
});
