/**
 * I2C on the emulated board (needs QEMU >= 9 with the BCM2835 I2C controller; .ci/setup
 * installs QEMU 10 from bookworm-backports): a TMP105 sensor and an AT24C EEPROM on bus 1,
 * found by board.i2c(1).scan(); the sensor's temperature is changed from the host through
 * QEMU's monitor and read back from the REPL.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { findQemu, getBoard, prepareEmulation, startEmulation } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { monitor } from '../helpers/monitor.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { e2eOut } from '../helpers/out.js';

describe('I2C devices on the emulated rpi3b (QEMU >= 9)', () => {
  after(cleanupTemp);

  it('board.i2c(1) finds the tmp105 and the EEPROM; a temperature set from the host reads back', async () => {
    const q = findQemu('raspi3b');
    assert.ok(q.version[0] >= 9, `QEMU ${q.version.join('.')} has no BCM2835 I2C controller: run .ci/setup (QEMU 10 from bookworm-backports)`);
    const b = await runCli('build', '--board', 'rpi3b', '--out', e2eOut('i2c'), '--json');
    assert.equal(b.code, 0, b.err);
    const sock = join(tempDir(), 'monitor.sock');
    const e = prepareEmulation(join(e2eOut('i2c'), 'nodeos-rpi3b.img'), getBoard('rpi3b').profile, {
      direct: true,
      monitorSocket: sock,
      extraArgs: ['-device', 'tmp105,id=tmp0,bus=i2c-bus.1,address=0x48', '-device', 'at24c-eeprom,bus=i2c-bus.1,address=0x50,rom-size=256'],
    });
    const c = new Console(startEmulation(e, 'pipe'));
    try {
      await c.waitFor(/\n> $/, 240_000, 0);
      assert.equal(await c.eval('globalThis.bus = await board.i2c(1); (await bus.scan()).join()'), "'72,80'");
      // The header bus by its device-tree node, as the kernel links it (board.i2c() with no number).
      assert.match(await c.eval("require('fs').realpathSync('/sys/class/i2c-dev/i2c-1/device/of_node')"), /\/devicetree\/base\/soc\/i2c@7e804000'$/);
      assert.equal(await c.eval('(await (await board.i2c()).scan()).join()'), "'72,80'");
      const reply = await monitor(sock, 'qom-set /machine/peripheral/tmp0 temperature 31500');
      assert.doesNotMatch(reply, /Error/i, reply);
      // TMP105 register 0: °C in the high byte (MSB first on the wire), 1/256 steps in the low.
      const word = Number(await c.eval('await bus.readWord(0x48, 0)'));
      const celsius = (((word & 0xff) << 8) | (word >> 8)) / 256;
      assert.equal(celsius, 31.5);
      assert.match(await c.eval(".i2cdetect 1"), /40: -- -- -- -- -- -- -- -- 48/);
    } finally {
      c.stop();
    }
  });
});
