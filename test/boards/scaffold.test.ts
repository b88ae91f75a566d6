/**
 * `boards new`: a new board's profile from a sibling's. The sibling's comments describe the
 * sibling and are left out; what the sibling says of itself (detection, vendor, SoC) is either
 * flagged for the user to set or, given the new board's own tree, taken from that tree.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseFdt } from '../../src/boot-model/index.js';
import { treeIdentity } from '../../src/boot-model/board-tree.js';
import { scaffoldBoard } from '../../src/boards/scaffold.js';
import { defaultBoardsDir, getBoard } from '../../src/index.js';
import { cleanupTemp, copyDir, tempDir } from '../helpers/tmp.js';

describe('boards new: a profile from a sibling', () => {
  after(cleanupTemp);

  it("from qemu-virt: QEMU's comments are left out, and its vendor and SoC are flagged as copied", () => {
    const dir = copyDir(defaultBoardsDir());
    const file = scaffoldBoard('mybox', 'qemu-virt', { boardsDir: dir });
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /QEMU's generic arm64|acpi=off: with firmware|PL061's eight lines/, 'no comment of the sibling');
    assert.match(text, /^# Scaffolded by "nodeos-bsp boards new mybox --from qemu-virt"; qemu-virt's comments, about qemu-virt, are left out\./);
    const p = getBoard('mybox', { boardsDir: dir }).profile;
    assert.equal(p.statusReason, "new profile scaffolded from qemu-virt: qemu-virt's vendor and SoC were copied: verify detection, vendor, soc, the pin map, the devicetree");
    assert.deepEqual(p.detection.compatible, ['vendor,mybox']);
  });

  it("given the new board's own tree, its identity comes from there: detection, name (model), vendor, SoC and CPUs", () => {
    const t = tempDir();
    writeFileSync(join(t, 'b.dts'), `/dts-v1/;
/ {
	model = "Pine64 PINE A64";
	compatible = "pine64,pine64", "allwinner,sun50i-a64";
	#address-cells = <1>; #size-cells = <1>;
	cpus { #address-cells = <1>; #size-cells = <0>;
		cpu@0 { device_type = "cpu"; compatible = "arm,cortex-a53"; reg = <0>; };
		cpu@1 { device_type = "cpu"; compatible = "arm,cortex-a53"; reg = <1>; };
		cpu@2 { device_type = "cpu"; compatible = "arm,cortex-a53"; reg = <2>; };
		cpu@3 { device_type = "cpu"; compatible = "arm,cortex-a53"; reg = <3>; };
		l2-cache { compatible = "cache"; };
	};
};
`);
    const identity = treeIdentity(parseFdt(execFileSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', join(t, 'b.dts')])));
    assert.deepEqual(identity, { compatible: ['pine64,pine64', 'allwinner,sun50i-a64'], model: 'Pine64 PINE A64', cpu: { compatible: 'arm,cortex-a53', count: 4 } });
    const dir = copyDir(defaultBoardsDir());
    const doc = parse(readFileSync(scaffoldBoard('pine64', 'qemu-virt', { boardsDir: dir, identity }), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([doc.name, doc.vendor, doc.soc, (doc.detection as { compatible: string[] }).compatible], ['Pine64 PINE A64', 'pine64', { id: 'sun50i-a64', name: 'allwinner,sun50i-a64', cpu: 'Cortex-A53', cores: 4, compatible: 'allwinner,sun50i-a64' }, ['pine64,pine64']]);
    assert.match(String(doc.statusReason), /^new profile scaffolded from qemu-virt: verify the pin map, the devicetree$/);
    // A Pi sibling takes its vendor and SoC from its parents: only detection and name change.
    const pi = parse(readFileSync(scaffoldBoard('cm4', 'rpi4b', { boardsDir: dir, identity: { compatible: ['raspberrypi,4-compute-module', 'brcm,bcm2711'], model: 'Raspberry Pi Compute Module 4' } }), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([pi.name, pi.vendor, pi.soc, pi.extends], ['Raspberry Pi Compute Module 4', undefined, undefined, 'bcm2711']);
  });
});
