/**
 * End to end, one board per profile style: each is built with the CLI exactly as a user
 * would, booted under its QEMU machine to the REPL, and its GPIO controller is driven
 * through `board` with the line number derived from the sysfs base of the controller the
 * profile names (a different controller per board). rpi3b has its own, longer suite.
 *  - rpi3aplus: raspi3ap, through the Pi firmware's U-Boot from the card (512 MiB board).
 *  - rpi4b: raspi4b (QEMU >= 9), booted directly: pinctrl-bcm2711, 58 lines (REPL input
 *    from the kernel command line, see below).
 *  - qemu-virt: no Raspberry Pi firmware, no DTB of ours: U-Boot (u-boot-qemu, -bios)
 *    finds boot.scr on the virtio disk, which imports the card's uboot.env; PL061 GPIO.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getBoard, prepareEmulation, startEmulation, type BoardProfile, type BuildManifest } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { e2eOut } from '../helpers/out.js';

const OUT = e2eOut('boards');
const PROMPT = /\n> $/;
const BOOT_MS = 420_000;

async function build(id: string): Promise<{ image: string; manifest: BuildManifest }> {
  const r = await runCli('build', '--board', id, '--out', OUT, '--json');
  assert.equal(r.code, 0, r.err);
  return { image: join(OUT, `nodeos-${id}.img`), manifest: JSON.parse(readFileSync(join(OUT, `nodeos-${id}.manifest.json`), 'utf8')) as BuildManifest };
}

async function boot(image: string, profile: BoardProfile, direct: boolean, cmdline?: string[]): Promise<{ c: Console; ms: number }> {
  const e = prepareEmulation(image, profile, { direct, ...(cmdline ? { cmdline } : {}) });
  const t = Date.now();
  const c = new Console(startEmulation(e, 'pipe'));
  try {
    await c.waitFor(PROMPT, BOOT_MS, 0);
  } catch (err) {
    c.stop();
    throw err;
  }
  return { c, ms: Date.now() - t };
}

/** The REPL is NodeOS's, on arm64, for this board and this build. */
async function assertNodeOs(c: Console, id: string, build: string): Promise<void> {
  assert.equal(await c.eval('process.arch'), "'arm64'");
  assert.equal(await c.eval('board.profile.id'), `'${id}'`);
  assert.match(c.output, new RegExp(`nodeos: .*\\(${id}\\), Node\\.js v\\S+ arm64, build ${build}\\n`), 'init says which build runs');
  assert.match(await c.eval("require('fs').readFileSync('/proc/mounts', 'utf8')"), /\/dev\/\S+ \/ squashfs ro,/, 'the system slot is mounted read-only');
  assert.doesNotMatch(c.output, /Kernel panic|Internal error|Oops/);
}

/** Drive `pin` through board: the global number comes from the sysfs base of the profile's controller. */
async function assertGpio(c: Console, profile: BoardProfile, pin: string): Promise<void> {
  const label = profile.gpio.controllers[0]!.label!;
  const base = Number(
    await c.eval(
      `+require('fs').readdirSync('/sys/class/gpio').filter(d => d.startsWith('gpiochip')).find(d => require('fs').readFileSync('/sys/class/gpio/' + d + '/label', 'utf8').trim() === '${label}').replace('gpiochip', '')`,
    ),
  );
  assert.ok(Number.isInteger(base) && base >= 0, `a gpiochip labelled ${label}: ${base}`);
  const line = Number(/\d+$/.exec(pin)![0]);
  assert.equal(await c.eval(`board.${pin}.global`), String(base + line));
  assert.match(await c.eval(`board.${pin}.write(1)`), new RegExp(`^<Pin ${pin} \\S+ out value=1>$`));
  assert.equal(await c.eval(`require('fs').readFileSync('/sys/class/gpio/gpio${base + line}/value', 'utf8').trim()`), "'1'");
  assert.equal(await c.eval(`board.${pin}.write(0).value`), '0');
}

describe('rpi3aplus end to end (QEMU raspi3ap, through U-Boot)', () => {
  it('builds, boots from the card to the REPL and drives GPIO17 on pinctrl-bcm2835', async () => {
    const profile = getBoard('rpi3aplus').profile;
    const { image, manifest } = await build('rpi3aplus');
    const { c, ms } = await boot(image, profile, false);
    try {
      assert.match(c.output, /Loading Environment from FAT\.\.\. OK/);
      await assertNodeOs(c, 'rpi3aplus', manifest.build);
      assert.equal(await c.eval("board.env.get('board_name')"), "'rpi3aplus'");
      assert.match(c.output, /nodeos: created the users partition \/dev\/mmcblk\dp4 \(ext4\)/);
      await assertGpio(c, profile, 'GPIO17');
      console.log(`      rpi3aplus: REPL prompt ${(ms / 1000).toFixed(1)} s after QEMU start (U-Boot path)`);
    } finally {
      c.stop();
    }
  });
});

describe('rpi4b end to end (QEMU raspi4b, direct)', () => {
  // QEMU 10.0's raspi4b delivers no UART receive interrupts to Linux (the PL011's count stays
  // 0 in /proc/interrupts while the mailbox's rises; the mini UART's interrupt stalls the
  // kernel for minutes), so nothing typed reaches the REPL. The REPL's input comes instead
  // from nodeos.run= kernel arguments, which the first REPL runs as if typed; its output is
  // on the PL011 (emulation.qemu.console).
  it('builds with the Pi 4 firmware, boots to the REPL and drives GPIO17 on pinctrl-bcm2711', async () => {
    const profile = getBoard('rpi4b').profile;
    const { image, manifest } = await build('rpi4b');
    assert.deepEqual(
      manifest.bootFiles.map((f) => f.path).filter((p) => /^(start|fixup|bcm)/.test(p)),
      ['bcm2711-rpi-4-b.dtb', 'fixup4.dat', 'start4.elf'],
    );
    const label = profile.gpio.controllers[0]!.label!;
    assert.equal(label, 'pinctrl-bcm2711');
    const sysfs = (file: string): string => `require('fs').readFileSync('/sys/class/gpio/${file}','utf8')`;
    const lines = [
      'board.profile.id',
      'board.GPIO17.global',
      'board.GPIO17.write(1).value',
      sysfs("gpio'+board.GPIO17.global+'/value"),
      sysfs("gpiochip'+(board.GPIO17.global-17)+'/label"),
      // The base of the chip labelled pinctrl-bcm2711, found by its label (not from the global number).
      `require('fs').readdirSync('/sys/class/gpio').filter(n=>n.startsWith('gpiochip')&&${sysfs("'+n+'/label")}.trim()==='${label}').map(n=>${sysfs("'+n+'/base")}.trim()).join()`,
    ];
    const t = Date.now();
    const { c, ms } = await boot(image, profile, true, lines.map((l) => `nodeos.run="${l}"`));
    try {
      const m = await c.waitFor(
        /> board\.profile\.id\n'rpi4b'\n> board\.GPIO17\.global\n(\d+)\n> board\.GPIO17\.write\(1\)\.value\n1\n> .*\n'1\\n'\n> .*\n'([\w-]+)\\n'\n> .*\n'(\d+)'\n> $/,
        BOOT_MS,
        0,
      );
      assert.match(c.output, new RegExp(`nodeos: Raspberry Pi 4 Model B \\(rpi4b\\), Node\\.js v24\\.\\S+ arm64, build ${manifest.build}`));
      assert.equal(m[2], label, 'the chip GPIO17 is on is the one the profile names');
      assert.equal(Number(m[1]), Number(m[3]) + 17, 'global number = sysfs base of pinctrl-bcm2711 + line 17');
      assert.doesNotMatch(c.output, /Kernel panic|Internal error|Oops|device tree says/);
      console.log(`      rpi4b: REPL prompt ${(ms / 1000).toFixed(1)} s, startup lines done ${((Date.now() - t) / 1000).toFixed(1)} s after QEMU start (direct)`);
    } finally {
      c.stop();
    }
  });
});

describe('qemu-virt end to end (QEMU virt, U-Boot alone)', () => {
  it('builds with no Pi firmware and no DTB, boots through boot.scr and the card\'s uboot.env, drives the PL061, reboots and powers off', async () => {
    const profile = getBoard('qemu-virt').profile;
    const { image, manifest } = await build('qemu-virt');
    const files = manifest.bootFiles.map((f) => f.path);
    assert.deepEqual([...files].sort(), ['boot.scr', 'layout.json', 'slot-a/Image.gz', 'slot-a/initrd.zst', 'u-boot.bin', 'uboot.bak', 'uboot.env']);
    assert.equal(manifest.devicetree.source, 'firmware');
    assert.equal(manifest.artifacts.debian.firmware, undefined, 'no firmware package fetched');
    const { c, ms } = await boot(image, profile, false);
    try {
      // U-Boot keeps its own environment in flash (empty here) and finds boot.scr on the disk.
      assert.match(c.output, /Loading Environment from Flash\.\.\. \*\*\* Warning - bad CRC, using default environment/);
      assert.match(c.output, /script\s+ready\s+virtio\s+1\s+\S+\s+\/boot\.scr/);
      // boot.scr imports uboot.env, then loads slot A's kernel and initramfs.
      assert.match(c.output, /bytes read in \d+ ms[\s\S]*nodeos: environment from uboot\.env\nnodeos: booting slot A\n\d+ bytes read in \d+ ms[^\n]*\n\d+ bytes read in \d+ ms/);
      await assertNodeOs(c, 'qemu-virt', manifest.build);
      assert.equal(await c.eval("require('fs').readFileSync('/proc/device-tree/compatible', 'latin1').split('\\0')[0]"), "'linux,dummy-virt'");
      assert.match(c.output, /nodeos: created the users partition \/dev\/vda4 \(ext4\) and mounted it on \/home/);
      await assertGpio(c, profile, 'GPIO0');
      console.log(`      qemu-virt: REPL prompt ${(ms / 1000).toFixed(1)} s after QEMU start (U-Boot path)`);
      // board.env edits the card's uboot.env; after board.reboot() boot.scr imports the change.
      await c.eval("board.env.set('nodeos_e2e', 'virt')");
      const from = c.output.length;
      c.child.stdin!.write('board.reboot()\n');
      await c.waitFor(/\/boot\.scr[\s\S]*\n> $/, BOOT_MS, from);
      assert.equal(await c.eval("board.env.get('nodeos_e2e')"), "'virt'");
      assert.doesNotMatch(c.output.slice(from), /created the users partition/);
      // board.poweroff(): unmount, then PSCI SYSTEM_OFF ends QEMU by itself.
      const exited = new Promise<number | null>((resolve) => c.child.on('exit', (code) => resolve(code)));
      c.child.stdin!.write('board.poweroff()\n');
      const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 60_000))]);
      assert.equal(code, 0, `QEMU ended by the guest's poweroff: ${String(code)}`);
    } finally {
      c.stop();
    }
  });
});
