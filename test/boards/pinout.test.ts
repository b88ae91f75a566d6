import assert from 'node:assert/strict';
import { findPin, getBoard, headerPins, renderPinout } from '../../src/index.js';

/**
 * The Raspberry Pi 40-pin J8 header as gpiozero's pins/data.py (J8 for the 40-pin models)
 * and the Raspberry Pi documentation give it: [physical pin, label].
 */
const J8: [number, string][] = [
  [1, '3V3'], [2, '5V'], [3, 'GPIO2'], [4, '5V'], [5, 'GPIO3'], [6, 'GND'], [7, 'GPIO4'], [8, 'GPIO14'],
  [9, 'GND'], [10, 'GPIO15'], [11, 'GPIO17'], [12, 'GPIO18'], [13, 'GPIO27'], [14, 'GND'], [15, 'GPIO22'],
  [16, 'GPIO23'], [17, '3V3'], [18, 'GPIO24'], [19, 'GPIO10'], [20, 'GND'], [21, 'GPIO9'], [22, 'GPIO25'],
  [23, 'GPIO11'], [24, 'GPIO8'], [25, 'GND'], [26, 'GPIO7'], [27, 'GPIO0'], [28, 'GPIO1'], [29, 'GPIO5'],
  [30, 'GND'], [31, 'GPIO6'], [32, 'GPIO12'], [33, 'GPIO13'], [34, 'GND'], [35, 'GPIO19'], [36, 'GPIO16'],
  [37, 'GPIO26'], [38, 'GPIO20'], [39, 'GND'], [40, 'GPIO21'],
];

describe('pinout', () => {
  const rpi3b = getBoard('rpi3b').profile;

  it('draws every one of the 40 pins of rpi3b against the reference table', () => {
    const text = renderPinout(rpi3b, { info: false });
    const rows = text.trimEnd().split('\n');
    assert.equal(rows[0], 'J8:');
    assert.equal(rows.length, 21);
    for (let i = 0; i < 20; i++) {
      const [lpin, llabel] = J8[2 * i]!;
      const [rpin, rlabel] = J8[2 * i + 1]!;
      const m = /^\s*(\S+)\s+\((\d+)\)\s+\((\d+)\)\s+(\S+)$/.exec(rows[i + 1]!);
      assert.ok(m, `row ${i + 1}: ${rows[i + 1]}`);
      assert.deepEqual([m[1], Number(m[2]), Number(m[3]), m[4]], [llabel, lpin, rpin, rlabel]);
    }
    // gpiozero layout: left labels right-aligned, numbers in brackets.
    assert.ok(rows.includes('GPIO17 (11) (12) GPIO18'));
    assert.ok(rows.includes('   3V3  (1) (2)  5V'));
    assert.ok(rows.includes('   GND (39) (40) GPIO21'));
  });

  it('puts the board summary above the header', () => {
    const text = renderPinout(rpi3b);
    assert.match(text, /^Board\s+: Raspberry Pi 3 Model B \(rpi3b\)$/m);
    assert.match(text, /^SoC\s+: BCM2837 \(4x Cortex-A53\)$/m);
    assert.match(text, /^Console\s+: ttyS1 115200 baud/m);
    assert.ok(text.indexOf('Board') < text.indexOf('J8:'));
  });

  it('every 40-pin board shares the J8 map', () => {
    for (const id of ['rpi3bplus', 'rpi3aplus', 'rpi0-2w', 'rpi4b', 'rpi400', 'rpi5b', 'rpi0w', 'rpi1bplus']) {
      assert.deepEqual(headerPins(getBoard(id).profile).map((p) => [p.pin, p.label]), J8, id);
    }
  });

  it('names pins the gpiozero way and finds them by any name', () => {
    const p = headerPins(rpi3b).find((x) => x.pin === 11)!;
    assert.deepEqual(p.names, ['GPIO17', 'BCM17', 'BOARD11', 'J8:11']);
    for (const name of ['GPIO17', 'bcm17', 'BOARD11', 'J8:11', 17, '17']) {
      const r = findPin(rpi3b, name);
      assert.ok(r.ok && r.pin.pin === 11, String(name));
    }
    const sda = findPin(rpi3b, 'SDA');
    assert.ok(sda.ok && sda.pin.line === 2 && sda.pin.pin === 3);
    const txd = findPin(rpi3b, 'TXD');
    assert.ok(txd.ok && txd.pin.line === 14);
  });

  it("a board whose SoC names its pins (pine64-plus): board.PL10 is the R_PIO's line 10 on pin 7, and no pin is GPIO10", () => {
    const pine = getBoard('pine64-plus').profile;
    const p = headerPins(pine).find((x) => x.pin === 7)!;
    assert.deepEqual([p.label, p.line, p.controller, p.names], ['PL10', 10, 'r-pio', ['PL10', 'BOARD7', 'PI2:7', 'S_PWM']]);
    for (const name of ['PL10', 'pl10', 'BOARD7', 'PI2:7']) {
      const r = findPin(pine, name);
      assert.ok(r.ok && r.pin.pin === 7, name);
    }
    const sda = findPin(pine, 'SDA');
    assert.ok(sda.ok && sda.pin.label === 'PH3' && sda.pin.line === 227 && sda.pin.controller === 'pio');
    assert.deepEqual(findPin(pine, 'GPIO10'), { ok: false, reason: 'unknown' });
  });

  it("a board whose GPIO banks each number from 0 (rock64): pins answer to their bank names; a bare line number on several pins is ambiguous, never the first one found", () => {
    const rock = getBoard('rock64').profile;
    const r = findPin(rock, 'GPIO2_A4');
    assert.ok(r.ok && r.pin.pin === 27 && r.pin.controller === 'gpio2' && r.pin.line === 4);
    const four = findPin(rock, 4);
    assert.ok(!four.ok && four.reason === 'ambiguous');
    assert.deepEqual(four.pins.map((p) => p.label), ['GPIO3_A4', 'GPIO2_A4', 'GPIO1_A4']);
    const i2c = findPin(rock, 'I2C1_SDA');
    assert.ok(i2c.ok && i2c.pin.label === 'GPIO2_A4');
    // The board summary names a bus's pins as the header does.
    assert.match(renderPinout(rock), /I2C +: \/dev\/i2c-1 SDA=GPIO2_A4 SCL=GPIO2_A5/);
    assert.match(renderPinout(getBoard('pine64-plus').profile), /I2C +: \/dev\/i2c-1 SDA=PH3 SCL=PH2/);
  });

  it('power, ground and missing pins are reported as such', () => {
    assert.deepEqual(findPin(rpi3b, 'BOARD1'), { ok: false, reason: 'not-gpio', pin: headerPins(rpi3b)[0] });
    const gnd = findPin(rpi3b, 'J8:6');
    assert.ok(!gnd.ok && gnd.reason === 'not-gpio' && gnd.pin?.label === 'GND');
    assert.deepEqual(findPin(rpi3b, 'GPIO40'), { ok: false, reason: 'unknown' });
    assert.deepEqual(findPin(rpi3b, 'BOARD41'), { ok: false, reason: 'unknown' });
  });
});
