/**
 * The boot model's Linux half on small device trees compiled here by dtc (shaped like the
 * Pi 5's card slot and PCIe) and depmod-format tables written here: the closure of what the
 * card needs, each provider's driver, module dependencies, and each way it can fail.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtKernelTables, checkLinuxCard, checkLinuxFunctions, closure, functionNeeds, nodeAt, parseDepmod, parseFdt, withDependencies, type KernelTables } from '../../src/boot-model/index.js';
import { imageCompatibles } from '../../src/boot-model/linux.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

function tree(dts: string): ReturnType<typeof parseFdt> {
  const dir = tempDir();
  writeFileSync(join(dir, 't.dts'), dts);
  return parseFdt(execFileSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', join(dir, 't.dts')]));
}

/** A Pi 5-like card slot: card-detect and supplies on the always-on GPIO block, pins from the BCM2712 pin controller. */
const pi5 = (o: { gpioStatus?: string; pinctrlCompatible?: string } = {}): ReturnType<typeof parseFdt> =>
  tree(`/dts-v1/;
/ {
	#address-cells = <2>; #size-cells = <1>;
	interrupt-parent = <&gic>;
	clocks { clk_emmc2: clk-emmc2 { compatible = "fixed-clock"; #clock-cells = <0>; clocks = <&nowhere>; }; };
	nowhere: nowhere { compatible = "brcm,not-a-driver"; status = "disabled"; };
	sd_io_1v8: regulator-sd-io { compatible = "regulator-gpio"; gpios = <&gio_aon 3 0>; };
	sd_vcc: regulator-sd-vcc { compatible = "regulator-fixed"; gpio = <&gio_aon 4 0>; };
	soc@107c000000 {
		compatible = "simple-bus"; #address-cells = <1>; #size-cells = <1>;
		gic: interrupt-controller@7fff9000 { compatible = "arm,gic-400"; interrupt-controller; #interrupt-cells = <3>; };
		pinctrl: pinctrl@7d504100 { compatible = ${o.pinctrlCompatible ?? '"brcm,bcm2712c0-pinctrl"'}; sdio1_pins: emmc-sd { pins = "emmc_cmd"; }; };
		gio_aon: gpio@7d517c00 { compatible = "brcm,brcmstb-gpio"; gpio-controller; #gpio-cells = <2>; ${o.gpioStatus ? `status = "${o.gpioStatus}";` : ''} };
		mmc@fff000 {
			compatible = "brcm,bcm2712-sdhci", "brcm,sdhci-brcmstb";
			interrupts = <0 273 4>;
			clocks = <&clk_emmc2>;
			pinctrl-0 = <&sdio1_pins>; pinctrl-names = "default";
			vqmmc-supply = <&sd_io_1v8>; vmmc-supply = <&sd_vcc>;
			cd-gpios = <&gio_aon 5 1>;
		};
	};
};
`);

/** Tables as depmod writes them for such a kernel (sdhci-brcmstb, gpio-brcmstb and the BCM2712 pin controller are modules). */
const ALIAS = `alias of:N*T*Cbrcm,bcm2712-sdhciC* sdhci_brcmstb
alias of:N*T*Cbrcm,bcm2712-sdhci sdhci_brcmstb
alias of:N*T*Cbrcm,brcmstb-gpioC* gpio_brcmstb
alias of:N*T*Cbrcm,brcmstb-gpio gpio_brcmstb
alias of:N*T*Cbrcm,bcm2712c0-pinctrl pinctrl_brcmstb_bcm2712
alias of:N*T*Cregulator-fixed fixed
alias of:N*T*Cregulator-gpio gpio_regulator
alias pci:v00001106d00003483sv*sd*bc*sc*i* vl805_quirks
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
alias pci:v00001DE4d00000001sv*sd*bc*sc*i* rp1_pci
alias platform:xhci-hcd xhci_plat_hcd
alias platform:bcm2835-wdt bcm2835_wdt
alias sdio:c*v02D0dA9A6* brcmfmac
alias usb:v0424pEC00d*dc*dsc*dp*ic*isc*ip*in* smsc95xx
alias usb:v*p*d*dc09dsc*dp*ic*isc*ip*in* usbcore
alias of:N*T*Cbrcm,bcm2835-usb dwc2
alias of:N*T*Cmmc-pwrseq-simple pwrseq_simple
alias of:N*T*Cbrcm,bcm2835-sdhci sdhci_iproc
alias of:N*T*Craspberrypi,firmware-gpio gpio_raspberrypi_exp
`;
const DEP = `kernel/drivers/mmc/host/sdhci-brcmstb.ko.xz: kernel/drivers/mmc/host/sdhci-pltfm.ko.xz kernel/drivers/mmc/host/sdhci.ko.xz
kernel/drivers/mmc/host/sdhci-pltfm.ko.xz: kernel/drivers/mmc/host/sdhci.ko.xz
kernel/drivers/mmc/host/sdhci.ko.xz:
kernel/drivers/gpio/gpio-brcmstb.ko.xz:
kernel/drivers/pinctrl/bcm/pinctrl-brcmstb-bcm2712.ko.xz: kernel/drivers/pinctrl/bcm/pinctrl-brcmstb.ko.xz
kernel/drivers/pinctrl/bcm/pinctrl-brcmstb.ko.xz:
kernel/drivers/regulator/fixed.ko.xz:
kernel/drivers/regulator/gpio-regulator.ko.xz:
kernel/drivers/usb/host/xhci-pci.ko.xz: kernel/drivers/usb/host/xhci-hcd.ko.xz
`;
const SOFTDEP = 'softdep xhci_pci pre: reset_raspberrypi\n';
const tables = (): KernelTables => ({ release: 'test', ...parseDepmod(ALIAS, DEP, SOFTDEP), builtinCompatibles: ['simple-bus', 'fixed-clock', 'arm,gic-400'] });

describe('boot model: the card under Linux (small DTBs by dtc, depmod-format tables)', () => {
  after(cleanupTemp);

  it("the Pi 5's card needs its GPIO block and pin controller (modules), and the regulators': dependencies first", () => {
    const t = pi5();
    const m = checkLinuxCard(t, '/soc@107c000000/mmc@fff000', tables());
    assert.deepEqual(m.findings.map((f) => [f.id, f.ok]), [['BM_LINUX_CARD', true]]);
    assert.deepEqual([...m.modules].sort(), ['fixed', 'gpio_brcmstb', 'gpio_regulator', 'pinctrl_brcmstb', 'pinctrl_brcmstb_bcm2712', 'sdhci', 'sdhci_brcmstb', 'sdhci_pltfm']);
    for (const [dep, mod] of [['sdhci', 'sdhci_brcmstb'], ['sdhci_pltfm', 'sdhci_brcmstb'], ['pinctrl_brcmstb', 'pinctrl_brcmstb_bcm2712']]) assert.ok(m.modules.indexOf(dep!) < m.modules.indexOf(mod!), `${dep} before ${mod}`);
    const needs = functionNeeds(t, [nodeAt(t, '/soc@107c000000/mmc@fff000')!], tables());
    assert.deepEqual(needs.modules.find((x) => x.module === 'gpio_brcmstb'), { module: 'gpio_brcmstb', node: '/soc@107c000000/gpio@7d517c00', via: '/soc@107c000000/mmc@fff000 cd-gpios' });
    assert.equal(needs.modules.find((x) => x.module === 'pinctrl_brcmstb_bcm2712')!.via, '/soc@107c000000/mmc@fff000 pinctrl-0', 'a pin configuration node is provided by its pin controller');
  });

  it("an Allwinner A64's card (Pine A64+): powered by the AXP803 on the RSB bus, whose regulators the PMIC's MFD driver creates: cardPlatform names them", () => {
    // As Debian's sun50i-a64-pine64-plus.dtb has it: vmmc-supply is a node under the PMIC with no compatible of its own.
    const a64 = tree(`/dts-v1/;
/ {
	#address-cells = <1>; #size-cells = <1>;
	soc {
		compatible = "simple-bus"; #address-cells = <1>; #size-cells = <1>;
		mmc@1c0f000 { compatible = "allwinner,sun50i-a64-mmc"; vmmc-supply = <&reg_dcdc1>; };
		rsb@1f03400 {
			compatible = "allwinner,sun8i-a23-rsb"; #address-cells = <1>; #size-cells = <0>;
			pmic@3a3 { compatible = "x-powers,axp803"; reg = <0x3a3>; regulators { reg_dcdc1: dcdc1 { regulator-name = "vcc-3v3"; }; }; };
		};
	};
};
`);
    const t: KernelTables = {
      release: 'test',
      ...parseDepmod(
        // Both bus glues of the AXP drivers claim the compatible (I2C listed first, as depmod sorts them).
        'alias of:N*T*Callwinner,sun50i-a64-mmc sunxi_mmc\nalias of:N*T*Cx-powers,axp803 axp20x_i2c\nalias of:N*T*Cx-powers,axp803 axp20x_rsb\nalias platform:axp20x-regulator axp20x_regulator\n',
        'kernel/drivers/mmc/host/sunxi-mmc.ko.xz:\nkernel/drivers/mfd/axp20x-i2c.ko.xz: kernel/drivers/mfd/axp20x.ko.xz\nkernel/drivers/mfd/axp20x-rsb.ko.xz: kernel/drivers/mfd/axp20x.ko.xz\nkernel/drivers/mfd/axp20x.ko.xz:\nkernel/drivers/regulator/axp20x-regulator.ko.xz:\n',
        '',
      ),
      // sunxi-rsb is built into Debian's arm64 kernel (CONFIG_SUNXI_RSB=y).
      builtinCompatibles: ['simple-bus', 'allwinner,sun8i-a23-rsb'],
    };
    const bare = checkLinuxCard(a64, '/soc/mmc@1c0f000', t);
    // Every module the PMIC's modalias matches is loaded, as modprobe does: the RSB glue among them.
    assert.deepEqual([...bare.modules].sort(), ['axp20x', 'axp20x_i2c', 'axp20x_rsb', 'sunxi_mmc'], 'the tree alone: the PMIC, not its regulators');
    const m = checkLinuxCard(a64, '/soc/mmc@1c0f000', t, ['axp20x-regulator']);
    assert.deepEqual([...m.modules].sort(), ['axp20x', 'axp20x_i2c', 'axp20x_regulator', 'axp20x_rsb', 'sunxi_mmc']);
    assert.ok(m.modules.indexOf('axp20x') < m.modules.indexOf('axp20x_rsb'), 'the MFD core before its RSB driver');
    assert.equal(m.findings[0]!.ok, true);
    assert.match(checkLinuxCard(a64, '/soc/mmc@1c0f000', t, ['axp999-regulator']).findings[0]!.detail, /no driver for platform axp999-regulator/);
  });

  it('the closure follows supplies, GPIOs, pins, clocks, the inherited interrupt parent and the parent bus; not a clock provider\'s own inputs', () => {
    const t = pi5();
    const paths = closure(t, [nodeAt(t, '/soc@107c000000/mmc@fff000')!]).map((e) => e.node.path).sort();
    assert.deepEqual(paths, ['/clocks/clk-emmc2', '/regulator-sd-io', '/regulator-sd-vcc', '/soc@107c000000', '/soc@107c000000/gpio@7d517c00', '/soc@107c000000/interrupt-controller@7fff9000', '/soc@107c000000/mmc@fff000', '/soc@107c000000/pinctrl@7d504100']);
  });

  it('BM_LINUX_CARD fails on a disabled provider and on one without a driver, naming the node and who needs it', () => {
    const off = checkLinuxCard(pi5({ gpioStatus: 'disabled' }), '/soc@107c000000/mmc@fff000', tables());
    assert.equal(off.findings[0]!.ok, false);
    assert.match(off.findings[0]!.detail, /\/soc@107c000000\/gpio@7d517c00 is disabled \(needed by \/soc@107c000000\/mmc@fff000 cd-gpios\)/);
    const none = checkLinuxCard(pi5({ pinctrlCompatible: '"brcm,bcm2712d0-pinctrl"' }), '/soc@107c000000/mmc@fff000', tables());
    assert.match(none.findings[0]!.detail, /no driver for \/soc@107c000000\/pinctrl@7d504100 \(brcm,bcm2712d0-pinctrl\), needed by \/soc@107c000000\/mmc@fff000 pinctrl-0/);
    assert.match(checkLinuxCard(pi5(), '/soc/mmc@0', tables()).findings[0]!.detail, /has no node \/soc\/mmc@0/);
  });

  it('a PCI device by id, else by class (the VL805 xHCI), with softdep pre: modules first', () => {
    const t = pi5();
    const byId = functionNeeds(t, [], tables(), ['1106:3483/0c0330']);
    assert.deepEqual(byId.modules.map((m) => m.module), ['vl805_quirks']);
    const byClass = functionNeeds(t, [], tables(), ['1106:9999/0c0330']);
    assert.deepEqual(byClass.modules.map((m) => m.module), ['xhci_hcd', 'reset_raspberrypi', 'xhci_pci']);
    assert.deepEqual(functionNeeds(t, [], tables(), ['1234:5678/ffffff']).undriven, [{ node: 'pci 1234:5678/ffffff', compatibles: [] }]);
  });

  it('depmod tables: of: and pci: aliases, dependencies with softdeps; compatibles in a kernel image', () => {
    const t = parseDepmod(ALIAS, DEP, SOFTDEP);
    assert.equal(t.of['brcm,bcm2712-sdhci'], 'sdhci_brcmstb');
    assert.equal(t.pci['1106:3483'], 'vl805_quirks');
    assert.equal(t.pciClass['0c0330'], 'xhci_pci');
    assert.deepEqual(withDependencies('sdhci_brcmstb', t.dep), ['sdhci', 'sdhci_pltfm', 'sdhci_brcmstb']);
    assert.deepEqual(imageCompatibles(Buffer.from('\x01\x02\0simple-bus\0brcm,bcm2711-pcie\0not a compatible\0x\0', 'latin1')), ['brcm,bcm2711-pcie', 'simple-bus']);
  });

  it("functions: a PCI function described in the tree (RP1's pci1de4,1), a platform device a driver creates (dwc3's xhci-hcd); a missing node fails", () => {
    const t = tree(`/dts-v1/;
/ {
	#address-cells = <2>; #size-cells = <1>;
	axi {
		compatible = "simple-bus"; #address-cells = <2>; #size-cells = <1>;
		pcie@1000120000 {
			compatible = "brcm,bcm2712-pcie";
			pci@0,0 { dev@0,0 { compatible = "pci1de4,1"; usb@40200000 { compatible = "snps,dwc3"; }; }; };
		};
	};
};
`);
    const tabs: KernelTables = { ...tables(), of: { ...tables().of, 'snps,dwc3': 'dwc3' }, builtinCompatibles: ['simple-bus', 'brcm,bcm2712-pcie'] };
    const usb = '/axi/pcie@1000120000/pci@0,0/dev@0,0/usb@40200000';
    const r = checkLinuxFunctions(t, { usb: { nodes: [usb], platform: ['xhci-hcd'] } }, tabs);
    assert.deepEqual(r.findings.map((f) => [f.id, f.ok, f.node]), [['BM_LINUX_FUNCTION', true, 'usb']]);
    assert.deepEqual(r.modules, ['dwc3', 'rp1_pci', 'xhci_plat_hcd']);
    const bad = checkLinuxFunctions(t, { usb: { nodes: [usb, '/axi/usb@1'], platform: ['no-such-device'] } }, tabs);
    assert.match(bad.findings[0]!.detail, /usb: the device tree has no node \/axi\/usb@1; no driver for platform no-such-device/);
  });

  it("functions: an SDIO radio (no of: alias) by its SDIO id, with its host and the host's power sequence (mmc-pwrseq) and that one's GPIO provider", () => {
    const t = tree(`/dts-v1/;
/ {
	soc {
		compatible = "simple-bus";
		expgpio: gpio { compatible = "raspberrypi,firmware-gpio"; gpio-controller; #gpio-cells = <2>; };
		mmc@7e300000 {
			compatible = "brcm,bcm2835-sdhci"; mmc-pwrseq = <&wifi_pwrseq>;
			wifi@1 { compatible = "brcm,bcm4329-fmac"; };
		};
	};
	wifi_pwrseq: wifi-pwrseq { compatible = "mmc-pwrseq-simple"; reset-gpios = <&expgpio 1 1>; };
};
`);
    const wifi = '/soc/mmc@7e300000/wifi@1';
    const r = checkLinuxFunctions(t, { wifi: { nodes: [wifi], sdio: ['02d0:a9a6'] } }, tables());
    assert.deepEqual(r.findings.map((f) => [f.id, f.ok]), [['BM_LINUX_FUNCTION', true]], r.findings[0]?.detail);
    assert.deepEqual([...r.modules].sort(), ['brcmfmac', 'gpio_raspberrypi_exp', 'pwrseq_simple', 'sdhci_iproc']);
    // Without its id the radio's node has no driver; an id no module claims is named.
    assert.match(checkLinuxFunctions(t, { wifi: { nodes: [wifi] } }, tables()).findings[0]!.detail, /no driver for \/soc\/mmc@7e300000\/wifi@1 \(brcm,bcm4329-fmac\)/);
    assert.match(checkLinuxFunctions(t, { wifi: { nodes: [wifi], sdio: ['02d0:ffff'] } }, tables()).findings[0]!.detail, /no driver for sdio 02d0:ffff/);
  });

  it("functions: USB devices the tree names (the Pi 3's LAN9514) by vendor and product; the hub they sit on by the hub driver; the unknown named", () => {
    const t = tree(`/dts-v1/;
/ {
	soc {
		compatible = "simple-bus";
		usb@7e980000 {
			compatible = "brcm,bcm2835-usb"; #address-cells = <1>; #size-cells = <0>;
			usb1@1 { compatible = "usb424,9514"; reg = <1>; #address-cells = <1>; #size-cells = <0>;
				ethernet@1 { compatible = "usb424,ec00"; reg = <1>; };
			};
			other@2 { compatible = "usb424,ffff"; reg = <2>; };
		};
	};
};
`);
    const r = checkLinuxFunctions(t, { ethernet: { nodes: ['/soc/usb@7e980000/usb1@1/ethernet@1'] } }, tables());
    assert.deepEqual(r.findings.map((f) => [f.id, f.ok]), [['BM_LINUX_FUNCTION', true]], r.findings[0]?.detail);
    assert.deepEqual([...r.modules].sort(), ['dwc2', 'smsc95xx', 'usbcore']);
    assert.match(checkLinuxFunctions(t, { x: { nodes: ['/soc/usb@7e980000/other@2'] } }, tables()).findings[0]!.detail, /no driver for \/soc\/usb@7e980000\/other@2 \(usb424,ffff\)/, 'a device without children is no hub');
  });

  it("a kernel the kit built: ids go to the driver Debian's build of the source names, driven only when it is built in; nothing is loaded", () => {
    const t = tree(`/dts-v1/;
/ {
	soc {
		compatible = "simple-bus";
		usb@7e980000 {
			compatible = "brcm,bcm2835-usb"; #address-cells = <1>; #size-cells = <0>;
			usb1@1 { compatible = "usb424,9514"; reg = <1>; #address-cells = <1>; #size-cells = <0>;
				ethernet@1 { compatible = "usb424,ec00"; reg = <1>; };
			};
		};
		mmc@7e300000 { compatible = "brcm,bcm2835-sdhci"; wifi@1 { compatible = "brcm,bcm4329-fmac"; }; };
	};
};
`);
    const built = (modules: string[]): KernelTables => builtKernelTables(tables(), { release: '6.12.117-nodeos', builtinModules: modules, builtinCompatibles: ['simple-bus'] });
    const claims = { ethernet: { nodes: ['/soc/usb@7e980000/usb1@1/ethernet@1'] }, wifi: { nodes: ['/soc/mmc@7e300000/wifi@1'], sdio: ['02d0:a9a6'] }, watchdog: { nodes: [], platform: ['bcm2835-wdt'] } };
    const all = built(['dwc2', 'usbcore', 'smsc95xx', 'sdhci-iproc', 'brcmfmac', 'bcm2835_wdt']);
    assert.deepEqual(all.dep, {}, 'nothing to load first');
    const r = checkLinuxFunctions(t, claims, all);
    assert.deepEqual(r.findings.map((f) => [f.node, f.ok]), [['ethernet', true], ['wifi', true], ['watchdog', true]], r.findings.map((f) => f.detail).join('; '));
    assert.match(r.findings[0]!.detail, /^ethernet: .*smsc95xx.* \(built in\)$/);
    // The same ids with the drivers left out of the build: each is named, as for Debian's kernel without the module.
    const few = checkLinuxFunctions(t, claims, built(['dwc2', 'usbcore', 'sdhci_iproc']));
    assert.deepEqual(few.findings.map((f) => [f.node, f.ok]), [['ethernet', false], ['wifi', false], ['watchdog', false]]);
    assert.match(few.findings[0]!.detail, /no driver for \/soc\/usb@7e980000\/usb1@1\/ethernet@1 \(usb424,ec00\)/);
    assert.match(few.findings[1]!.detail, /no driver for sdio 02d0:a9a6/);
    assert.match(few.findings[2]!.detail, /no driver for platform bcm2835-wdt/);
    // Without usbcore built in the hub has no driver either.
    assert.match(checkLinuxFunctions(t, { ethernet: claims.ethernet }, built(['dwc2', 'smsc95xx'])).findings[0]!.detail, /no driver for \/soc\/usb@7e980000\/usb1@1 \(usb424,9514\)/);
  });
});
