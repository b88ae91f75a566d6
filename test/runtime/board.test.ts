import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { BspError, createImage, fileConfig, getBoard, readEnv } from '../../src/index.js';
import { createBoard, mockBackends, type MockBackends } from '../../src/runtime/board/index.js';
import { evalLine, i2cGrid, startBoardRepl, startupLines } from '../../src/runtime/repl-server.js';
import { mockFor } from '../../src/runtime/board/mock.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const profile = getBoard('rpi3b').profile;
const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;

function setup(base = 512): { m: MockBackends; board: ReturnType<typeof createBoard> } {
  const m = mockBackends({ chips: [{ label: 'raspberrypi-exp-gpio', base: base + 54, ngpio: 8 }, { label: 'pinctrl-bcm2835', base, ngpio: 54 }], leds: ['ACT'] });
  return { m, board: createBoard(profile, m) };
}

describe('board (mock backend)', () => {
  after(cleanupTemp);

  it('every name of a pin reaches the same pin object', () => {
    const { board } = setup();
    const p = board.GPIO17;
    for (const n of ['GPIO17', 'BCM17', 'BOARD11', 'J8:11', 'gpio17', 17] as const) assert.equal(board.pin(n), p, String(n));
    assert.equal((board as unknown as Record<string, unknown>).BOARD11, p);
    assert.equal(board.SDA, board.pin('GPIO2'));
    assert.equal(board.TXD, board.pin(14));
    assert.deepEqual([p.name, p.bcm, p.physical], ['GPIO17', 17, 11]);
  });

  it('the global number is the controller base (found by label) plus the line, whatever the kernel numbers', () => {
    assert.equal(setup(512).board.GPIO17.global, 529);
    assert.equal(setup(458).board.GPIO17.global, 475, 'Debian 6.1 numbering');
    const m = mockBackends({ chips: [{ label: 'pinctrl-bcm2711', base: 512, ngpio: 58 }], leds: [] });
    assert.throws(() => createBoard(profile, m).GPIO17.global, (e: unknown) => code('EGPIO_CHIP')(e) && /pinctrl-bcm2835.*found: pinctrl-bcm2711/.test((e as Error).message));
  });

  it("a board whose GPIO banks each number from 0 (rock64): board.GPIO2_A4 is gpio2's base + 4; board.pin(4) names the pins it could be", () => {
    const rock = getBoard('rock64').profile;
    const m = mockBackends({ chips: [0, 1, 2, 3].map((n) => ({ label: `gpio${n}`, base: 512 + 32 * n, ngpio: 32 })), leds: [] });
    const board = createBoard(rock, m);
    assert.equal(board.pin('GPIO2_A4').global, 512 + 64 + 4);
    assert.equal(board.pin('I2C1_SDA'), board.pin('GPIO2_A4'));
    assert.throws(() => board.pin(4), (e: unknown) => code('EPIN_AMBIGUOUS')(e) && /line 4 is on 3 pins of Pine64 ROCK64 \(GPIO3_A4 on PI2:15, GPIO2_A4 on PI2:27, GPIO1_A4 on PI2:38\).*use the pin's name/.test((e as Error).message));
  });

  it('write, value, read and watch', async () => {
    const { m, board } = setup();
    const led = board.GPIO17.write(1);
    assert.equal(led.value, 1);
    assert.equal(m.gpio.lines.get(529)?.value, 1);
    assert.equal(inspect(led), '<Pin GPIO17 J8:11 out value=1>');
    const button = board.pin('J8:13');
    assert.equal(await button.read(), 0);
    const seen: number[] = [];
    button.watch((v) => seen.push(v), { edge: 'rising' });
    m.gpio.setInput(board.GPIO27.global, 1);
    m.gpio.setInput(board.GPIO27.global, 0);
    m.gpio.setInput(board.GPIO27.global, 1);
    assert.deepEqual(seen, [1, 1]);
    assert.equal(`${button}`, '<Pin GPIO27 J8:13 in value=1>');
    button.close();
    assert.equal(button.opened, false);
  });

  it('power, ground and unknown pins are clear errors', () => {
    const { board } = setup();
    assert.throws(() => board.pin('BOARD1'), (e: unknown) => code('EPIN_POWER')(e) && /J8:1, a 3V3 pin/.test((e as Error).message));
    assert.throws(() => board.pin('J8:6'), code('EPIN_POWER'));
    assert.throws(() => board.pin('GPIO40'), code('EPIN_UNKNOWN'));
    assert.throws(() => board.pin(99), code('EPIN_UNKNOWN'));
    assert.throws(() => board.pin('GPIO40'), (e: unknown) => /use a name such as GPIO17, BCM17, BOARD11 or J8:11, or an alias/.test((e as Error).message));
  });

  it("names and hints come from the board's own header: qemu-virt's PL061 has no GPIO17", () => {
    const virt = getBoard('qemu-virt').profile;
    const board = createBoard(virt, mockFor(virt));
    assert.match(inspect(board), /pins board\.GPIO0 \/ board\.pin\('PL061:1'\), board\.pinout\(\), board\.leds/);
    assert.equal(board.pin('GPIO3').bcm, undefined);
    assert.equal(board.pin('GPIO3').line, 3);
    assert.throws(() => board.pin('BCM3'), code('EPIN_UNKNOWN'), 'BCM names are Broadcom SoCs\' only');
    assert.equal(setup().board.GPIO17.bcm, 17);
    assert.match(inspect(setup().board), /pins board\.GPIO17 \/ board\.pin\('J8:11'\), board\.pinout\(\), board\.i2c\(1\), board\.serial\('uart'\)/);
    assert.throws(() => board.pin('GPIO17'), (e: unknown) => code('EPIN_UNKNOWN')(e) && /use a name such as GPIO0, BOARD1 or PL061:1/.test((e as Error).message));
  });

  it('pinout marks opened pins with direction and value', () => {
    const { board } = setup();
    board.GPIO17.write(1);
    assert.equal(board.GPIO27.value, 0);
    const text = board.pinout();
    assert.match(text, /GPIO17 \[out 1\] \(11\) \(12\) GPIO18/);
    assert.match(text, /GPIO27 \[in 0\] \(13\) \(14\) GND/);
    assert.deepEqual(board.opened().map((p) => p.name), ['GPIO17', 'GPIO27']);
  });

  it("i2c: the profile's first bus by default, scan and register reads through the promise API; a missing bus is EI2C_BUS", async () => {
    const m = mockFor(profile);
    const board = createBoard(profile, m);
    const bus = await board.i2c();
    assert.deepEqual(await bus.scan(), [0x48]);
    assert.equal(await bus.readByte(0x48, 0), 0x19);
    await bus.writeByte(0x48, 2, 0x55);
    assert.equal(await bus.readByte(0x48, 2), 0x55);
    await assert.rejects(board.i2c(3), (e: unknown) => code('EI2C_BUS')(e) && /no I2C bus 3 .*the buses are 1 \(i2c1 \(mock\)\)/.test((e as Error).message));
    const virt = getBoard('qemu-virt').profile;
    await assert.rejects(createBoard(virt, mockFor(virt)).i2c(), (e: unknown) => code('EI2C_BUS')(e) && /has no I2C bus in its profile/.test((e as Error).message));
    assert.match(i2cGrid([0x48, 0x50]), /^40: -- -- -- -- -- -- -- -- 48 /m);
  });

  it('takes the REPL startup lines from nodeos.run= kernel arguments, quoted or not, in order', () => {
    const cmdline = 'console=ttyS1,115200 nodeos.run=board.GPIO17.write(1) TERM=dumb nodeos.run="require(\'fs\').readdirSync(\'/sys/class/gpio\')" nodeos.run= nodeos.runx=1 xnodeos.run=2 nodeos.run="a = 1 + 2"\n';
    assert.deepEqual(startupLines(cmdline), ['board.GPIO17.write(1)', "require('fs').readdirSync('/sys/class/gpio')", 'a = 1 + 2']);
    assert.deepEqual(startupLines('console=ttyS1,115200 nodeos.build=abc'), []);
  });

  it('serial: by bus id or path; the console UART is refused', async () => {
    const { board } = setup();
    assert.throws(() => board.serial('uart'), (e: unknown) => code('ESERIAL')(e) && /console/.test((e as Error).message));
    assert.throws(() => board.serial('nope'), code('ESERIAL'));
    const port = board.serial('/dev/ttyAMA0', { baudRate: 9600 });
    const got = new Promise<Buffer>((r) => port.on('data', r));
    port.write('ping');
    assert.equal((await got).toString(), 'ping');
  });

  it('leds from the profile by sysfs name', () => {
    const { m, board } = setup();
    board.leds.act!.on();
    assert.equal(m.leds.state.get('ACT')?.brightness, '1');
    assert.equal(board.leds.act!.trigger, 'none');
    board.leds.act!.trigger = 'heartbeat';
    assert.equal(board.leds.act!.trigger, 'heartbeat');
  });

  it('env: the running system\'s uboot.env through uboot-env', () => {
    const file = join(tempDir(), 'uboot.env');
    writeFileSync(file, createImage('bootdelay=0\nbootcmd=boot\n', { size: 0x4000 }));
    const m = mockBackends({ chips: [], leds: [] });
    const board = createBoard(profile, m, { env: fileConfig(file) });
    assert.equal(board.env.get('bootdelay'), '0');
    board.env.set('bootdelay', '3');
    board.env.delete('bootcmd');
    assert.deepEqual(Object.fromEntries(readEnv(fileConfig(file)).vars), { bootdelay: '3' });
  });

  it('env on the mock without an env file is EENV_NONE: the host\'s /boot/uboot.env is never read or written', () => {
    const board = createBoard(profile, mockFor(profile));
    for (const use of [() => board.env.all(), () => board.env.get('bootdelay'), () => board.env.set('bootdelay', '1')]) {
      assert.throws(use, (e: unknown) => e instanceof BspError && e.code === 'EENV_NONE' && /--env-file/.test(e.message));
    }
    assert.match(inspect(board.env), /none/);
  });

  it('info decodes the revision; reboot and poweroff go to the system backend', () => {
    const m = mockFor(profile);
    const board = createBoard(profile, m);
    const info = board.info;
    assert.equal(info.revision, 'a02082');
    assert.deepEqual(info.decoded, { memoryMiB: 1024, manufacturer: 'Sony UK', processor: 'BCM2837', type: 8, revision: 2 });
    assert.equal(info.memoryMiB, 926);
    board.reboot();
    board.poweroff();
    assert.deepEqual(m.actions, ['reboot', 'poweroff']);
  });
});

describe('evaluating lines as if typed (nodeos.run=, ssh EXPR)', () => {
  it('a line that throws is taken from the REPL\'s domain: the next line still runs', async () => {
    const { PassThrough } = await import('node:stream');
    const out = new PassThrough();
    let printed = '';
    out.on('data', (d: Buffer) => (printed += d.toString()));
    const { board } = setup();
    const server = startBoardRepl(board, { input: new PassThrough(), output: out, ownContext: true, terminal: false, prompt: '' });
    try {
      const a = await evalLine(server, "board.pin('GPIO99')", 'test');
      assert.equal(a.ok, false);
      assert.ok(!a.ok && a.reported && /GPIO99/.test(String((a.error as Error).message)));
      const b = await evalLine(server, 'await Promise.resolve(6 * 7)', 'test');
      assert.deepEqual(b, { ok: true, value: 42 });
      // The REPL printed the first error itself.
      assert.match(printed, /Uncaught[\s\S]*GPIO99/);
    } finally {
      server.close();
    }
  });
});
