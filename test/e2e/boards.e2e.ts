/**
 * End to end for every board with an `emulation` block, generated from its profile
 * (test/helpers/board-checks.ts): built with the CLI as a user would, booted under its QEMU
 * machine through U-Boot from the card, and checked at the REPL: NodeOS on arm64, read-only system slot, users'
 * partition, the card's environment, and the example pin driven through `board`. A new
 * board with an `emulation` block is tested here with no test edits. rpi3b's boot has a
 * longer suite of its own (boot.e2e.ts); what is specific to one board follows its
 * generated checks on the same boot (SPECIFIC below).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootPartitionIn, prepareEmulation, startEmulation, type BoardProfile, type BuildManifest, type EmulateOptions } from '../../src/index.js';
import { assertBootLog, boardChecks, emulatedBoards, runChecks, startupArgs, typesUnderQemu } from '../helpers/board-checks.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { e2eOut } from '../helpers/out.js';

const OUT = e2eOut('boards');
const PROMPT = /\n> $/;
const BOOT_MS = 420_000;

/** Boards whose boot is covered by a suite of their own. */
const OWN_SUITE = new Set(['rpi3b']);

interface Booted {
  c: Console;
  profile: BoardProfile;
  manifest: BuildManifest;
  /** The built card image. */
  image: string;
}

/** The files on the card's boot partition, as mtools lists them (not the builder's manifest). */
function cardFiles(image: string): string[] {
  const { offset } = bootPartitionIn(image);
  return execFileSync('mdir', ['-/', '-b', '-i', `${image}@@${offset}`, '::/'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('::/') && !l.endsWith('/'))
    .map((l) => l.slice(3))
    .sort();
}

/** A file from the card's boot partition, read by mtools. */
function cardFile(image: string, path: string): Buffer {
  const { offset } = bootPartitionIn(image);
  return execFileSync('mcopy', ['-n', '-i', `${image}@@${offset}`, `::/${path}`, '-']);
}

/** What is specific to a board, checked on the boot the generated checks used. */
const SPECIFIC: Record<string, { what: string; emulate?: () => EmulateOptions; run: (b: Booted) => Promise<void> }> = {
  rpi3aplus: {
    what: "U-Boot from the Pi firmware reads the card's uboot.env; first boot makes the users' partition",
    run: async ({ c }) => {
      assert.match(c.output, /Loading Environment from FAT\.\.\. OK/);
      assert.match(c.output, /nodeos: created the users partition \/dev\/mmcblk\dp4 \(ext4\)/);
    },
  },
  rpi4b: {
    // QEMU 10.0's raspi4b delivers no UART receive interrupts to Linux (the PL011's count
    // stays 0 in /proc/interrupts; the mini UART's interrupt stalls the kernel for minutes),
    // so the console is the PL011 (emulation.qemu.console, written into the emulated card's
    // bootargs) and the checks run as nodeos.run= lines. The card is on emmc2 (emulation.qemu.sdBus),
    // as on the board, so U-Boot numbers the controllers as it would there.
    what: "U-Boot finds the card on emmc2 as mmc 0 (the kit's alias) and its environment there; Linux mounts the card through emmc2; the Pi 4 firmware (start4.elf, fixup4.dat) and its DTB are on the card",
    emulate: () => ({ serial: { 1: `file:${join(OUT, 'rpi4b-uboot.log')}` } }),
    run: async ({ c, image, manifest }) => {
      const uboot = readFileSync(join(OUT, 'rpi4b-uboot.log'), 'latin1').replace(/\r/g, '');
      assert.match(uboot, /^MMC:\s+mmc@7e300000: 1, mmc@7e340000: 0$/m, 'emmc2 is mmc 0 by the alias, as the boot model says');
      assert.match(uboot, /Loading Environment from FAT\.\.\. OK/);
      assert.match(uboot, /nodeos: booting slot A/);
      // The kernel prints on the mini UART too (console=ttyS1 stays on the card's command line).
      assert.match(uboot, /mmc0: SDHCI controller on fe340000\.mmc/, 'Linux reads the card through emmc2');
      assert.match(c.output, /nodeos: system slot A on \/dev\/mmcblk0p2/);
      assert.deepEqual(cardFiles(image).filter((p) => /^(start|fixup|bcm)/.test(p)), ['bcm2711-rpi-4-b.dtb', 'fixup4.dat', 'start4.elf']);
      // The firmware loads the DTB by that name: it must be the Pi 4's tree, as dtc reads it.
      const dts = execFileSync('dtc', ['-q', '-I', 'dtb', '-O', 'dts', '-'], { input: cardFile(image, 'bcm2711-rpi-4-b.dtb'), encoding: 'utf8' });
      assert.match(dts, /compatible = "raspberrypi,4-model-b(\\0|", ")brcm,bcm2711";/);
      assert.match(cardFile(image, 'config.txt').toString(), /^arm_64bit=1$/m);
      // U-Boot's environment is on mmc 0: the card's controller must be that (the boot model's overlay).
      assert.match(dts, /aliases \{[^}]*mmc0 = "\/emmc2bus\/mmc@7e340000";/);
      // The card's supplies come from regulators whose drivers are modules: stage 1 must load
      // them, or emmc2 waits for ever on a real Pi 4 (QEMU has no firmware GPIO expander: its
      // DTB swaps them for a fixed supply, qemu-raspi4b.dtso, so only the build shows this).
      const initrd = execFileSync('zstd', ['-dc'], { input: cardFile(image, 'slot-a/initrd.zst'), maxBuffer: 1 << 28 });
      const ko = execFileSync('cpio', ['-it', '--quiet'], { input: initrd }).toString().split('\n').filter((p) => p.endsWith('.ko')).map((p) => p.split('/').pop());
      for (const m of ['sdhci-iproc.ko', 'gpio-regulator.ko', 'fixed.ko']) assert.ok(ko.includes(m), `${m} in stage 1: ${ko.join(' ')}`);
      // The USB ports: the VL805 behind PCIe needs its firmware loaded through reset-raspberrypi, then xhci-pci.
      for (const m of ['reset_raspberrypi', 'xhci_pci', 'xhci_hcd']) assert.ok(manifest.modules.includes(m), `${m} in ${manifest.modules.join(' ')}`);
    },
  },
  'qemu-virt': {
    what: "no Pi firmware and no DTB of ours: U-Boot finds boot.scr, which imports the card's uboot.env; board.env survives board.reboot(); board.poweroff() ends QEMU",
    run: async ({ c, manifest, image }) => {
      assert.deepEqual(cardFiles(image), ['boot.scr', 'layout.json', 'slot-a/Image.gz', 'slot-a/initrd.zst', 'u-boot.bin', 'uboot.bak', 'uboot.env']);
      assert.equal(manifest.devicetree.source, 'firmware');
      assert.equal(manifest.artifacts.debian.firmware, undefined, 'no firmware package fetched');
      // U-Boot keeps its own environment in flash (empty here) and finds boot.scr on the disk.
      assert.match(c.output, /Loading Environment from Flash\.\.\. \*\*\* Warning - bad CRC, using default environment/);
      assert.match(c.output, /script\s+ready\s+virtio\s+1\s+\S+\s+\/boot\.scr/);
      assert.match(c.output, /bytes read in \d+ ms[\s\S]*nodeos: environment from uboot\.env\nnodeos: booting slot A\n\d+ bytes read in \d+ ms[^\n]*\n\d+ bytes read in \d+ ms/);
      assert.equal(await c.eval("require('fs').readFileSync('/proc/device-tree/compatible', 'latin1').split('\\0')[0]"), "'linux,dummy-virt'");
      assert.match(c.output, /nodeos: created the users partition \/dev\/vda4 \(ext4\) and mounted it on \/home/);
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
    },
  },
};

for (const profile of emulatedBoards().filter((p) => !OWN_SUITE.has(p.id))) {
  const typed = typesUnderQemu(profile);
  const q = profile.emulation!.qemu;
  const specific = SPECIFIC[profile.id];
  describe(`${profile.id} end to end (QEMU ${q.machine} through U-Boot, checks ${typed ? 'typed' : 'as nodeos.run= lines'}; generated from its profile)`, () => {
    it(`builds, boots to the REPL, passes the profile's checks${specific ? `; ${specific.what}` : ''}`, async () => {
      const r = await runCli('build', '--board', profile.id, '--out', OUT, '--json');
      assert.equal(r.code, 0, r.err);
      const image = join(OUT, `nodeos-${profile.id}.img`);
      const manifest = JSON.parse(readFileSync(join(OUT, `nodeos-${profile.id}.manifest.json`), 'utf8')) as BuildManifest;
      const checks = boardChecks(profile);
      const e = prepareEmulation(image, profile, { ...specific?.emulate?.(), ...(typed ? {} : { cmdline: startupArgs(checks) }) });
      const t = Date.now();
      const c = new Console(startEmulation(e, 'pipe'));
      try {
        await c.waitFor(PROMPT, BOOT_MS, 0);
        const ms = Date.now() - t;
        await runChecks(c, checks, typed ? 'typed' : 'startup', BOOT_MS);
        assertBootLog(c, profile, manifest.build);
        console.log(`      ${profile.id}: REPL prompt ${(ms / 1000).toFixed(1)} s after QEMU start (U-Boot path)`);
        await specific?.run({ c, profile, manifest, image });
      } finally {
        c.stop();
      }
    });
  });
}

describe('the generated end-to-end cases', () => {
  it('cover every board with an emulation block; specific checks name boards that exist', () => {
    const ids = emulatedBoards().map((p) => p.id);
    assert.ok(ids.length >= 4, ids.join());
    for (const id of [...OWN_SUITE, ...Object.keys(SPECIFIC)]) assert.ok(ids.includes(id), `${id} has an emulation block`);
  });
});
