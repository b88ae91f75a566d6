/**
 * One contract for the backends of `board` (as serialport's bindings share one test suite):
 * the same cases run against the mock and against the Linux backend on a sysfs tree in a
 * temporary directory (test/helpers/fake-sysfs.ts), so the Linux backend is tested without
 * QEMU and the mock cannot drift from it. Which I2C buses and UARTs exist is part of the
 * contract; talking to them needs device nodes and ioctls, proven under QEMU (i2c.e2e.ts,
 * serial.e2e.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError } from '../../src/errors.js';
import type { Backends } from '../../src/runtime/board/backend.js';
import { linuxBackends } from '../../src/runtime/board/linux.js';
import { createBoard } from '../../src/runtime/board/index.js';
import { getBoard } from '../../src/index.js';
import { mockBackends } from '../../src/runtime/board/mock.js';
import { fakeSysfs, type SysfsWorld } from '../helpers/fake-sysfs.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const WORLD: SysfsWorld = {
  chips: [
    { label: 'pinctrl-bcm2835', base: 512, ngpio: 54 },
    { label: 'raspberrypi-exp-gpio', base: 566, ngpio: 8 },
  ],
  leds: ['mmc0', 'ACT', 'PWR'],
  // As a Pi 4 may list them with i2c-dev loaded: the HDMI DDC controllers probed first and took
  // 0 and 1, the header's bus is 3; and a USB adapter with no device-tree node. Given unsorted.
  i2c: [
    { bus: 3, name: 'bcm2835 (i2c@7e804000)', node: '/soc/i2c@7e804000' },
    { bus: 1, name: 'brcmstb (i2c@7ef09500)', node: '/soc/i2c@7ef09500' },
    { bus: 0, name: 'brcmstb (i2c@7ef04500)', node: '/soc/i2c@7ef04500' },
    { bus: 7, name: 'CP2112 SMBus Bridge' },
  ],
  ttys: ['/dev/ttyS1', '/dev/ttyAMA0'],
};

const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;

interface Subject {
  name: string;
  make(): Promise<{ b: Backends; stop: () => Promise<void>; sys?: string }>;
}

const SUBJECTS: Subject[] = [
  { name: 'mock', make: async () => ({ b: mockBackends({ chips: WORLD.chips, leds: WORLD.leds, i2c: WORLD.i2c, ttys: WORLD.ttys }), stop: async () => undefined }) },
  {
    name: 'Linux on a temporary sysfs',
    make: async () => {
      const sys = tempDir('nodeos-bsp-sysfs-');
      return { b: linuxBackends({ sys }), stop: fakeSysfs(sys, WORLD), sys };
    },
  },
];

for (const subject of SUBJECTS) {
  describe(`board backend contract: ${subject.name}`, () => {
    let b: Backends;
    let stop: () => Promise<void>;
    let sys: string | undefined;
    before(async () => ({ b, stop, sys } = await subject.make()));
    after(async () => {
      await stop();
      cleanupTemp();
    });

    it('lists the GPIO controllers by label with their bases, and finds one by label', () => {
      assert.deepEqual([...b.gpio.chips()].sort((x, y) => x.base - y.base), WORLD.chips);
      assert.deepEqual(b.gpio.chip('raspberrypi-exp-gpio'), WORLD.chips[1]);
      assert.equal(b.gpio.chip('gpio-mockup'), undefined);
    });

    it('an output line reads back what is written, synchronously and not', async () => {
      const line = b.gpio.open(512 + 17, 'out');
      assert.equal(line.direction, 'out');
      line.write(1);
      assert.equal(line.read(), 1);
      assert.equal(await line.readAsync(), 1);
      line.write(0);
      assert.equal(line.read(), 0);
      line.close();
    });

    it('an input line refuses writes (EGPIO_INPUT) until it is made an output', () => {
      const line = b.gpio.open(512 + 27, 'in');
      assert.equal(line.direction, 'in');
      assert.throws(() => line.write(1), code('EGPIO_INPUT'));
      line.setDirection('out');
      assert.equal(line.direction, 'out');
      line.write(1);
      assert.equal(line.read(), 1);
      line.close();
    });

    it('a line no controller has is EGPIO_LINE, naming the controllers', () => {
      assert.throws(() => b.gpio.open(400, 'in'), (e: unknown) => code('EGPIO_LINE')(e) && /pinctrl-bcm2835 512-565, raspberrypi-exp-gpio 566-573/.test((e as Error).message));
      assert.throws(() => b.gpio.open(574, 'out'), code('EGPIO_LINE'));
    });

    it('a closed line can be opened again; the expander\'s lines work like the SoC\'s', async () => {
      const a = b.gpio.open(566 + 2, 'out');
      a.write(1);
      a.close();
      // The fake kernel answers from another thread; the real one before write() returns.
      if (sys) await until(() => !existsSync(join(sys!, 'class/gpio/gpio568')), 'gpio568 unexported on close');
      const again = b.gpio.open(566 + 2, 'out');
      again.write(1);
      assert.equal(again.read(), 1);
      again.close();
    });

    it('LEDs: sorted sysfs names, brightness written and read back, the active trigger bracketed, an unknown name is ELED_UNKNOWN', () => {
      assert.deepEqual(b.leds.list(), [...WORLD.leds].sort());
      b.leds.write('ACT', 'brightness', '1');
      assert.equal(b.leds.read('ACT', 'brightness'), '1');
      assert.equal(b.leds.read('ACT', 'max_brightness'), '1');
      assert.match(b.leds.read('PWR', 'trigger'), /\[none\]/);
      assert.throws(() => b.leds.read('led7', 'brightness'), (e: unknown) => code('ELED_UNKNOWN')(e) && /ACT, PWR, mmc0/.test((e as Error).message));
      assert.throws(() => b.leds.write('../../gpio/export', 'brightness', '1'), code('ELED_UNKNOWN'));
      if (sys) assert.equal(readFileSync(join(sys, 'class/gpio/export'), 'utf8'), '', 'nothing written outside the LEDs');
    });

    it('I2C: the adapters i2c-dev lists, sorted by bus; a bus it does not list is EI2C_BUS, naming them', async () => {
      assert.deepEqual(b.i2c.list(), [...WORLD.i2c].sort((x, y) => x.bus - y.bus));
      await assert.rejects(b.i2c.open(2), (e: unknown) => code('EI2C_BUS')(e) && /no I2C bus 2 \(\/dev\/i2c-2\): the buses are 0 \(brcmstb \(i2c@7ef04500\)\), 1 \(brcmstb \(i2c@7ef09500\)\), 3 \(bcm2835 \(i2c@7e804000\)\), 7 \(CP2112 SMBus Bridge\)/.test((e as Error).message));
    });

    it("I2C: board.i2c() opens the header's bus by its device-tree node, whatever number it got; a number still wins when given", async () => {
      const opened: number[] = [];
      const board = createBoard(getBoard('rpi4b').profile, { ...b, i2c: { list: () => b.i2c.list(), open: async (n) => (opened.push(n), {} as never) } });
      await board.i2c();
      await board.i2c(1);
      assert.deepEqual(opened, [3, 1]);
      // A board whose tree node is not listed (i2c-dev not loaded for it): the profile's device number.
      const none = createBoard(getBoard('rpi4b').profile, { ...b, i2c: { list: () => [], open: async (n) => (opened.push(n), {} as never) } });
      await none.i2c();
      assert.deepEqual(opened, [3, 1, 1]);
    });

    it('Wi-Fi: an SSID or passphrase WPA cannot take is EWIFI_SETTING, the passphrase never in the message', async () => {
      await assert.rejects(b.wifi.connect('home', 'seven77'), (e: unknown) => code('EWIFI_SETTING')(e) && /8 to 63/.test((e as Error).message) && !(e as Error).message.includes('seven77'));
      await assert.rejects(b.wifi.connect('x'.repeat(33), 'correct horse battery'), (e: unknown) => code('EWIFI_SETTING')(e) && /33 bytes/.test((e as Error).message));
      await assert.rejects(b.wifi.connect('home', 'caf\u00e9 passphrase'), (e: unknown) => code('EWIFI_SETTING')(e) && !(e as Error).message.includes('caf'));
      // A priority goes into wpa_supplicant.conf: anything but a whole number 0..1000 (a string
      // closing the network block and opening another) is refused the same way.
      for (const priority of ['1\n}\nnetwork={\n\tkey_mgmt=NONE', -1, 1.5, 1001, Number.NaN] as unknown as number[]) {
        await assert.rejects(b.wifi.connect('home', 'correct horse battery', { priority }), (e: unknown) => code('EWIFI_SETTING')(e) && /priority must be a whole number from 0 to 1000/.test((e as Error).message), String(priority));
      }
    });

    it('serial: the ttys with a device behind them, sorted', () => {
      assert.deepEqual(b.serial.list(), [...WORLD.ttys].sort());
    });
  });
}
