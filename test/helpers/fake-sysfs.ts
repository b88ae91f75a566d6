/**
 * A sysfs tree in a temporary directory, for running the Linux backend without hardware:
 * GPIO chips (label, base, ngpio), LEDs, I2C adapters (i2c-dev), ttys with and without a device. A worker thread
 * plays the kernel for /sys/class/gpio/export and unexport (the backend waits synchronously,
 * so the main thread cannot), making and removing gpioN directories as the kernel does.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { GpioChipInfo, I2cAdapter } from '../../src/runtime/board/backend.js';

export interface SysfsWorld {
  chips: GpioChipInfo[];
  leds: string[];
  i2c: I2cAdapter[];
  ttys: string[];
}

const KERNEL = `
const { readFileSync, writeFileSync, mkdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { workerData } = require('node:worker_threads');
const root = join(workerData, 'class/gpio');
setInterval(() => {
  for (const op of ['export', 'unexport']) {
    const f = join(root, op);
    const text = readFileSync(f, 'utf8');
    if (!text) continue;
    writeFileSync(f, '');
    for (const n of text.split(/\\s+/).filter(Boolean)) {
      const dir = join(root, 'gpio' + n);
      if (op === 'unexport') { rmSync(dir, { recursive: true, force: true }); continue; }
      mkdirSync(dir, { recursive: true });
      for (const [k, v] of [['direction', 'in'], ['edge', 'none'], ['active_low', '0'], ['value', '0']]) writeFileSync(join(dir, k), v + '\\n');
    }
  }
}, 2);
`;

/** Lay out the world under `sys` and start its kernel; stop it with the returned function. */
export function fakeSysfs(sys: string, w: SysfsWorld): () => Promise<void> {
  const gpio = join(sys, 'class/gpio');
  mkdirSync(gpio, { recursive: true });
  writeFileSync(join(gpio, 'export'), '');
  writeFileSync(join(gpio, 'unexport'), '');
  for (const c of w.chips) {
    const d = join(gpio, `gpiochip${c.base}`);
    mkdirSync(d);
    writeFileSync(join(d, 'label'), `${c.label}\n`);
    writeFileSync(join(d, 'base'), `${c.base}\n`);
    writeFileSync(join(d, 'ngpio'), `${c.ngpio}\n`);
  }
  for (const l of w.leds) {
    const d = join(sys, 'class/leds', l);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'brightness'), '0\n');
    writeFileSync(join(d, 'max_brightness'), '1\n');
    writeFileSync(join(d, 'trigger'), '[none] timer heartbeat default-on mmc0\n');
  }
  for (const a of w.i2c) {
    const d = join(sys, 'class/i2c-dev', `i2c-${a.bus}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'name'), `${a.name}\n`);
    writeFileSync(join(d, 'dev'), `89:${a.bus}\n`);
    // The adapter device's of_node: a link into the device tree, as the kernel makes it.
    if (a.node) {
      mkdirSync(join(sys, 'firmware/devicetree/base', a.node), { recursive: true });
      mkdirSync(join(d, 'device'), { recursive: true });
      symlinkSync(join(sys, 'firmware/devicetree/base', a.node), join(d, 'device/of_node'));
    }
  }
  mkdirSync(join(sys, 'devices/platform/serial'), { recursive: true });
  // Every tty has a class entry; only those with hardware behind them have a device link.
  for (const t of [...w.ttys.map((p) => p.replace('/dev/', '')), 'tty0', 'console', 'ptmx']) {
    const d = join(sys, 'class/tty', t);
    mkdirSync(d, { recursive: true });
    if (w.ttys.includes(`/dev/${t}`)) symlinkSync('../../../devices/platform/serial', join(d, 'device'));
  }
  const kernel = new Worker(KERNEL, { eval: true, workerData: sys });
  return async () => void (await kernel.terminate());
}
