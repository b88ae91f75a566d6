/**
 * The screen and keyboard console (QEMU raspi3b, through U-Boot from the card): U-Boot's
 * framebuffer handed to Linux as simple-framebuffer, a REPL on tty1 read from a USB keyboard
 * (QEMU's usb-kbd, keys typed with the monitor's sendkey), the screen read back from the
 * guest's /dev/vcs1, and a screenshot (the monitor's screendump) kept in out/e2e-screen/.
 * The image is built with --keyboard de: keys are typed where a German keyboard has them, and
 * the key a US keyboard calls Z gives the German Y.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { getBoard, prepareEmulation, startEmulation } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { monitor, monitorAll } from '../helpers/monitor.js';
import { e2eOut } from '../helpers/out.js';

const OUT = e2eOut('screen');
const PROMPT = /\n> $/;

/** A binary PPM (P6, as QEMU's screendump writes) as a PNG, so the screenshot opens anywhere. */
function ppmToPng(ppm: Buffer): Buffer {
  const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(ppm.toString('latin1', 0, 64));
  assert.ok(m, 'a P6 PPM');
  const [w, h] = [Number(m[1]), Number(m[2])];
  const px = ppm.subarray(m[0].length);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) px.copy(raw, y * (w * 3 + 1) + 1, y * w * 3, (y + 1) * w * 3);
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** `board.GPIO17.write(1)` and Enter, as QEMU key names (US positions) on a German keyboard: ( and ) are Shift-8 and Shift-9. */
const GPIO_LINE_DE = ['b', 'o', 'a', 'r', 'd', 'dot', 'shift-g', 'shift-p', 'shift-i', 'shift-o', '1', '7', 'dot', 'w', 'r', 'i', 't', 'e', 'shift-8', '1', 'shift-9', 'ret'];

describe('rpi3b screen and keyboard (QEMU raspi3b, usb-kbd)', () => {
  it('a REPL on tty1 evaluates what is typed on the USB keyboard, with the German layout set at build time', async function () {
    this.timeout(1_200_000);
    const b = await runCli('build', '--board', 'rpi3b', '--out', OUT, '--keyboard', 'de', '--json');
    assert.equal(b.code, 0, b.err);
    const sock = join(OUT, 'monitor.sock');
    const e = prepareEmulation(join(OUT, 'nodeos-rpi3b.img'), getBoard('rpi3b').profile, { monitorSocket: sock, extraArgs: ['-device', 'usb-kbd'], net: false });
    const c = new Console(startEmulation(e, 'pipe'));
    try {
      await c.waitFor(PROMPT, 300_000, 0);
      assert.equal(await c.eval('board.info.settings.keyboard'), "'de'");
      assert.equal(await c.eval('board.info.settings.problems.length'), '0');
      // The kernel put a console on U-Boot's framebuffer; the keyboard arrives over USB (dwc2, usbhid).
      assert.match(await c.eval("require('fs').readFileSync('/proc/fb', 'utf8')"), /simple/);
      // The screen's text, 80 columns a row (base64: the REPL prints it as one line).
      const readScreen = async (): Promise<string> => {
        const b64 = await c.eval("Buffer.from(require('fs').readFileSync('/dev/vcs1', 'latin1').match(/.{80}/g).map((l) => l.trimEnd()).join('\\n')).toString('base64')");
        return Buffer.from(b64.replace(/'/g, ''), 'base64').toString('latin1');
      };
      for (let i = 0; i < 120 && !(await c.eval("require('fs').readFileSync('/proc/bus/input/devices', 'utf8').includes('QEMU USB Keyboard')")).includes('true'); i++) await new Promise((r) => setTimeout(r, 1000));
      // QEMU holds each key 100 ms; a guest slowed down by another emulated board (CI runs two)
      // can see that as longer than the 250 ms repeat delay and type a letter twice. The
      // keyboard's repeat delay goes to 60 s through its event device (an EV_REP event, as
      // kbdrate sets it): struct input_event is 24 bytes on arm64 (timeval 16, type, code, value).
      const handlers = await c.eval("require('fs').readFileSync('/proc/bus/input/devices', 'utf8').split('\\n\\n').find((d) => d.includes('QEMU USB Keyboard')).match(/event\\d+/)[0]");
      assert.match(handlers, /^'event\d+'$/);
      await c.eval(`{ const e = Buffer.alloc(24); e.writeUInt16LE(0x14, 16); e.writeUInt16LE(0, 18); e.writeInt32LE(60000, 20); require('fs').writeFileSync('/dev/input/' + ${handlers}, e) }`);
      // The screen's REPL is a second Node process started with the serial one; with another
      // emulated board beside this one (CI runs two), it can print its prompt minutes later.
      // No display connector under QEMU (U-Boot's simple framebuffer): the screen's REPL starts
      // when Enter is pressed there, as BusyBox init's askfirst; until then no second REPL runs.
      let asked = '';
      for (let i = 0; i < 120 && !asked.includes('Please press Enter to activate this console.'); i++) {
        if (i) await new Promise((r) => setTimeout(r, 1000));
        asked = await readScreen();
      }
      assert.match(asked, /Please press Enter to activate this console\./, asked);
      assert.doesNotMatch(asked, /^>( |$)/m, 'no REPL on the screen before Enter');
      await monitorAll(sock, ['sendkey ret']);
      let first = '';
      // Rows are read with their trailing blanks trimmed: a prompt on the last row is a lone '>'.
      const prompt = /^>( |$)/m;
      for (let i = 0; i < 240 && !prompt.test(first); i++) {
        if (i) await new Promise((r) => setTimeout(r, 1000));
        first = await readScreen();
      }
      writeFileSync(join(OUT, 'screen-boot.txt'), first);
      const serial = c.output.split('\n').filter((l) => !l.includes('/dev/vcs1') && l.length < 200).slice(-30).join('\n');
      assert.match(first, prompt, `the REPL prompt is on the screen; the screen shows:\n${first}\nand the serial console's last lines:\n${serial}`);
      assert.match(first, /nodeos: Raspberry Pi 3 Model B \(rpi3b\)/, "init's messages are on the screen too");
      // Typed on the keyboard, read back from the screen.
      // Shift and the key a US keyboard calls Z: Y on the German layout, then a space: Node's
      // REPL took the completion preview shown when Enter came (y became yield, Y became Yield,
      // in CI and here), and after a space there is nothing to complete.
      await monitorAll(sock, [...GPIO_LINE_DE, 'shift-z', 'spc', 'ret'].map((k) => `sendkey ${k}`));
      let screen = '';
      for (let i = 0; i < 60 && !/[YZ]\w* is not defined/.test(screen); i++) {
        await new Promise((r) => setTimeout(r, 1000));
        screen = await readScreen();
      }
      writeFileSync(join(OUT, 'screen.txt'), screen);
      assert.match(screen, /<Pin GPIO17 J8:11 out value=1>/, screen);
      // The screen's REPL is a process of its own: Y is a name it does not know, and says so.
      // Kernel and init messages share tty1 and may land on the echoed line or between it and
      // the error, so the error line alone is the proof that Y was typed (and Z was not).
      const why = `the key a US keyboard calls Z is Y on the German layout; the screen shows:\n${screen}`;
      assert.match(screen, /Uncaught ReferenceError: Y is not defined/, why);
      assert.doesNotMatch(screen, /\bZ is not defined/, why);
      assert.equal(await c.eval('board.GPIO17.value'), '1');
      // The screenshot, as a PNG next to the image (a CI artifact).
      const ppm = join(OUT, 'screen.ppm');
      await monitor(sock, `screendump ${ppm}`);
      const png = ppmToPng(readFileSync(ppm));
      writeFileSync(join(OUT, 'screen.png'), png);
      const pixels = readFileSync(ppm).subarray(15);
      assert.ok(pixels.some((v) => v > 0x80), 'text on the screenshot');
      c.neverPrinted(/Kernel panic|Oops/, 'the board');
    } finally {
      c.stop();
    }
  });
});
