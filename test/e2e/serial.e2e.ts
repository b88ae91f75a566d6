/**
 * A second UART between the emulated board and a host program: a board variant (one
 * profile file in a copy of boards/, not kit code) frees the PL011 from Bluetooth with a
 * build-time overlay; QEMU's first serial port is a unix socket; the REPL talks through
 * board.serial('uart0') (serialport's arm64 binding) and the host answers.
 */
import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { getBoard, prepareEmulation, startEmulation } from '../../src/index.js';
import { boardVariant } from '../helpers/board-variant.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const VARIANT = `# A Pi 3 B whose PL011 is a second UART instead of Bluetooth.
id: rpi3b-uart0
extends: rpi3b
name: Raspberry Pi 3 Model B (PL011 as a second UART)
status: community
statusReason: variant without Bluetooth, for a second UART on the PL011
detection:
  compatible: { remove: ["raspberrypi,3-model-b"], add: ["nodeos-test,rpi3b-uart0"] }
  revisions: { remove: ["a02082", "a22082", "a32082", "a52082", "a22083"] }
devicetree:
  overlays: { add: [disable-bt] }
buses:
  add:
    - { id: uart0, kind: uart, device: /dev/ttyAMA0, pins: {}, description: "the PL011, freed from Bluetooth" }
`;

describe('second UART to a host program (QEMU raspi3b, board variant with an overlay)', () => {
  after(cleanupTemp);

  it('board.serial exchanges bytes with a host program over the PL011', async () => {
    const boards = await boardVariant('rpi3b-uart0', VARIANT);
    const out = tempDir();
    const b = await runCli('build', '--board', 'rpi3b-uart0', '--boards-dir', boards, '--out', out, '--json');
    assert.equal(b.code, 0, b.err);
    const sock = join(tempDir(), 'uart0.sock');
    const profile = getBoard('rpi3b-uart0', { boardsDir: boards }).profile;
    const e = prepareEmulation(join(out, 'nodeos-rpi3b-uart0.img'), profile, { direct: true, serial: { 0: `unix:${sock},server=on,wait=off` } });
    const c = new Console(startEmulation(e, 'pipe'));
    let host: Socket | undefined;
    try {
      await c.waitFor(/\n> $/, 240_000, 0);
      assert.match(await c.eval('board.serialPorts().join()'), /\/dev\/ttyAMA0/, 'the PL011 is an ordinary tty now');
      let fromBoard = '';
      host = createConnection(sock);
      host.on('data', (d: Buffer) => (fromBoard += d.toString('latin1')));
      await new Promise((r) => host!.once('connect', r));
      await c.eval("globalThis.got = ''; globalThis.port = board.serial('uart0', { baudRate: 115200 }); port.on('data', (d) => { got += d; if (got.includes('\\n')) port.write(got.trim().toUpperCase() + '\\n'); }); 'open'");
      await new Promise((r) => setTimeout(r, 1500));
      host.write('ping-from-host\n');
      const deadline = Date.now() + 30_000;
      while (!fromBoard.includes('PING-FROM-HOST') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      assert.match(fromBoard, /PING-FROM-HOST/, `host got ${JSON.stringify(fromBoard)}`);
      assert.match(await c.eval('got'), /ping-from-host/);
    } finally {
      host?.destroy();
      c.stop();
    }
  });
});
