import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError, Cache, deviceTree } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe('device tree overlays at build time (needs device-tree-compiler)', () => {
  after(cleanupTemp);

  function setup(): { dtbDir: string; overlays: string; cache: Cache } {
    const root = tempDir();
    const dtbDir = join(root, 'dtbs');
    mkdirSync(join(dtbDir, 'broadcom'), { recursive: true });
    const dts = '/dts-v1/;\n/ { compatible = "raspberrypi,3-model-b"; soc { i2c1: i2c@7e804000 { compatible = "brcm,bcm2835-i2c"; status = "disabled"; }; }; };\n';
    execFileSync('dtc', ['-@', '-q', '-I', 'dts', '-O', 'dtb', '-o', join(dtbDir, 'broadcom/test.dtb')], { input: dts });
    const overlays = join(root, 'overlays');
    mkdirSync(overlays);
    writeFileSync(join(overlays, 'i2c1-on.dtso'), '/dts-v1/;\n/plugin/;\n&i2c1 { status = "okay"; clock-frequency = <100000>; };\n');
    writeFileSync(join(overlays, 'broken.dtso'), '/dts-v1/;\n/plugin/;\n&nosuchlabel { status = "okay"; };\n');
    return { dtbDir, overlays, cache: new Cache(join(root, 'cache')) };
  }

  it('applies the overlays with fdtoverlay; the result shows the change', () => {
    const { dtbDir, overlays, cache } = setup();
    const dtb = deviceTree({ devicetree: { dtb: 'broadcom/test.dtb', overlays: ['i2c1-on'] } }, dtbDir, overlays, cache);
    const text = execFileSync('dtc', ['-q', '-I', 'dtb', '-O', 'dts'], { input: dtb }).toString();
    assert.match(text, /i2c@7e804000 \{[^}]*status = "okay";/);
    assert.match(text, /clock-frequency = <0x186a0>;/);
  });

  it('an overlay that does not apply is EOVERLAY; a missing one or a missing DTB is EARTIFACT', () => {
    const { dtbDir, overlays, cache } = setup();
    const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;
    assert.throws(() => deviceTree({ devicetree: { dtb: 'broadcom/test.dtb', overlays: ['broken'] } }, dtbDir, overlays, cache), code('EOVERLAY'));
    assert.throws(() => deviceTree({ devicetree: { dtb: 'broadcom/test.dtb', overlays: ['nope'] } }, dtbDir, overlays, cache), code('EARTIFACT'));
    assert.throws(() => deviceTree({ devicetree: { dtb: 'broadcom/none.dtb', overlays: [] } }, dtbDir, overlays, cache), code('EARTIFACT'));
  });
});
