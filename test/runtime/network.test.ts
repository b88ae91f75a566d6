/** Which interface the board's network starts on, and its carrier, from sysfs trees made here (no root). */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CarrierWatch, pickInterface, readCarrier } from '../../src/runtime/network.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe('the network interface init brings up', () => {
  after(cleanupTemp);

  it('the first Ethernet-like one: not loopback, not Wi-Fi or virtual, with a MAC', () => {
    const root = tempDir();
    const add = (name: string, mac: string): void => {
      mkdirSync(join(root, name), { recursive: true });
      writeFileSync(join(root, name, 'address'), `${mac}\n`);
    };
    assert.equal(pickInterface(join(root, 'none')), undefined);
    add('lo', '00:00:00:00:00:00');
    assert.equal(pickInterface(root), undefined, 'loopback only');
    add('wlan0', 'b8:27:eb:00:00:02');
    add('sit0', '00:00:00:00:00:00');
    assert.equal(pickInterface(root), undefined, 'Wi-Fi is not started here');
    add('eth0', 'b8:27:eb:00:00:01');
    add('end1', 'b8:27:eb:00:00:03');
    assert.equal(pickInterface(root), 'end1');
  });
});

describe('the link: carrier changes said once each', () => {
  it('calls back on each change only, and ignores an unreadable carrier', () => {
    const reads: (boolean | undefined)[] = [true, true, false, false, undefined, false, true, true];
    let i = 0;
    const seen: boolean[] = [];
    const w = new CarrierWatch(() => reads[i++], (up) => seen.push(up));
    while (i < reads.length) w.check();
    assert.deepEqual(seen, [false, true]);
  });

  it('reads /sys/class/net/<if>/carrier', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'eth0'));
    writeFileSync(join(dir, 'eth0/carrier'), '1\n');
    assert.equal(readCarrier('eth0', dir), true);
    writeFileSync(join(dir, 'eth0/carrier'), '0\n');
    assert.equal(readCarrier('eth0', dir), false);
    assert.equal(readCarrier('eth1', dir), undefined);
  });
});
