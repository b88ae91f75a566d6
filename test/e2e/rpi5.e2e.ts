/**
 * The Raspberry Pi 5 on Debian's 7.x kernel (trixie-backports, split into linux-base,
 * linux-binary and linux-modules packages). There is no QEMU model of the Pi 5: its kernel
 * is checked against the board's fragments, its image is built with the CLI and inspected
 * (no firmware files, config.txt starting U-Boot, the DTB with RP1's pin controller and
 * Ethernet, the 7.x kernel, the RP1 and card modules where they are loaded), never booted.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootPartitionIn, Fat32Reader, fetchArtifacts, getBoard, kernelFiles, type BuildManifest, type ImageLayout } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { e2eOut } from '../helpers/out.js';

const OUT = e2eOut('rpi5');
const IMAGE = join(OUT, 'nodeos-rpi5b.img');

describe("rpi5b on Debian's 7.x kernel (built and inspected; no QEMU machine)", () => {
  let manifest: BuildManifest;

  before(async () => {
    const r = await runCli('build', '--board', 'rpi5b', '--out', OUT, '--json');
    assert.equal(r.code, 0, r.err);
    manifest = JSON.parse(readFileSync(join(OUT, 'nodeos-rpi5b.manifest.json'), 'utf8')) as BuildManifest;
  });

  it("the kernel is 7.x from trixie-backports, its three parts pinned, and it meets the Pi 5's fragments", async () => {
    assert.match(manifest.kernel.release, /^7\.\d+\.\d+\+deb\d+-arm64$/);
    const lock = manifest.artifacts.debian;
    for (const part of ['kernel', 'kernelBase', 'kernelBinary', 'kernelModules'] as const) {
      assert.equal(lock[part]?.suite, 'trixie-backports', part);
    }
    assert.match(lock.kernelBinary!.package, /^linux-binary-7\./);
    assert.match(lock.kernelModules!.package, /^linux-modules-7\./);
    const check = await runCli('kernel', 'check', '--board', 'rpi5b', '--package', '--json');
    assert.equal(check.code, 0, check.err + check.out);
    const r = JSON.parse(check.out) as { ok: boolean; checked: number };
    assert.ok(r.ok && r.checked > 50);
  });

  it('boots through the EEPROM firmware and U-Boot: config.txt, u-boot.bin, the DTB with RP1, no start*.elf', () => {
    const fat = new Fat32Reader(IMAGE, bootPartitionIn(IMAGE).offset);
    try {
      const names = fat.list().map((e) => e.name);
      assert.ok(!names.some((n) => /^start.*\.elf$|^fixup/i.test(n)), `no GPU firmware on a Pi 5 card: ${names.join(' ')}`);
      const config = fat.readFile('config.txt').toString();
      assert.match(config, /^arm_64bit=1$/m);
      assert.match(config, /^kernel=u-boot\.bin$/m);
      assert.match(spawnSync('strings', ['-n', '8'], { input: fat.readFile('u-boot.bin') }).stdout.toString(), /brcm,bcm2712-sdhci/, "Debian's U-Boot drives the Pi 5's card");
      const dts = execFileSync('dtc', ['-q', '-I', 'dtb', '-O', 'dts'], { input: fat.readFile('bcm2712-rpi-5-b.dtb') }).toString();
      assert.match(dts, /compatible = "raspberrypi,5-model-b\\0brcm,bcm2712"/);
      assert.match(dts, /compatible = "raspberrypi,rp1-gpio"/);
      assert.match(dts, /compatible = "raspberrypi,rp1-gem"/);
      const layout = JSON.parse(fat.readFile('layout.json').toString()) as ImageLayout;
      // The small initramfs loads the card's driver; the system's init loads RP1's.
      const cpio = execFileSync('zstd', ['-dc'], { input: fat.readFile(layout.boot.slots.A.initramfs), maxBuffer: 1 << 28 });
      const ko = execFileSync('cpio', ['-it', '--quiet'], { input: cpio }).toString().split('\n').filter((p) => p.endsWith('.ko')).map((p) => p.split('/').pop());
      assert.ok(ko.includes('sdhci-brcmstb.ko'), ko.join(' '));
      // The card slot's card-detect and supplies are on gio_aon (gpio-brcmstb) and its pins on the
      // BCM2712 pin controller, both modules in 7.x: without them sdhci-brcmstb defers for ever
      // (the boot model follows cd-gpios, pinctrl-0 and the supplies to them).
      for (const m of ['gpio-brcmstb.ko', 'pinctrl-brcmstb-bcm2712.ko', 'pinctrl-brcmstb.ko', 'gpio-regulator.ko', 'fixed.ko']) assert.ok(ko.includes(m), `${m} in stage 1: ${ko.join(' ')}`);
    } finally {
      fat.close();
    }
    // RP1's MSIs go to the MIP (irq_bcm2712_mip); its USB is dwc3, whose host side is xhci-plat-hcd (the boot model's functions).
    for (const m of ['rp1_pci', 'clk_rp1', 'pinctrl_rp1', 'macb', 'sdhci_brcmstb', 'iproc_rng200', 'bcm2835_wdt', 'irq_bcm2712_mip', 'dwc3', 'xhci_plat_hcd']) {
      assert.ok(manifest.modules.some((x) => x.replace(/-/g, '_') === m), `${m} in ${manifest.modules.join(' ')}`);
    }
  });

  it("a D0 board gets Linux's D0 tree: the firmware's own overlays/bcm2712d0.dtbo, applied to the card's DTB by fdtoverlay, makes exactly bcm2712-d-rpi-5-b.dtb", async () => {
    // The kernel package's own D0 tree, unpacked from the pinned package the build used.
    const a = await fetchArtifacts(getBoard('rpi5b').profile, { lockPath: join(OUT, 'nodeos-rpi5b.lock.json'), offline: true });
    const dir = mkdtempSync(join(tmpdir(), 'rpi5-d0-'));
    const fat = new Fat32Reader(IMAGE, bootPartitionIn(IMAGE).offset);
    try {
      writeFileSync(join(dir, 'board.dtb'), fat.readFile('bcm2712-rpi-5-b.dtb'));
      writeFileSync(join(dir, 'd0.dtbo'), fat.readFile('overlays/bcm2712d0.dtbo'));
      execFileSync('fdtoverlay', ['-i', join(dir, 'board.dtb'), '-o', join(dir, 'merged.dtb'), join(dir, 'd0.dtbo')]);
      const variant = manifest.devicetree.variants?.find((v) => v.id === 'd0');
      assert.equal(variant?.file, 'overlays/bcm2712d0.dtbo');
      const d0 = join(kernelFiles(a.debs.kernel!).dtbDir, variant!.source);
      const dts = (f: string): string => execFileSync('dtc', ['-q', '-s', '-I', 'dtb', '-O', 'dts', f], { encoding: 'utf8' });
      const merged = dts(join(dir, 'merged.dtb'));
      assert.equal(merged, dts(d0), 'the card plus the firmware overlay is the D0 tree');
      // What differs on D0: the console UART's interrupt and the pin controllers.
      assert.match(merged, /compatible = "brcm,bcm2712d0-pinctrl"/);
      assert.doesNotMatch(dts(join(dir, 'board.dtb')), /bcm2712d0/, 'the C1 tree stays the card\'s DTB');
    } finally {
      fat.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
