import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError, findQemu, getBoard, serialIndex } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** A stand-in qemu-system-aarch64 that reports a version and a machine list. */
function fakeQemu(version: string, machines: string[]): string {
  const p = join(tempDir(), 'qemu-system-aarch64');
  writeFileSync(p, `#!/bin/sh\nif [ "$1" = --version ]; then echo "QEMU emulator version ${version}"; else echo "Supported machines are:"; ${machines.map((m) => `echo "${m}  Raspberry Pi"`).join('; ')}; fi\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('emulate: finding QEMU', () => {
  after(cleanupTemp);
  const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;

  it('names the package when QEMU is missing', () => {
    assert.throws(() => findQemu('raspi3b', '/nonexistent/qemu-system-aarch64'), (e: unknown) => code('EQEMU_MISSING')(e) && /apt-get install qemu-system-arm/.test((e as Error).message));
  });

  it('says which QEMU a machine needs when this one is too old', () => {
    const q = fakeQemu('7.2.22', ['raspi3b', 'raspi3ap']);
    assert.deepEqual(findQemu('raspi3b', q).version, [7, 2, 22]);
    assert.throws(() => findQemu('raspi4b', q), (e: unknown) => code('EQEMU_MACHINE')(e) && /needs QEMU 9\.0 or later/.test((e as Error).message) && /bookworm-backports/.test((e as Error).message));
  });

  it("maps the board's console to QEMU's serial ports", () => {
    const p = getBoard('rpi3b').profile;
    assert.equal(serialIndex(p), 1, 'the mini UART is the raspi machines\' second port');
    assert.equal(serialIndex({ ...p, console: { ...p.console, device: 'ttyAMA0' } }), 0);
    assert.throws(() => serialIndex({ ...p, console: { ...p.console, device: 'ttyAMA10' } }), (e: unknown) => code('EQEMU_MACHINE')(e) && /emulation\.qemu\.serial/.test((e as Error).message));
  });
});
