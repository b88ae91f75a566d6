import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError, variantOverlay, variantOverlaySource } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** A DTB from source, by dtc. */
const dtb = (body: string): Buffer => execFileSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb'], { input: `/dts-v1/;\n/ {\n${body}\n};\n` });

/** A tree as dtc prints it, sorted: what two trees are compared by. */
const dts = (b: Buffer): string => execFileSync('dtc', ['-q', '-s', '-I', 'dtb', '-O', 'dts'], { input: b, encoding: 'utf8' });

// A board tree like the Pi 5's: a pin controller whose compatible and register size change on
// another stepping, and a UART whose interrupt does; the clock is referenced by phandle.
const C1 = `compatible = "raspberrypi,5-model-b";
  clk: clock { #clock-cells = <0>; phandle = <1>; };
  soc { pinctrl@7d504100 { compatible = "brcm,bcm2712c0-pinctrl"; reg = <0x7d504100 0x30>; };
        serial@7d001000 { compatible = "arm,pl011"; interrupts = <0 121 4>; clocks = <&clk>; }; };`;
const D0 = C1.replace('bcm2712c0-pinctrl', 'bcm2712d0-pinctrl').replace('0x7d504100 0x30', '0x7d504100 0x20').replace('<0 121 4>', '<0 120 4>').replace('clocks = <&clk>;', 'clocks = <&clk>; gpio-line-names = "TX", "RX";');

describe('device tree variants: the overlay a board\'s firmware applies on another revision (needs device-tree-compiler)', () => {
  after(cleanupTemp);

  it('sets exactly the properties that differ or are new, and fdtoverlay with it makes the revision\'s tree', () => {
    const src = variantOverlaySource(dtb(C1), dtb(D0));
    assert.match(src, /target-path = "\/soc\/pinctrl@7d504100";/);
    assert.match(src, /target-path = "\/soc\/serial@7d001000";/);
    assert.doesNotMatch(src, /clocks|phandle|"\/clock"/, 'unchanged properties and nodes are left alone');
    const dtbo = variantOverlay(dtb(C1), dtb(D0), join(tempDir(), 'scratch'), 'D0');
    const dir = tempDir();
    writeFileSync(join(dir, 'c1.dtb'), dtb(C1));
    writeFileSync(join(dir, 'd0.dtbo'), dtbo);
    execFileSync('fdtoverlay', ['-i', join(dir, 'c1.dtb'), '-o', join(dir, 'out.dtb'), join(dir, 'd0.dtbo')]);
    assert.equal(dts(readFileSync(join(dir, 'out.dtb'))), dts(dtb(D0)));
  });

  it('the same tree needs an overlay with nothing in it', () => {
    assert.doesNotMatch(variantOverlaySource(dtb(C1), dtb(C1)), /fragment/);
  });

  const refused = (base: string, variant: string, why: RegExp): void => {
    assert.throws(
      () => variantOverlaySource(dtb(base), dtb(variant), 'D0'),
      (e: unknown) => e instanceof BspError && e.code === 'EDTB_VARIANT' && why.test(e.message) && /give that revision a DTB name of its own/.test(e.message),
    );
  };

  it('refuses what an overlay cannot do: a node added or gone, a property gone, a node renumbered', () => {
    refused(C1, C1.replace('soc {', 'soc { watchdog { };'), /D0 adds the node \/soc\/watchdog/);
    refused(C1.replace('soc {', 'soc { watchdog { };'), C1, /D0 has no node \/soc\/watchdog/);
    refused(C1, C1.replace(' reg = <0x7d504100 0x30>;', ''), /D0 has no \/soc\/pinctrl@7d504100:reg/);
    refused(C1, C1.replace('phandle = <1>', 'phandle = <2>').replace('<&clk>', '<2>'), /\/clock has another phandle in D0/);
  });
});
