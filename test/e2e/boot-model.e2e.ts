/**
 * The boot model against the real U-Boot (needs the Debian artifacts, cached, and QEMU): for
 * each Pi whose SoC QEMU has, Debian's rpi_arm64 U-Boot runs with the DTB the kit puts on
 * the card, and the MMC numbers it prints must be the ones the model computed from the same
 * files. QEMU's card sits elsewhere than the board's, but U-Boot's numbering is the tree's:
 * this is what lets the model, not the emulator, prove the Pi 4's and the Pi 400's card
 * (mmc 0 by the kit's alias, where the environment is).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ubootModelFor } from '../../src/boot-model/index.js';
import { boardVariant } from '../helpers/board-variant.js';
import { runCli } from '../helpers/cli.js';
import { e2eOut } from '../helpers/out.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { Cache, deviceTree, fetchArtifacts, getBoard, kernelFiles, layoutFor, defaultBoardsDir } from '../../src/index.js';
import { readAt } from '../helpers/card.js';

/** U-Boot's "MMC:" line under QEMU (its console is on the second serial port after relocation). */
function ubootMmcLine(machine: string, uboot: string, dtb: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const q = spawn('qemu-system-aarch64', ['-M', machine, '-accel', 'tcg,thread=single', '-kernel', uboot, '-dtb', dtb, '-serial', 'null', '-serial', 'stdio', '-display', 'none', '-monitor', 'none', '-nic', 'none'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => (q.kill('SIGKILL'), reject(new Error(`no MMC: line from U-Boot in 120 s:\n${out}`))), 120_000);
    q.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      const m = /MMC:[ \t]+([^\r\n]+)\r?\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        q.kill('SIGKILL');
        resolve(m[1]!.trim());
      }
    });
  });
}

const CASES: [board: string, machine: string, expectCard: number][] = [
  ['rpi3b', 'raspi3b', 0],
  ['rpi3aplus', 'raspi3ap', 0],
  ['rpi4b', 'raspi4b', 0],
  ['rpi400', 'raspi4b', 0],
];

describe("the boot model's U-Boot numbering is the real U-Boot's (Debian's rpi_arm64 under QEMU, the kit's DTBs)", () => {
  for (const [id, machine, expectCard] of CASES) {
    it(`${id}: the card's controller is mmc ${expectCard} in the model and in U-Boot's own MMC: line; the radio's firmware is in its package`, async () => {
      const profile = getBoard(id).profile;
      const cache = new Cache();
      const a = await fetchArtifacts(profile, { cache });
      const dtb = deviceTree(profile, kernelFiles(a.debs.kernel!).dtbDir, join(defaultBoardsDir(), 'overlays'), cache);
      const layout = layoutFor(profile, 1);
      const model = ubootModelFor(profile, { ubootDir: a.debs.uboot!, dtb, envFile: layout.env.file, envSize: layout.env.size });
      assert.deepEqual(model.findings.filter((f) => !f.ok), []);
      assert.equal(model.cardNumber, expectCard);
      const dir = e2eOut('boot-model');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${id}.dtb`);
      writeFileSync(file, dtb);
      const line = await ubootMmcLine(machine, join(a.debs.uboot!, 'usr/lib/u-boot', profile.boot.uboot!.file), file);
      rmSync(file);
      // U-Boot lists "name: number" per device, in its own order.
      const printed = new Map(line.split(', ').map((d) => d.split(': ') as [string, string]).map(([n, k]) => [n, Number(k)]));
      const modelled = new Map(model.mmc.map((m) => [m.path.split('/').pop()!, m.number]));
      assert.deepEqual(printed, modelled, `U-Boot printed "MMC: ${line}"`);
      // The radio's files come from the package the profile names (the Pi 400's CYW43456: raspi-firmware).
      const wifi = profile.wifi?.firmware;
      if (wifi) for (const f of wifi.files) assert.ok(existsSync(join(a.debs.wifiFirmware!, 'usr/lib/firmware', f)), `${f} in ${wifi.package}`);
    });
  }

  it("a Pi 4 without the kit's mmc0 alias is refused by the build (EBOOT_MODEL, naming the alias to add) before anything is written", async () => {
    // The Pi 4 as it was: the mainline DTB as it is, no alias.
    const boards = await boardVariant('rpi4b-noalias', [
      'id: rpi4b-noalias',
      'extends: bcm2711',
      'name: Raspberry Pi 4 without the alias',
      'status: supported',
      'detection: { compatible: ["nodeos,test-rpi4b-noalias"] }',
      'devicetree: { dtb: broadcom/bcm2711-rpi-4-b.dtb, firmwareName: bcm2711-rpi-4-b.dtb, overlays: [] }',
      'leds: []',
      '',
    ].join('\n'));
    const out = join(e2eOut('boot-model'), 'noalias');
    rmSync(out, { recursive: true, force: true });
    const r = await runCli('build', '--board', 'rpi4b-noalias', '--boards-dir', boards, '--out', out);
    assert.equal(r.code, 1, r.out);
    assert.match(r.err, /BM_UBOOT_DEVICE: bootcmd and boot\.scr load from mmc 0:1; the card is mmc 1/);
    assert.match(r.err, /BM_UBOOT_ENV_DEVICE: .*fix: give the card's controller the alias mmc0 .*mmc0 = "\/emmc2bus\/mmc@7e340000"/);
    assert.match(r.err, /\[EBOOT_MODEL\]/);
    assert.deepEqual(existsSync(out) ? readdirSync(out).filter((f) => /\.img/.test(f)) : [], [], 'no image written');
    // boards check --model says the same from the packages alone, and passes the kit's rpi4b.
    const c = await runCli('boards', 'check', 'rpi4b-noalias', 'rpi4b', '--model', '--boards-dir', boards, '--out', out, '--json');
    assert.equal(c.code, 1, c.err);
    const report = JSON.parse(c.out) as { findings: { code: string; board: string; message: string }[]; model: Record<string, { ok: boolean; findings: { id: string; ok: boolean }[] }> };
    assert.deepEqual(report.findings.map((f) => [f.code, f.board]), [['EBOOT_MODEL', 'rpi4b-noalias']]);
    assert.match(report.findings[0]!.message, /BM_UBOOT_DEVICE: bootcmd and boot\.scr load from mmc 0:1; the card is mmc 1/);
    assert.equal(report.model['rpi4b']!.ok, true);
    assert.ok(report.model['rpi4b']!.findings.some((f) => f.id === 'BM_LINUX_FUNCTION' && f.ok));
    cleanupTemp();
  });

  it("pine64-plus (no QEMU machine: proven from the artifacts): Debian's SPL at 8 KiB, a 64 KiB uboot.env, the AXP803 drivers in stage 1, boot.scr hands Linux the kit's DTB; flash reproduces the loader", async () => {
    const out = join(e2eOut('boot-model'), 'pine64-plus');
    const b = await runCli('build', '--board', 'pine64-plus', '--out', out, '--json');
    assert.equal(b.code, 0, b.err);
    const image = join(out, 'nodeos-pine64-plus.img');
    const profile = getBoard('pine64-plus').profile;
    const a = await fetchArtifacts(profile, { cache: new Cache(), lockPath: join(out, 'nodeos-pine64-plus.lock.json') });
    const spl = readFileSync(join(a.debs.uboot!, 'usr/lib/u-boot/pine64_plus/u-boot-sunxi-with-spl.bin'));
    const at8k = (file: string): Buffer => readAt(file, 8192, spl.length);
    assert.ok(at8k(image).equals(spl), "the image's bytes at 8 KiB are Debian's u-boot-sunxi-with-spl.bin");
    assert.equal(spl.subarray(4, 12).toString('latin1'), 'eGON.BT0');
    // The .bmap maps them (4 KiB blocks 2 onwards), so flash writes them.
    assert.match(readFileSync(`${image}.bmap`, 'utf8'), new RegExp(`> 2-${Math.ceil((8192 + spl.length) / 4096) - 1} </Range>`));
    const dir = tempDir();
    const fat = `${image}@@4M`;
    execFileSync('mcopy', ['-i', fat, '::/uboot.env', '::/boot.scr', '::/slot-a/initrd.zst', dir]);
    // The size the pine64_plus U-Boot build reads (CONFIG_ENV_SIZE=0x10000), as fw_printenv reads it.
    writeFileSync(join(dir, 'fw_env.config'), `${join(dir, 'uboot.env')} 0x0 0x10000\n`);
    assert.match(execFileSync('fw_printenv', ['-c', join(dir, 'fw_env.config'), 'fdt_addr_r']).toString(), /^fdt_addr_r=0x4fa00000\n$/);
    assert.equal(statSync(join(dir, 'uboot.env')).size, 0x10000);
    assert.doesNotMatch(execFileSync('mdir', ['-b', '-i', fat, '::/']).toString(), /u-boot\.bin/i, 'U-Boot is on raw sectors only');
    const script = readFileSync(join(dir, 'boot.scr')).subarray(72).toString('utf8');
    assert.match(script, /fatload mmc 0:1 \$\{fdt_addr_r\} nodeos\.dtb && fatload mmc 0:1 \$\{kernel_addr_r\} slot-a\/Image\.gz .*booti \$\{kernel_addr_r\} \$\{ramdisk_addr_r\}:\$\{filesize\} \$\{fdt_addr_r\}/);
    execFileSync('zstd', ['-dq', join(dir, 'initrd.zst'), '-o', join(dir, 'initrd.cpio')]);
    const cpio = execFileSync('cpio', ['-it', '-F', join(dir, 'initrd.cpio')], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    for (const m of ['drivers/mmc/host/sunxi-mmc.ko', 'drivers/mfd/axp20x.ko', 'drivers/mfd/axp20x-rsb.ko', 'drivers/regulator/axp20x-regulator.ko']) assert.match(cpio, new RegExp(m.replace(/[.]/g, '\\.')), `stage 1 holds ${m}`);
    const manifest = JSON.parse(readFileSync(join(out, 'nodeos-pine64-plus.manifest.json'), 'utf8')) as { layout: { raw: unknown; env: { size: number } }; bootChain: { id: string }[] };
    assert.deepEqual(manifest.layout.raw, [{ file: 'pine64_plus/u-boot-sunxi-with-spl.bin', offset: 8192, size: spl.length }]);
    assert.equal(manifest.layout.env.size, 0x10000);
    // Every rule in the manifest held (the build refuses otherwise): the loader's and the tree's among them.
    assert.ok(manifest.bootChain.some((r) => r.id === 'BC_RAW') && manifest.bootChain.some((r) => r.id === 'BC_DTB_LINUX'), JSON.stringify(manifest.bootChain));
    // flash to a loop device reproduces them.
    if (process.getuid?.() === 0) {
      const card = join(dir, 'card.bin');
      writeFileSync(card, '');
      truncateSync(card, 1 << 30);
      const loop = execFileSync('losetup', ['-f', '--show', card]).toString().trim();
      try {
        const f = await runCli('flash', image, '--device', loop, '--yes');
        assert.equal(f.code, 0, f.err);
        assert.ok(at8k(loop).equals(spl), 'flash wrote the loader at 8 KiB');
      } finally {
        execFileSync('losetup', ['-d', loop]);
      }
    }
    cleanupTemp();
  });

  it("rock64 (no QEMU machine: proven from the artifacts): Debian's idbloader at 32 KiB and u-boot.itb at 8 MiB, U-Boot's own environment cleared, the card's power chain in stage 1, boot.scr loads from mmc 1; flash reproduces it over a used card", async () => {
    const out = join(e2eOut('boot-model'), 'rock64');
    const b = await runCli('build', '--board', 'rock64', '--out', out, '--json');
    assert.equal(b.code, 0, b.err);
    const image = join(out, 'nodeos-rock64.img');
    const profile = getBoard('rock64').profile;
    const a = await fetchArtifacts(profile, { cache: new Cache(), lockPath: join(out, 'nodeos-rock64.lock.json') });
    const lib = join(a.debs.uboot!, 'usr/lib/u-boot/rock64-rk3328');
    const idb = readFileSync(join(lib, 'idbloader.img'));
    const itb = readFileSync(join(lib, 'u-boot.itb'));
    const ENV_AT = 0x3f8000;
    const ENV_SIZE = 0x8000;
    assert.ok(readAt(image, 32768, idb.length).equals(idb), "the image's bytes at 32 KiB are Debian's idbloader.img");
    assert.ok(readAt(image, 8 << 20, itb.length).equals(itb), "the image's bytes at 8 MiB are Debian's u-boot.itb");
    // The .bmap maps both pieces and U-Boot's environment range (4 KiB blocks), so flash writes them.
    const bmap = readFileSync(`${image}.bmap`, 'utf8');
    for (const [at, size] of [[32768, idb.length], [ENV_AT, ENV_SIZE], [8 << 20, itb.length]] as const) {
      assert.match(bmap, new RegExp(`> ${at / 4096}-${Math.ceil((at + size) / 4096) - 1} </Range>`), `the bmap maps ${size} bytes at ${at}`);
    }
    const manifest = JSON.parse(readFileSync(join(out, 'nodeos-rock64.manifest.json'), 'utf8')) as { layout: { raw: unknown; env: { size: number } }; bootChain: { id: string }[]; bootModel: { uboot: { card?: number }; findings: { id: string; detail: string }[] } };
    assert.deepEqual(manifest.layout.raw, [
      { file: 'rock64-rk3328/idbloader.img', offset: 32768, size: idb.length },
      { file: 'rock64-rk3328/u-boot.itb', offset: 8 << 20, size: itb.length },
      { file: "U-Boot's own environment (CONFIG_ENV_OFFSET 0x3f8000)", offset: ENV_AT, size: ENV_SIZE, zeros: true },
    ]);
    // U-Boot's own tree makes the card mmc 1; the kit's file is imported by boot.scr (16 KiB).
    assert.equal(manifest.bootModel.uboot.card, 1);
    assert.match(manifest.bootModel.findings.find((f) => f.id === 'BM_UBOOT_ENV_DEVICE')!.detail, /on mmc 1 at 0x3f8000, 32768 bytes: that is the card/);
    assert.equal(manifest.layout.env.size, 0x4000);
    const dir = tempDir();
    const fat = `${image}@@16M`;
    execFileSync('mcopy', ['-i', fat, '::/boot.scr', '::/slot-a/initrd.zst', dir]);
    assert.doesNotMatch(execFileSync('mdir', ['-b', '-i', fat, '::/']).toString(), /u-boot\.bin/i, 'U-Boot is on raw sectors only');
    const script = readFileSync(join(dir, 'boot.scr')).subarray(72).toString('utf8');
    assert.match(script, /fatload mmc 1:1 \$\{fdt_addr_r\} nodeos\.dtb && fatload mmc 1:1 \$\{kernel_addr_r\} slot-a\/Image\.gz .*booti \$\{kernel_addr_r\} \$\{ramdisk_addr_r\}:\$\{filesize\} \$\{fdt_addr_r\}/);
    execFileSync('zstd', ['-dq', join(dir, 'initrd.zst'), '-o', join(dir, 'initrd.cpio')]);
    const cpio = execFileSync('cpio', ['-it', '-F', join(dir, 'initrd.cpio')], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    // The card's controller, its regulator, the GPIO bank that switches it, and the PMIC on I2C1 that feeds it.
    for (const m of ['drivers/mmc/host/dw_mmc-rockchip.ko', 'drivers/regulator/fixed.ko', 'drivers/gpio/gpio-rockchip.ko', 'drivers/i2c/busses/i2c-rk3x.ko', 'drivers/regulator/rk808-regulator.ko']) {
      assert.match(cpio, new RegExp(m.replace(/[.]/g, '\\.')), `stage 1 holds ${m}`);
    }
    assert.ok(manifest.bootChain.filter((r) => r.id === 'BC_RAW').length === 2 && manifest.bootChain.some((r) => r.id === 'BC_DTB_LINUX'), JSON.stringify(manifest.bootChain));
    // flash over a card another system used: its U-Boot environment (valid, as fw_printenv reads
    // it) is gone afterwards, and the loader is there.
    if (process.getuid?.() === 0) {
      const card = join(dir, 'card.bin');
      writeFileSync(card, '');
      truncateSync(card, 1 << 30);
      writeFileSync(join(dir, 'stale.txt'), 'bootcmd=echo another system\n');
      execFileSync('mkenvimage', ['-s', String(ENV_SIZE), '-o', join(dir, 'stale.env'), join(dir, 'stale.txt')]);
      const loop = execFileSync('losetup', ['-f', '--show', card]).toString().trim();
      try {
        execFileSync('dd', [`if=${join(dir, 'stale.env')}`, `of=${loop}`, 'bs=4096', `seek=${ENV_AT / 4096}`, 'conv=notrunc,fsync'], { stdio: 'ignore' });
        writeFileSync(join(dir, 'fw_env.config'), `${loop} 0x${ENV_AT.toString(16)} 0x${ENV_SIZE.toString(16)}\n`);
        assert.match(execFileSync('fw_printenv', ['-c', join(dir, 'fw_env.config'), 'bootcmd']).toString(), /^bootcmd=echo another system\n$/);
        const f = await runCli('flash', image, '--device', loop, '--yes');
        assert.equal(f.code, 0, f.err);
        assert.ok(readAt(loop, 32768, idb.length).equals(idb) && readAt(loop, 8 << 20, itb.length).equals(itb), 'flash wrote both pieces');
        assert.ok(readAt(loop, ENV_AT, ENV_SIZE).every((x) => x === 0), "flash cleared the other system's environment");
      } finally {
        execFileSync('losetup', ['-d', loop]);
      }
    }
    cleanupTemp();
  });

  it("boards modules: the Pi 4's tree asks Debian's kernel for its card's, USB's and other nodes' modules; what kernel.modules lacks is proposed", async () => {
    const out = e2eOut('boot-model');
    const r = await runCli('boards', 'modules', 'rpi4b', '--out', out, '--json');
    assert.equal(r.code, 0, r.err);
    const p = JSON.parse(r.out) as { card: string[]; functions: Record<string, string[]>; others: { node: string; module: string }[]; missing: string[]; problems: string[] };
    assert.deepEqual(p.problems, []);
    // emmc2 (sdhci_iproc, its dependencies first) and its supply; the VL805 on PCIe (xhci_pci) after the firmware's reset.
    assert.ok(p.card.indexOf('sdhci') < p.card.indexOf('sdhci_iproc') && p.card.includes('gpio_regulator'), p.card.join(' '));
    assert.ok(p.functions.usb!.includes('reset_raspberrypi') && p.functions.usb!.includes('xhci_pci'), p.functions.usb!.join(' '));
    assert.ok(p.others.some((o) => o.node === '/soc/serial@7e201000/bluetooth' && o.module === 'hci_uart'), 'a node no function claims is listed with its module');
    assert.ok(p.missing.includes('xhci_pci') && !p.missing.includes('sdhci_iproc'), `missing: ${p.missing.join(' ')}`);
  });

  it('boards new --dtb: a Compute Module 4 profile from the Pi 4, its own tree and card node, with the modules that tree asks for', async () => {
    const boards = tempDir();
    cpSync(defaultBoardsDir(), boards, { recursive: true });
    const r = await runCli('boards', 'new', 'cm4-io', '--from', 'rpi4b', '--dtb', 'broadcom/bcm2711-rpi-cm4-io.dtb', '--card', '/emmc2bus/mmc@7e340000', '--boards-dir', boards, '--out', e2eOut('boot-model'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /card \(stage 1\): .*sdhci_iproc/);
    // The Pi 4's USB (the VL805 on PCIe) is not on a CM4 IO board: left out; its USB is the DWC2.
    assert.doesNotMatch(r.out, /^ {2}usb:/m);
    assert.match(r.out, /\/soc\/usb@7e980000: dwc2/);
    const check = await runCli('boards', 'check', 'cm4-io', '--boards-dir', boards);
    assert.equal(check.code, 0, check.err);
    const shown = await runCli('boards', 'show', 'cm4-io', '--boards-dir', boards, '--json');
    const profile = JSON.parse(shown.out) as { devicetree: { dtb: string }; boot: { card: string }; name: string; detection: { compatible: string[] } };
    assert.deepEqual([profile.devicetree.dtb, profile.boot.card], ['broadcom/bcm2711-rpi-cm4-io.dtb', '/emmc2bus/mmc@7e340000']);
    // What the board is comes from its tree, not from the Pi 4 it was copied from.
    assert.deepEqual([profile.name, profile.detection.compatible], ['Raspberry Pi Compute Module 4 IO Board', ['raspberrypi,4-compute-module']]);
    // A tree the kernel package does not have is refused before anything is proposed.
    const bad = await runCli('boards', 'new', 'cm4-x', '--from', 'rpi4b', '--dtb', 'broadcom/no-such-board.dtb', '--boards-dir', boards, '--out', e2eOut('boot-model'));
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /no-such-board\.dtb/);
    assert.equal(existsSync(join(boards, 'cm4-x.yaml')), false, 'no profile left behind');
    cleanupTemp();
  });
});
