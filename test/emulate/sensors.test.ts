import { strict as assert } from 'node:assert';
import { parseSensor, sensorArgs } from '../../src/emulate/index.js';
import { thrownCode as code } from '../helpers/error-code.js';


describe('emulate --sensor (QEMU I2C device models on the board\'s buses)', () => {
  it('parses MODEL@BUS:ADDRESS, hex or decimal', () => {
    assert.deepEqual(parseSensor('tmp105@1:0x48'), { model: 'tmp105', bus: 1, address: 0x48 });
    assert.deepEqual(parseSensor('at24c-eeprom@0:80'), { model: 'at24c-eeprom', bus: 0, address: 80 });
  });

  it('refuses unknown models, addresses outside 0x08..0x77 and malformed values, with EUSAGE', () => {
    for (const bad of ['lm75@1:0x48', 'tmp105@1:0x03', 'tmp105@1:0x78', 'tmp105', 'tmp105@1', 'tmp105@x:0x48', 'tmp105@1:0x48,id=x']) assert.equal(code(() => parseSensor(bad)), 'EUSAGE', bad);
  });

  it('becomes -device options on the raspi machines\' buses; other machines and clashes are refused', () => {
    assert.deepEqual(sensorArgs('raspi3b', [parseSensor('tmp105@1:0x48'), parseSensor('at24c-eeprom@1:0x50')]), [
      '-device', 'tmp105,id=sensor0,bus=i2c-bus.1,address=0x48',
      '-device', 'at24c-eeprom,id=sensor1,bus=i2c-bus.1,address=0x50,rom-size=256',
    ]);
    assert.deepEqual(sensorArgs('virt,acpi=off', []), []);
    assert.equal(code(() => sensorArgs('virt,acpi=off', [parseSensor('tmp105@1:0x48')])), 'EUSAGE');
    assert.equal(code(() => sensorArgs('raspi3b', [parseSensor('tmp105@3:0x48')])), 'EUSAGE');
    assert.equal(code(() => sensorArgs('raspi3b', [parseSensor('tmp105@1:0x48'), parseSensor('tmp421@1:72')])), 'EUSAGE');
  });
});
