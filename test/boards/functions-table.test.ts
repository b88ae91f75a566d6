import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { functionsTable, loadBoards, packageRoot } from '../../src/index.js';

/** The README's per-function table as rows of cells by board id. */
function cells(): Map<string, Record<string, string>> {
  const lines = functionsTable().split('\n').filter((l) => l.startsWith('| `'));
  const head = functionsTable().split('\n')[0]!.split('|').map((c) => c.trim()).filter(Boolean).slice(1);
  return new Map(
    lines.map((l) => {
      const c = l.split('|').map((x) => x.trim()).filter(Boolean);
      return [c[0]!.replace(/`/g, ''), Object.fromEntries(head.map((h, i) => [h, c[i + 1]!]))];
    }),
  );
}

describe("the README's per-function table (how each board's functions are proven)", () => {
  it('emulation only where an emulated test uses the board\'s own part; the boot model where the profile claims the function; none is left unproven on a supported Pi', () => {
    const t = cells();
    assert.equal(t.get('rpi3b')!.card, 'emulation + boot model');
    assert.equal(t.get('rpi3b')!.usb, 'emulation + boot model', 'network.e2e: usb-net on the DWC2');
    assert.equal(t.get('rpi4b')!.console, 'boot model', 'the emulated Pi 4 runs its console on the PL011, not the board\'s mini UART');
    assert.equal(t.get('rpi4b')!.usb, 'boot model', 'the VL805 is not emulated');
    assert.equal(t.get('rpi5b')!.card, 'boot model', 'no QEMU machine');
    assert.equal(t.get('rpi5b')!.i2c, '-', 'no header I2C in the mainline tree');
    assert.equal(t.get('rpi3aplus')!.ethernet, '-', 'the 3A+ has none');
    assert.match(t.get('rpi3b')!.ethernet!, /^boot model \(\d+\)$/, 'with a note on the PHY');
    assert.match(functionsTable(), /rpi3b ethernet: not the PHY driver \(smsc/);
    for (const [id, row] of t) for (const [f, c] of Object.entries(row)) assert.doesNotMatch(c, /not proven/, `${id} ${f}`);
    assert.ok(!t.has('rpi0w'), 'unsupported boards are not in it');
  });

  it("a profile's emulation.covers names a function an emulated test file really uses on that board", () => {
    const FILES: Record<string, string> = { i2c: 'i2c.e2e.ts', usb: 'network.e2e.ts' };
    for (const { profile: p } of loadBoards().boards) {
      for (const f of p.emulation?.qemu.covers ?? []) {
        assert.ok(FILES[f], `${p.id}: no emulated test file is known for ${f}`);
        const src = readFileSync(join(packageRoot(), 'test/e2e', FILES[f]!), 'utf8');
        assert.ok(src.includes(`'${p.id}'`), `${FILES[f]} boots ${p.id}`);
      }
    }
  });
});
