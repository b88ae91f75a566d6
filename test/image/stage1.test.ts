import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STAGE1_INIT, STAGE1_WATCHDOG } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** Run stage 1's arm_watchdog with busybox sh (the board's shell) on a device and a device tree in a folder. */
function arm(device: string, dt: string): string {
  const script = `log() { echo "nodeos: $*"; }\n${STAGE1_WATCHDOG}\narm_watchdog "$1" "$2"\n`;
  return execFileSync('busybox', ['sh', '-c', script, 'sh', device, dt], { encoding: 'utf8' });
}

describe('stage 1 arms the watchdog before the system starts', () => {
  after(cleanupTemp);

  it('/init arms it once its modules are loaded, before it looks for the card', () => {
    const lines = STAGE1_INIT.split('\n');
    const armed = lines.indexOf('arm_watchdog /dev/watchdog /proc/device-tree');
    assert.ok(armed > lines.findIndex((l) => l.startsWith('for m in $MODULES')), 'after insmod (bcm2835_wdt is a stage-1 module)');
    assert.ok(armed < lines.findIndex((l) => l.includes('/sys/class/block/*')), 'before the wait for the card');
  });

  it('writes to the device and closes it without the magic V: the count goes on until init feeds it', () => {
    const dir = tempDir();
    const dev = join(dir, 'watchdog');
    writeFileSync(dev, '');
    mkdirSync(join(dir, 'dt/chosen'), { recursive: true });
    assert.match(arm(dev, join(dir, 'dt')), /nodeos: watchdog: armed: a hang from here on resets the board/);
    assert.equal(readFileSync(dev, 'utf8'), '.\n', 'fed once, never V');
  });

  it("the device tree's veto (emulation overlays) leaves it alone and says why; no device says so too", () => {
    const dir = tempDir();
    const dev = join(dir, 'watchdog');
    writeFileSync(dev, '');
    mkdirSync(join(dir, 'dt/chosen'), { recursive: true });
    writeFileSync(join(dir, 'dt/chosen/nodeos,no-watchdog'), 'QEMU resets the machine when the watchdog starts\0');
    assert.equal(arm(dev, join(dir, 'dt')), 'nodeos: watchdog: not armed: QEMU resets the machine when the watchdog starts\n');
    assert.equal(readFileSync(dev, 'utf8'), '', 'not written');
    assert.match(arm(join(dir, 'none'), join(dir, 'dt')), /watchdog: none \(no .*none\): a hang before init is not reset/);
    assert.equal(existsSync(join(dir, 'none')), false, 'nothing created');
  });
});
