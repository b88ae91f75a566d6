/**
 * proposeModules (`boards modules`, `boards new --dtb`) on a small tree compiled here by dtc
 * and depmod-format tables: the card's closure, the claimed functions, every other enabled
 * node a module drives, in load order, with what the model finds wrong.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDepmod, parseFdt, proposeModules, type KernelTables } from '../../src/boot-model/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const ALIAS = `alias of:N*T*Cbrcm,bcm2711-emmc2 sdhci_iproc
alias of:N*T*Cbrcm,bcm2835-i2c i2c_bcm2835
alias of:N*T*Cbrcm,bcm2835-spi spi_bcm2835
alias of:N*T*Cbrcm,bcm2711-pcie pcie_brcmstb
alias of:N*T*Cbrcm,bcm2835-pwm pwm_bcm2835
alias of:N*T*Cbrcm,bcm2835-thermal bcm2835_thermal
`;
const DEP = `kernel/drivers/mmc/host/sdhci-iproc.ko.xz: kernel/drivers/mmc/host/sdhci-pltfm.ko.xz kernel/drivers/mmc/host/sdhci.ko.xz
kernel/drivers/mmc/host/sdhci-pltfm.ko.xz: kernel/drivers/mmc/host/sdhci.ko.xz
kernel/drivers/mmc/host/sdhci.ko.xz:
kernel/drivers/i2c/busses/i2c-bcm2835.ko.xz:
kernel/drivers/spi/spi-bcm2835.ko.xz:
kernel/drivers/pci/controller/pcie-brcmstb.ko.xz:
kernel/drivers/pwm/pwm-bcm2835.ko.xz:
kernel/drivers/thermal/broadcom/bcm2835_thermal.ko.xz:
`;
const tables = (): KernelTables => ({ release: 'test', ...parseDepmod(ALIAS, DEP, ''), builtinCompatibles: ['simple-bus'] });

function tree(): ReturnType<typeof parseFdt> {
  const dir = tempDir();
  writeFileSync(
    join(dir, 't.dts'),
    `/dts-v1/;
/ {
	soc {
		compatible = "simple-bus";
		mmc@7e340000 { compatible = "brcm,bcm2711-emmc2"; };
		i2c@7e804000 { compatible = "brcm,bcm2835-i2c"; };
		spi@7e204000 { compatible = "brcm,bcm2835-spi"; status = "disabled"; };
		thermal@7d5d2200 { compatible = "brcm,bcm2835-thermal"; };
		mystery@7e00b000 { compatible = "acme,no-such-block"; };
		off { compatible = "simple-bus"; status = "disabled";
			pwm@7e20c000 { compatible = "brcm,bcm2835-pwm"; };
		};
	};
	scb { compatible = "simple-bus"; pcie@7d500000 { compatible = "brcm,bcm2711-pcie"; }; };
};
`,
  );
  return parseFdt(execFileSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', join(dir, 't.dts')]));
}

describe('boot model: proposing a new board\'s modules from its tree (boards modules)', () => {
  after(cleanupTemp);

  it('the card first (its closure, dependencies first), then the functions, then every other enabled node a module drives', () => {
    const p = proposeModules(tree(), tables(), { card: '/soc/mmc@7e340000', functions: { i2c: { nodes: ['/soc/i2c@7e804000'] } } });
    assert.deepEqual(p.card, ['sdhci', 'sdhci_pltfm', 'sdhci_iproc']);
    assert.deepEqual(p.functions, { i2c: ['i2c_bcm2835'] });
    // Not the disabled SPI, not the PWM under a disabled bus, not the block nothing drives.
    assert.deepEqual(p.others, [
      { node: '/soc/thermal@7d5d2200', module: 'bcm2835_thermal' },
      { node: '/scb/pcie@7d500000', module: 'pcie_brcmstb' },
    ]);
    assert.deepEqual(p.all, ['sdhci', 'sdhci_pltfm', 'sdhci_iproc', 'i2c_bcm2835', 'bcm2835_thermal', 'pcie_brcmstb']);
    assert.deepEqual(p.problems, []);
  });

  it("a sibling's function this tree lacks is left out; a card node the tree lacks, or one nothing drives, is a problem", () => {
    const p = proposeModules(tree(), tables(), { card: '/soc/mmc@7e300000', functions: { wifi: { nodes: ['/soc/mmc@7e300000/wifi@1'] } } });
    assert.deepEqual(p.functions, {});
    assert.deepEqual(p.card, []);
    assert.match(p.problems.join('\n'), /the device tree has no node \/soc\/mmc@7e300000/);
    const q = proposeModules(tree(), tables(), { card: '/soc/mystery@7e00b000' });
    assert.match(q.problems.join('\n'), /no driver for \/soc\/mystery@7e00b000 \(acme,no-such-block\)/);
  });
});
