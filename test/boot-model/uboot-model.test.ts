/**
 * The boot model's U-Boot half on small device trees compiled here by dtc, shaped like the
 * boards' (a Pi 4: the Wi-Fi's SDHCI first in the tree, the card on emmc2 behind its own
 * bus), with U-Boot build configurations written here: each rule kept, then broken once.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { checkUbootModel, drives, envRangesOnCard, kitEnv, kitEnvSize, parseFdt, parseKconfig, ubootEnvLocation, ubootMmcNumbers, ubootModelFor, type UbootModelInput } from '../../src/boot-model/index.js';
import { getBoard, layoutFor, type BoardProfile, type BspError } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** A DTB from DTS text, by dtc. */
function dtb(dts: string): Buffer {
  const dir = tempDir();
  writeFileSync(join(dir, 't.dts'), dts);
  return execFileSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', join(dir, 't.dts')]);
}

/** A Pi 4's MMC controllers: `aliases` lines, the card's status, and its compatible. */
const pi4 = (o: { aliases?: string; cardStatus?: string; cardCompatible?: string; busStatus?: string } = {}): Buffer =>
  dtb(`/dts-v1/;
/ {
	#address-cells = <1>; #size-cells = <1>;
	aliases { serial0 = "/soc/serial@7e201000"; ${o.aliases ?? ''} };
	soc {
		compatible = "simple-bus"; #address-cells = <1>; #size-cells = <1>;
		serial@7e201000 { compatible = "arm,pl011"; };
		mmc@7e202000 { compatible = "brcm,bcm2835-sdhost"; status = "disabled"; };
		mmc@7e300000 { compatible = "brcm,bcm2835-sdhci"; status = "okay"; };
	};
	emmc2bus {
		compatible = "simple-bus"; #address-cells = <1>; #size-cells = <1>; ${o.busStatus ? `status = "${o.busStatus}";` : ''}
		mmc@7e340000 { compatible = ${o.cardCompatible ?? '"brcm,bcm2711-emmc2"'}; ${o.cardStatus ? `status = "${o.cardStatus}";` : ''} };
	};
};
`);

/** Debian's rpi_arm64 build, as its config.rpi_arm64.gz says (the lines that matter). */
const RPI_CONFIG = `CONFIG_OF_CONTROL=y
CONFIG_DM_SEQ_ALIAS=y
CONFIG_ENV_SIZE=0x4000
CONFIG_ENV_IS_IN_FAT=y
# CONFIG_ENV_IS_IN_FLASH is not set
# CONFIG_SYS_REDUNDAND_ENVIRONMENT is not set
CONFIG_ENV_FAT_INTERFACE="mmc"
CONFIG_ENV_FAT_DEVICE_AND_PART="0:1"
CONFIG_ENV_FAT_FILE="uboot.env"
`;
/** A U-Boot binary's compatible tables (NUL-separated, as in .rodata). */
const BINARY = Buffer.from('\x7fELF...\0brcm,bcm2835-sdhost\0brcm,bcm2835-sdhci\0brcm,bcm2711-emmc2\0arm,pl011\0', 'latin1');

const input = (tree: Buffer, o: Omit<Partial<UbootModelInput>, 'config'> & { config?: string } = {}): UbootModelInput => ({
  tree: parseFdt(tree),
  config: parseKconfig(o.config ?? RPI_CONFIG),
  isDriven: drives(BINARY),
  card: '/emmc2bus/mmc@7e340000',
  device: 'mmc 0:1',
  envFile: 'uboot.env',
  envSize: 0x4000,
  ...Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'config')),
});
const failed = (i: UbootModelInput): string[] => checkUbootModel(i).findings.filter((f) => !f.ok).map((f) => f.id);
const ALIAS = 'mmc0 = "/emmc2bus/mmc@7e340000";';

describe('boot model: U-Boot finds the card (small DTBs by dtc, U-Boot configs written here)', () => {
  after(cleanupTemp);

  it("the mainline Pi 4 tree (no mmc alias): the SDIO controller is mmc 0, the card mmc 1 — bootcmd and the environment miss it", () => {
    const m = checkUbootModel(input(pi4()));
    assert.deepEqual(m.mmc.map((d) => [d.path, d.number, d.by]), [['/soc/mmc@7e300000', 0, 'order'], ['/emmc2bus/mmc@7e340000', 1, 'order']], 'as U-Boot prints it: MMC: mmc@7e300000: 0, mmc@7e340000: 1');
    assert.equal(m.cardNumber, 1);
    assert.deepEqual(failed(input(pi4())), ['BM_UBOOT_DEVICE', 'BM_UBOOT_ENV_DEVICE']);
    const env = m.findings.find((f) => f.id === 'BM_UBOOT_ENV_DEVICE')!;
    assert.equal(env.node, '/emmc2bus/mmc@7e340000');
    assert.equal(env.property, 'CONFIG_ENV_FAT_DEVICE_AND_PART');
    assert.match(env.fix!, /mmc0 = "\/emmc2bus\/mmc@7e340000"/);
  });

  it('with the alias mmc0 = emmc2 (the kit\'s overlay) the card is mmc 0 and every rule holds; the SDIO controller moves to 1', () => {
    const m = checkUbootModel(input(pi4({ aliases: ALIAS })));
    assert.deepEqual(m.mmc.map((d) => [d.path, d.number, d.by]), [['/soc/mmc@7e300000', 1, 'order'], ['/emmc2bus/mmc@7e340000', 0, 'alias']]);
    assert.deepEqual(m.findings.map((f) => [f.id, f.ok]), [['BM_UBOOT_CARD', true], ['BM_UBOOT_DEVICE', true], ['BM_UBOOT_ENV_DEVICE', true], ['BM_UBOOT_ENV_FILE', true]]);
  });

  it('U-Boot matches an alias by the last path component only, and ignores aliases without DM_SEQ_ALIAS', () => {
    assert.deepEqual(failed(input(pi4({ aliases: 'mmc0 = "/elsewhere/mmc@7e340000";' }))), []);
    assert.deepEqual(failed(input(pi4({ aliases: ALIAS }), { config: RPI_CONFIG.replace('CONFIG_DM_SEQ_ALIAS=y', '# CONFIG_DM_SEQ_ALIAS is not set') })), ['BM_UBOOT_DEVICE', 'BM_UBOOT_ENV_DEVICE']);
  });

  it('unaliased controllers number after the highest alias and every number taken', () => {
    const n = ubootMmcNumbers(parseFdt(pi4({ aliases: 'mmc3 = "/soc/mmc@7e300000";' })), drives(BINARY), true);
    assert.deepEqual(n.map((d) => [d.path, d.number]), [['/soc/mmc@7e300000', 3], ['/emmc2bus/mmc@7e340000', 4]]);
  });

  it('BM_UBOOT_CARD: a disabled card controller, one under a disabled bus, one no U-Boot driver matches, a path not in the tree', () => {
    for (const [tree, card, why] of [
      [pi4({ cardStatus: 'disabled' }), '/emmc2bus/mmc@7e340000', /status "disabled"/],
      [pi4({ busStatus: 'disabled' }), '/emmc2bus/mmc@7e340000', /does not bind/],
      [pi4({ cardCompatible: '"brcm,bcm2711-emmc2-new"' }), '/emmc2bus/mmc@7e340000', /no driver for its compatible/],
      [pi4(), '/emmc2bus/mmc@7e350000', /has no node/],
    ] as const) {
      const m = checkUbootModel(input(tree, { card }));
      assert.deepEqual(m.findings.map((f) => [f.id, f.ok]), [['BM_UBOOT_CARD', false]]);
      assert.match(m.findings[0]!.detail, why);
    }
  });

  it('BM_UBOOT_DEVICE: the profile loads from another device than the card', () => {
    assert.deepEqual(failed(input(pi4({ aliases: ALIAS }), { device: 'mmc 1:1' })), ['BM_UBOOT_DEVICE'], 'the environment is still found on the card');
  });

  it('BM_UBOOT_ENV_FILE: another size (a sunxi build: 0x10000), another file name, a redundant environment', () => {
    const tree = pi4({ aliases: ALIAS });
    assert.deepEqual(failed(input(tree, { config: RPI_CONFIG.replace('CONFIG_ENV_SIZE=0x4000', 'CONFIG_ENV_SIZE=0x10000') })), ['BM_UBOOT_ENV_FILE']);
    assert.deepEqual(failed(input(tree, { config: RPI_CONFIG.replace('"uboot.env"', '"u-boot.env"') })), ['BM_UBOOT_ENV_FILE']);
    assert.deepEqual(failed(input(tree, { config: RPI_CONFIG.replace('# CONFIG_SYS_REDUNDAND_ENVIRONMENT is not set', 'CONFIG_SYS_REDUNDAND_ENVIRONMENT=y') })), ['BM_UBOOT_ENV_FILE']);
    assert.deepEqual(failed(input(tree, { config: RPI_CONFIG.replace('"0:1"', '":auto"') })), [], "':auto' is the device U-Boot booted from");
  });

  it('a U-Boot that keeps its environment elsewhere (QEMU virt: flash) and a card not on MMC: boot.scr imports uboot.env', () => {
    const cfg = parseKconfig('CONFIG_ENV_SIZE=0x40000\n# CONFIG_ENV_IS_IN_FAT is not set\nCONFIG_ENV_IS_IN_FLASH=y\n');
    assert.deepEqual(ubootEnvLocation(cfg), { kind: 'other', where: 'flash', size: 0x40000, redundant: false });
    const m = checkUbootModel({ config: cfg, isDriven: () => false, device: 'virtio 0:1', envFile: 'uboot.env', envSize: 0x4000 });
    assert.deepEqual(m.findings.map((f) => [f.id, f.ok]), [['BM_UBOOT_ENV_DEVICE', true]]);
    // A FAT environment with no card controller named cannot be checked: refused, not passed.
    assert.deepEqual(checkUbootModel({ config: parseKconfig(RPI_CONFIG), isDriven: () => true, device: 'mmc 0:1', envFile: 'uboot.env', envSize: 0x4000 }).findings.map((f) => [f.id, f.ok]), [['BM_UBOOT_ENV_DEVICE', false]]);
  });

  it('an environment on raw MMC sectors (Rockchip builds): found on the card only when it is the card\'s device and user area, both copies when redundant', () => {
    const cfg = parseKconfig('CONFIG_ENV_IS_IN_MMC=y\nCONFIG_SYS_MMC_ENV_DEV=1\nCONFIG_SYS_MMC_ENV_PART=0\nCONFIG_ENV_OFFSET=0x3F8000\nCONFIG_ENV_SIZE=0x8000\n');
    const loc = ubootEnvLocation(cfg);
    assert.deepEqual(loc, { kind: 'mmc', device: 1, part: 0, offsets: [0x3f8000], size: 0x8000, redundant: false });
    assert.deepEqual(envRangesOnCard(loc, 'mmc 1:1'), [{ offset: 0x3f8000, size: 0x8000 }]);
    assert.deepEqual(envRangesOnCard(loc, 'mmc 0:1'), [], 'on the eMMC, not the card');
    assert.deepEqual(envRangesOnCard(loc, 'virtio 1:1'), []);
    assert.deepEqual(envRangesOnCard(ubootEnvLocation(parseKconfig('CONFIG_ENV_IS_IN_MMC=y\nCONFIG_SYS_MMC_ENV_DEV=1\nCONFIG_SYS_MMC_ENV_PART=1\nCONFIG_ENV_OFFSET=0x3F8000\nCONFIG_ENV_SIZE=0x8000\n')), 'mmc 1:1'), [], 'an eMMC boot partition');
    const two = ubootEnvLocation(parseKconfig('CONFIG_ENV_IS_IN_MMC=y\nCONFIG_SYS_MMC_ENV_DEV=0\nCONFIG_ENV_OFFSET=0x3F8000\nCONFIG_ENV_OFFSET_REDUND=0x3F0000\nCONFIG_SYS_REDUNDAND_ENVIRONMENT=y\nCONFIG_ENV_SIZE=0x8000\n'));
    assert.deepEqual(envRangesOnCard(two, 'mmc 0:1'), [{ offset: 0x3f8000, size: 0x8000 }, { offset: 0x3f0000, size: 0x8000 }]);
    // FAT first, as U-Boot's env/env.c orders its locations.
    assert.equal(ubootEnvLocation(parseKconfig(`${RPI_CONFIG}\nCONFIG_ENV_IS_IN_MMC=y\n`)).kind, 'fat');
    const m = checkUbootModel({ config: cfg, isDriven: () => false, device: 'mmc 1:1', envFile: 'uboot.env', envSize: 0x4000 });
    assert.deepEqual(m.findings.map((f) => [f.id, f.ok]), [['BM_UBOOT_ENV_DEVICE', true]]);
    assert.match(m.findings[0]!.detail, /on mmc 1 at 0x3f8000, 32768 bytes: that is the card, and the image writes zeros there/);
  });

  it("the kit's uboot.env takes the U-Boot build's size where that build keeps its environment there (sunxi: 64 KiB), the kit's own elsewhere", () => {
    const pkg = (name: string, build: string, config: string): string => {
      const dir = tempDir();
      mkdirSync(join(dir, 'usr/share/doc', name, 'configs'), { recursive: true });
      writeFileSync(join(dir, 'usr/share/doc', name, 'configs', `config.${build}.gz`), gzipSync(config));
      return dir;
    };
    const base = getBoard('qemu-virt').profile;
    const sunxi = { ...base, boot: { ...base.boot, uboot: { ...base.boot.uboot!, package: 'u-boot-sunxi', file: 'pine64_plus/u-boot-sunxi-with-spl.bin' } } };
    const dir = pkg('u-boot-sunxi', 'pine64_plus', 'CONFIG_ENV_IS_IN_FAT=y\nCONFIG_ENV_FAT_INTERFACE="mmc"\nCONFIG_ENV_FAT_DEVICE_AND_PART=":auto"\nCONFIG_ENV_FAT_FILE="uboot.env"\nCONFIG_ENV_SIZE=0x10000\n');
    assert.equal(kitEnvSize(sunxi, dir), 0x10000);
    assert.equal(layoutFor(sunxi, 1, { envSize: kitEnvSize(sunxi, dir) }).env.size, 0x10000);
    const rockchip = { ...base, boot: { ...base.boot, uboot: { ...base.boot.uboot!, package: 'u-boot-rockchip', file: 'rock64-rk3328/u-boot.itb' } } };
    assert.equal(kitEnvSize(rockchip, pkg('u-boot-rockchip', 'rock64-rk3328', 'CONFIG_ENV_IS_IN_MMC=y\nCONFIG_ENV_OFFSET=0x3F8000\nCONFIG_ENV_SIZE=0x8000\n')), 0x4000, "kept on the card's raw sectors: boot.scr imports the kit's file");
    // On the card's raw sectors (the card is U-Boot's mmc 1 there): the image clears them.
    const onCard = { ...rockchip, boot: { ...rockchip.boot, uboot: { ...rockchip.boot.uboot, device: 'mmc 1:1' } } };
    const rk = 'CONFIG_ENV_IS_IN_MMC=y\nCONFIG_SYS_MMC_ENV_DEV=1\nCONFIG_SYS_MMC_ENV_PART=0\nCONFIG_ENV_OFFSET=0x3F8000\nCONFIG_ENV_SIZE=0x8000\n';
    assert.deepEqual(kitEnv(onCard, pkg('u-boot-rockchip', 'rock64-rk3328', rk)), { size: 0x4000, clear: [{ offset: 0x3f8000, size: 0x8000 }] });
    assert.throws(() => kitEnv(onCard, pkg('u-boot-rockchip', 'rock64-rk3328', rk.replace('CONFIG_ENV_OFFSET=0x3F8000', 'CONFIG_ENV_OFFSET=junk'))), (e: BspError) => e.code === 'EARTIFACT' && /cannot place that range/.test(e.message));
    assert.throws(() => kitEnvSize(sunxi, tempDir()), (e: BspError) => e.code === 'EARTIFACT' && /config\.pine64_plus\.gz/.test(e.message));
    assert.throws(() => layoutFor(sunxi, 1, { envSize: 1000 }), (e: BspError) => e.code === 'EPROFILE_INVALID' && /environment size 1000/.test(e.message));
  });

  it("a U-Boot that is the board's firmware numbers the card by its own tree (boot.uboot.dtb): a Rock64's card is mmc 1 there, mmc 0 in the kernel's", () => {
    const dir = tempDir();
    const lib = join(dir, 'usr/lib/u-boot/rock64-rk3328');
    mkdirSync(lib, { recursive: true });
    mkdirSync(join(dir, 'usr/share/doc/u-boot-rockchip/configs'), { recursive: true });
    writeFileSync(join(dir, 'usr/share/doc/u-boot-rockchip/configs/config.rock64-rk3328.gz'), gzipSync('CONFIG_OF_CONTROL=y\nCONFIG_DM_SEQ_ALIAS=y\nCONFIG_ENV_IS_IN_MMC=y\nCONFIG_ENV_SIZE=0x8000\n'));
    writeFileSync(join(lib, 'u-boot.bin'), Buffer.from('\0rockchip,rk3288-dw-mshc\0', 'latin1'));
    const rk = (aliases: string): Buffer =>
      dtb(`/dts-v1/;\n/ { #address-cells = <1>; #size-cells = <1>; aliases { ${aliases} };\n mmc@ff500000 { compatible = "rockchip,rk3328-dw-mshc", "rockchip,rk3288-dw-mshc"; };\n mmc@ff520000 { compatible = "rockchip,rk3328-dw-mshc", "rockchip,rk3288-dw-mshc"; };\n};\n`);
    // U-Boot's own tree (its rk3328-u-boot.dtsi): eMMC first; the kernel's: the card first.
    writeFileSync(join(lib, 'rk3328-rock64.dtb'), rk('mmc0 = "/mmc@ff520000"; mmc1 = "/mmc@ff500000";'));
    const kernelTree = rk('mmc0 = "/mmc@ff500000"; mmc1 = "/mmc@ff520000";');
    const base = getBoard('qemu-virt').profile;
    const rock64 = (ubootDtb?: string, device = 'mmc 1:1'): BoardProfile => ({ ...base, boot: { ...base.boot, card: '/mmc@ff500000', uboot: { ...base.boot.uboot!, package: 'u-boot-rockchip', file: 'rock64-rk3328/u-boot.bin', device, ...(ubootDtb ? { dtb: ubootDtb } : {}) } } });
    const own = ubootModelFor(rock64('rock64-rk3328/rk3328-rock64.dtb'), { ubootDir: dir, dtb: kernelTree, envFile: 'uboot.env', envSize: 0x4000 });
    assert.equal(own.cardNumber, 1);
    assert.deepEqual(own.findings.filter((f) => !f.ok), []);
    // Read from the kernel's tree instead, the model would have the card as mmc 0 and refuse the right device.
    const kernels = ubootModelFor(rock64(), { ubootDir: dir, dtb: kernelTree, envFile: 'uboot.env', envSize: 0x4000 });
    assert.equal(kernels.cardNumber, 0);
    assert.throws(() => ubootModelFor(rock64('rock64-rk3328/missing.dtb'), { ubootDir: dir, dtb: kernelTree, envFile: 'uboot.env', envSize: 0x4000 }), (e: BspError) => e.code === 'EARTIFACT' && /missing\.dtb is not in u-boot-rockchip/.test(e.message));
  });

  it('reads a DTB as fdtget does, and refuses what is not one (EDTB)', () => {
    const b = pi4({ aliases: ALIAS });
    const dir = tempDir();
    writeFileSync(join(dir, 'x.dtb'), b);
    const root = parseFdt(b);
    assert.equal(execFileSync('fdtget', [join(dir, 'x.dtb'), '/aliases', 'mmc0']).toString().trim(), root.children.find((c) => c.name === 'aliases')!.props.get('mmc0')!.toString('latin1').replace(/\0$/, ''));
    assert.deepEqual(execFileSync('fdtget', ['-l', join(dir, 'x.dtb'), '/soc']).toString().trim().split('\n'), root.children.find((c) => c.name === 'soc')!.children.map((c) => c.name));
    assert.throws(() => parseFdt(Buffer.from('not a tree at all, not at all, not at all')), (e: { code?: string }) => e.code === 'EDTB');
    assert.throws(() => parseFdt(b.subarray(0, 100)), (e: { code?: string }) => e.code === 'EDTB');
  });

  it('a compatible counts as driven only as a whole string of the binary', () => {
    const d = drives(Buffer.from('\0xbrcm,bcm2711-emmc2\0brcm,bcm2835-sdhci\0', 'latin1'));
    assert.equal(d('brcm,bcm2711-emmc2'), false);
    assert.equal(d('brcm,bcm2835-sdhci'), true);
    assert.equal(d('brcm,bcm2835'), false);
  });
});
