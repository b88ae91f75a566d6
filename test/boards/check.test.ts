/**
 * The broken-profiles suite: each case breaks a copy of the shipped profiles in one way and
 * shows that `boards check` reports exactly the rule(s) that break, with the file and path.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, type Document } from 'yaml';
import { checkBoards, defaultBoardsDir, loadBoards, ProfileError, type ProfileFinding } from '../../src/index.js';
import { cleanupTemp, copyDir, tempDir } from '../helpers/tmp.js';

type Edit = (dir: string) => void;

const yamlEdit =
  (file: string, fn: (doc: Document) => void): Edit =>
  (dir) => {
    const p = join(dir, file);
    const doc = parseDocument(readFileSync(p, 'utf8'));
    fn(doc);
    writeFileSync(p, doc.toString());
  };

const textEdit =
  (file: string, from: string | RegExp, to: string): Edit =>
  (dir) => {
    const p = join(dir, file);
    const before = readFileSync(p, 'utf8');
    const after = before.replace(from, to);
    assert.notEqual(after, before, `edit of ${file} changed nothing`);
    writeFileSync(p, after);
  };

const writeFile =
  (file: string, text: string): Edit =>
  (dir) =>
    writeFileSync(join(dir, file), text);

function findingsAfter(edit: Edit, dtbDir?: string): ProfileFinding[] {
  const dir = copyDir(defaultBoardsDir());
  edit(dir);
  return checkBoards({ boardsDir: dir }, dtbDir).findings;
}

interface Case {
  name: string;
  edit: Edit;
  /** Every code that must be reported, and nothing else. */
  codes: string[];
  /** Where the first finding of the first code must point. */
  at?: { file: string; path?: string };
}

const cases: Case[] = [
  { name: 'YAML that does not parse', edit: writeFile('bad.yaml', 'id: bad\nname: [unclosed\n'), codes: ['EPROFILE_PARSE'], at: { file: 'bad.yaml' } },
  {
    name: 'a value of the wrong type',
    edit: yamlEdit('rpi3b.yaml', (d) => d.set('status', 'maybe')),
    codes: ['EPROFILE_SCHEMA'],
    at: { file: 'rpi3b.yaml', path: '/status' },
  },
  {
    name: 'an unknown field deep in the file',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['devicetree', 'dbt'], 'x.dtb')),
    codes: ['EPROFILE_SCHEMA'],
    at: { file: 'rpi3b.yaml', path: '/devicetree' },
  },
  {
    name: 'a board missing a required field after extends',
    edit: yamlEdit('rpi3b.yaml', (d) => d.delete('devicetree')),
    codes: ['EPROFILE_SCHEMA'],
    at: { file: 'rpi3b.yaml', path: '' },
  },
  { name: 'two profiles with one id', edit: (dir) => writeFileSync(join(dir, 'copy.yaml'), readFileSync(join(dir, 'rpi3b.yaml'))), codes: ['EPROFILE_DUPLICATE_ID'], at: { file: 'rpi3b.yaml', path: '/id' } },
  { name: 'extends an unknown profile', edit: yamlEdit('rpi3b.yaml', (d) => d.set('extends', 'bcm9999')), codes: ['EPROFILE_EXTENDS_UNKNOWN'], at: { file: 'rpi3b.yaml', path: '/extends' } },
  { name: 'an extends cycle', edit: yamlEdit('base/rpi.yaml', (d) => d.set('extends', 'bcm2837')), codes: ['EPROFILE_EXTENDS_CYCLE'] },
  {
    name: 'an inherited list rewritten instead of changed',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['kernel', 'modules'], ['i2c-dev'])),
    // The rewritten list also lost the Wi-Fi driver, and that is reported too.
    codes: ['EPROFILE_LIST_OVERRIDE', 'EWIFI_MODULES'],
    at: { file: 'rpi3b.yaml', path: '/kernel/modules' },
  },
  { name: 'removing what is not inherited', edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['kernel', 'modules'], { remove: ['nope'] })), codes: ['EPROFILE_LIST_REMOVE'], at: { file: 'rpi3b.yaml', path: '/kernel/modules/remove' } },
  { name: 'adding what is already inherited', edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['kernel', 'modules'], { add: ['ext4'] })), codes: ['EPROFILE_LIST_DUPLICATE'] },
  { name: 'a USB gadget without its modules', edit: yamlEdit('rpi3b.yaml', (d) => d.set('usbGadget', { kind: 'ecm' })), codes: ['EPROFILE_GADGET_MODULES'], at: { file: 'rpi3b.yaml', path: '/usbGadget' } },
  { name: 'Wi-Fi without its driver', edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['kernel', 'modules'], { remove: ['brcmfmac-wcc'] })), codes: ['EWIFI_MODULES'], at: { file: 'rpi3b.yaml', path: '/wifi/modules' } },
  {
    name: 'a Wi-Fi firmware file listed twice, and one outside /usr/lib/firmware',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['wifi', 'firmware', 'files'], ['brcm/brcmfmac43430-sdio.bin', 'brcm/brcmfmac43430-sdio.bin', 'brcm/../../../etc/shadow'])),
    codes: ['EWIFI_FIRMWARE'],
    at: { file: 'rpi3b.yaml', path: '/wifi/firmware/files/1' },
  },
  { name: "a Pi's radio without its firmware (only a simulated one goes without)", edit: yamlEdit('rpi3b.yaml', (d) => d.deleteIn(['wifi', 'firmware'])), codes: ['EWIFI_FIRMWARE'], at: { file: 'rpi3b.yaml', path: '/wifi' } },
  { name: 'a wip board without a reason', edit: yamlEdit('rpi3b.yaml', (d) => d.set('status', 'wip')), codes: ['EPROFILE_STATUS_REASON'], at: { file: 'rpi3b.yaml', path: '/statusReason' } },
  { name: 'an ARMv6 board claiming support', edit: yamlEdit('rpi0w.yaml', (d) => d.set('status', 'community')), codes: ['EARCH_NO_NODE'] },
  {
    name: 'two boards claiming one compatible string',
    edit: yamlEdit('rpi3bplus.yaml', (d) => d.setIn(['detection', 'compatible'], ['raspberrypi,3-model-b'])),
    codes: ['EBOARD_DUP_COMPATIBLE'],
  },
  {
    name: 'two boards claiming one revision code',
    edit: yamlEdit('rpi3bplus.yaml', (d) => d.setIn(['detection', 'revisions'], ['a020d3', 'A02082'])),
    codes: ['EBOARD_DUP_REVISION'],
  },
  { name: 'a physical pin listed twice', edit: textEdit('base/rpi.yaml', '{ pin: 4, kind: power', '{ pin: 2, kind: power'), codes: ['EPIN_DUPLICATE', 'EPIN_MISSING'] },
  { name: 'a GPIO line on two pins', edit: textEdit('base/rpi.yaml', '{ pin: 13, kind: gpio, line: 27 }', '{ pin: 13, kind: gpio, line: 17 }'), codes: ['EPIN_LINE_DUPLICATE'] },
  {
    // An A64's PA1 and PL1: line 1 of two controllers is two lines, but both would be GPIO1.
    name: 'line 1 of a second controller, without a name of its own',
    edit: yamlEdit('qemu-virt.yaml', (d) => {
      d.setIn(['gpio', 'controllers', 1], d.createNode({ id: 'r', label: 'r-pio', lines: 32 }));
      d.setIn(['header', 'pins', 7], d.createNode({ pin: 8, kind: 'gpio', line: 1, controller: 'r' }));
    }),
    codes: ['EPIN_NAME_DUPLICATE'],
    at: { file: 'qemu-virt.yaml', path: '/header/pins/7' },
  },
  {
    name: 'pins named by the SoC (PA1, PL1) on two controllers: no finding',
    edit: yamlEdit('qemu-virt.yaml', (d) => {
      d.setIn(['gpio', 'controllers', 1], d.createNode({ id: 'r', label: 'r-pio', lines: 32 }));
      d.setIn(['header', 'pins', 1], d.createNode({ pin: 2, kind: 'gpio', line: 1, name: 'PA1' }));
      d.setIn(['header', 'pins', 7], d.createNode({ pin: 8, kind: 'gpio', line: 1, controller: 'r', name: 'PL1' }));
    }),
    codes: [],
  },
  {
    name: 'a header with a hole',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['header', 'pins'], { remove: [39] })),
    codes: ['EPIN_MISSING'],
    at: { file: 'rpi3b.yaml', path: '/header/pins' },
  },
  {
    name: 'a gpio pin without a line',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['header', 'pins'], { remove: [11], add: [{ pin: 11, kind: 'gpio' }] })),
    codes: ['EPIN_INVALID'],
  },
  {
    name: 'a line beyond the controller',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['header', 'pins'], { remove: [11], add: [{ pin: 11, kind: 'gpio', line: 60 }] })),
    codes: ['EPIN_INVALID'],
  },
  {
    name: 'a pin on an undeclared controller',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['header', 'pins'], { remove: [11], add: [{ pin: 11, kind: 'gpio', line: 17, controller: 'nope' }] })),
    codes: ['EPIN_CONTROLLER'],
  },
  {
    name: 'an alias on two pins',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['header', 'pins'], { remove: [11], add: [{ pin: 11, kind: 'gpio', line: 17, aliases: ['SDA'] }] })),
    codes: ['EPIN_ALIAS_DUPLICATE'],
  },
  {
    name: 'an alias that looks like a generated name',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['header', 'pins'], { remove: [11], add: [{ pin: 11, kind: 'gpio', line: 17, aliases: ['BCM4'] }] })),
    codes: ['EPIN_ALIAS_RESERVED'],
  },
  {
    name: 'a GPIO line used by two bus functions',
    edit: yamlEdit('rpi3b.yaml', (d) => d.set('buses', { add: [{ id: 'i2c9', kind: 'i2c', device: '/dev/i2c-9', pins: { sda: 2, scl: 27 } }] })),
    codes: ['EPIN_CONFLICT'],
    at: { file: 'rpi3b.yaml', path: '/buses/3/pins/sda' },
  },
  {
    name: 'a bus pin the header does not carry',
    edit: yamlEdit('rpi3b.yaml', (d) => d.set('buses', { add: [{ id: 'uart3', kind: 'uart', device: '/dev/ttyAMA3', pins: { txd: 30, rxd: 5 } }] })),
    codes: ['EBUS_PIN_NOT_ON_HEADER'],
  },
  {
    name: 'a bus pin given as a line number on a board whose banks each number from 0 (rock64: line 4 is on three pins)',
    edit: yamlEdit('rock64.yaml', (d) => d.setIn(['buses', 0, 'pins', 'sda'], 4)),
    codes: ['EBUS_PIN_AMBIGUOUS'],
    at: { file: 'rock64.yaml', path: '/buses/0/pins/sda' },
  },
  {
    name: 'a bus pin named but not on the header, and one named twice',
    edit: yamlEdit('rock64.yaml', (d) => d.setIn(['buses', 0, 'pins'], { sda: 'GPIO3_D7', scl: 'I2C1_SDA', sda2: 'GPIO2_A4' })),
    codes: ['EBUS_PIN_NOT_ON_HEADER', 'EPIN_CONFLICT'],
  },
  {
    name: 'two buses with one id',
    edit: textEdit(
      'base/rpi.yaml',
      'buses:\n',
      'buses:\n  - { id: i2c0, kind: i2c, device: /dev/i2c-0, pins: {} }\n  - { id: i2c0, kind: i2c, device: /dev/i2c-10, pins: {} }\n',
    ),
    codes: ['EBUS_DUPLICATE'],
  },
  { name: 'a console that the cmdline contradicts', edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['console', 'baud'], 9600)), codes: ['ECONSOLE_CMDLINE'], at: { file: 'rpi3b.yaml', path: '/kernel/cmdline' } },
  { name: 'a console on a bus that is not its UART', edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['console', 'uart'], 'spi0')), codes: ['ECONSOLE_UART'] },
  { name: 'a misaligned partition', edit: textEdit('base/rpi.yaml', 'startMiB: 4\n    sizeMiB: 124', 'startMiB: 6\n    sizeMiB: 122'), codes: ['EPARTITION_ALIGN'] },
  { name: 'overlapping partitions', edit: textEdit('base/rpi.yaml', 'sizeMiB: 124', 'sizeMiB: 200'), codes: ['EPARTITION_OVERLAP'] },
  {
    name: 'a fill partition that is not last',
    edit: yamlEdit('rpi3b.yaml', (d) => d.set('partitions', { remove: ['system-b'], add: [{ name: 'system-b', filesystem: 'squashfs', mbrType: '0x83', startMiB: 4096, sizeMiB: 64, slot: 'B' }] })),
    codes: ['EPARTITION_FILL', 'EPARTITION_OVERLAP'],
  },
  {
    name: 'a board booted by U-Boot without system slot B',
    edit: yamlEdit('rpi3b.yaml', (d) => d.set('partitions', { remove: ['system-b'] })),
    codes: ['EPARTITION_SLOTS'],
  },
  { name: 'a system slot that is not a squashfs', edit: textEdit('base/rpi.yaml', 'filesystem: squashfs\n    mbrType: "0x83"\n    startMiB: 128', 'filesystem: ext4\n    mbrType: "0x83"\n    startMiB: 128'), codes: ['EPARTITION_SLOTS'] },
  { name: 'no scratch RAM for boot.scr', edit: textEdit('base/rpi.yaml', '      scriptaddr: "0x09000000"\n', ''), codes: ['EBOOT_ENV'] },
  { name: 'a profile setting a slot variable of the kit', edit: textEdit('base/rpi.yaml', '      scriptaddr: "0x09000000"\n', '      scriptaddr: "0x09000000"\n      nodeos_order: "B A"\n'), codes: ['EBOOT_ENV'] },
  {
    name: 'more partitions than an MBR holds',
    edit: yamlEdit('rpi3b.yaml', (d) =>
      d.set('partitions', {
        remove: ['users'],
        add: [640, 768].map((startMiB, i) => ({ name: `p${i}`, filesystem: 'ext4', mbrType: '0x83', startMiB, sizeMiB: 128 })),
      }),
    ),
    codes: ['EPARTITION_COUNT'],
  },
  { name: 'no bootable partition', edit: textEdit('base/rpi.yaml', 'bootable: true', 'bootable: false'), codes: ['EPARTITION_BOOT'] },
  {
    name: 'a kernel fragment that does not exist',
    edit: yamlEdit('rpi3b.yaml', (d) => d.setIn(['kernel', 'fragments'], { add: ['features/nope.config'] })),
    codes: ['EFRAGMENT_MISSING'],
    at: { file: 'rpi3b.yaml', path: '/kernel/fragments/14' },
  },
  {
    name: 'an LED id used twice',
    edit: yamlEdit('rpi3bplus.yaml', (d) => d.set('leds', [{ id: 'act', sysfs: ['ACT'] }, { id: 'act', sysfs: ['led0'] }])),
    codes: ['ELED_DUPLICATE'],
  },
  { name: 'no U-Boot to boot through', edit: yamlEdit('qemu-virt.yaml', (d) => d.deleteIn(['boot', 'uboot'])), codes: ['EBOOT_UBOOT'], at: { file: 'qemu-virt.yaml', path: '/boot/uboot' } },
  {
    name: 'a profile U-Boot variable the kit writes itself',
    edit: yamlEdit('qemu-virt.yaml', (d) => d.setIn(['boot', 'uboot', 'env', 'bootcmd'], 'boot')),
    codes: ['EBOOT_ENV'],
    at: { file: 'qemu-virt.yaml', path: '/boot/uboot/env/bootcmd' },
  },
  {
    name: 'the Raspberry Pi firmware method without firmware',
    edit: yamlEdit('qemu-virt.yaml', (d) => d.setIn(['boot', 'method'], 'rpi-firmware-uboot')),
    codes: ['EBOOT_FIRMWARE'],
    at: { file: 'qemu-virt.yaml', path: '/boot/firmware' },
  },
  {
    name: "a board whose U-Boot is its firmware, with the kit's DTB but nowhere to load it",
    edit: yamlEdit('qemu-virt.yaml', (d) => d.setIn(['devicetree', 'dtb'], 'arm/foundation-v8.dtb')),
    codes: ['EBOOT_ENV'],
    at: { file: 'qemu-virt.yaml', path: '/boot/uboot/env/fdt_addr_r' },
  },
  {
    name: 'a raw boot loader piece inside the first partition',
    edit: yamlEdit('qemu-virt.yaml', (d) => d.setIn(['boot', 'uboot', 'raw'], [{ file: 'qemu_arm64/u-boot.bin', offset: 4 * 1024 * 1024 }])),
    codes: ['EBOOT_RAW'],
    at: { file: 'qemu-virt.yaml', path: '/boot/uboot/raw/0/offset' },
  },
  {
    name: 'a raw boot loader piece outside its package',
    edit: yamlEdit('qemu-virt.yaml', (d) => d.setIn(['boot', 'uboot', 'raw'], [{ file: '../../etc/shadow', offset: 8192 }])),
    codes: ['EPROFILE_PATH'],
    at: { file: 'qemu-virt.yaml', path: '/boot/uboot/raw/0/file' },
  },
  {
    name: 'overlays on a board whose firmware provides the device tree',
    edit: yamlEdit('qemu-virt.yaml', (d) => d.setIn(['devicetree', 'overlays'], ['disable-bt'])),
    codes: ['EDTB_OVERLAYS'],
    at: { file: 'qemu-virt.yaml', path: '/devicetree/overlays' },
  },
  {
    name: 'a U-Boot file outside its package (a host file copied into the image)',
    edit: textEdit('base/rpi.yaml', 'file: rpi_arm64/u-boot.bin', 'file: ../../../../../etc/shadow'),
    codes: ['EPROFILE_PATH'],
    // Reported on each board that inherits it; the first in order is rpi0-2w.
    at: { file: 'rpi0-2w.yaml', path: '/boot/uboot/file' },
  },
  {
    name: 'a DTB given as an absolute path',
    edit: textEdit('rpi3b.yaml', 'dtb: broadcom/bcm2837-rpi-3-b.dtb', 'dtb: /etc/passwd'),
    codes: ['EPROFILE_PATH'],
    at: { file: 'rpi3b.yaml', path: '/devicetree/dtb' },
  },
  {
    name: 'a firmware file and a kernel fragment that climb out with ..',
    edit: (dir) => {
      textEdit('base/bcm2837.yaml', 'files: [bootcode.bin, start.elf, fixup.dat]', 'files: [bootcode.bin, start.elf, ../../../../etc/hostname]')(dir);
      textEdit('base/bcm2837.yaml', 'add: [soc/bcm283x.config, soc/bcm283x-sdhost.config,', 'add: [soc/bcm283x.config, soc/../../../secret.config,')(dir);
    },
    codes: ['EPROFILE_PATH'],
  },
  {
    name: 'an overlay name that leaves overlays/',
    edit: textEdit('rpi4b.yaml', 'overlays: [qemu-raspi4b, qemu-no-watchdog]', 'overlays: [../../tmp/evil]'),
    codes: ['EPROFILE_PATH'],
    at: { file: 'rpi4b.yaml', path: '/emulation/qemu/overlays/0' },
  },
  {
    name: 'an emulation overlay that does not exist',
    edit: textEdit('rpi4b.yaml', 'overlays: [qemu-raspi4b, qemu-no-watchdog]', 'overlays: [qemu-raspi4c]'),
    codes: ['EOVERLAY_MISSING'],
    at: { file: 'rpi4b.yaml', path: '/emulation/qemu/overlays/0' },
  },
  {
    name: "a console QEMU's serial ports do not include",
    edit: textEdit('rpi3b.yaml', 'serial: [ttyAMA0, ttyS1]', 'serial: [ttyAMA0]'),
    codes: ['EQEMU_SERIAL'],
    at: { file: 'rpi3b.yaml', path: '/emulation/qemu/serial' },
  },
];

describe('boards check: broken profiles, one per rule', () => {
  after(cleanupTemp);

  for (const c of cases) {
    it(`${c.codes.join(' + ')}: ${c.name}`, () => {
      const findings = findingsAfter(c.edit);
      assert.deepEqual([...new Set(findings.map((f) => f.code))].sort(), [...c.codes].sort(), JSON.stringify(findings, null, 1));
      for (const f of findings) assert.ok(f.message.length > 20 && f.file, `finding has a useful message: ${JSON.stringify(f)}`);
      if (c.at) {
        const f = findings.find((x) => x.code === c.codes[0]);
        assert.equal(f?.file, c.at.file);
        if (c.at.path !== undefined) assert.equal(f?.path, c.at.path);
      }
    });
  }

  it('EDTB_MISSING: a DTB the unpacked kernel does not ship', () => {
    const dtbs = tempDir();
    for (const vendor of ['broadcom', 'allwinner', 'rockchip']) mkdirSync(join(dtbs, vendor));
    const all = loadBoards().boards.flatMap((b) => b.profile.devicetree.dtb ?? []);
    for (const d of all) if (d !== 'broadcom/bcm2837-rpi-3-b.dtb') writeFileSync(join(dtbs, d), '');
    const findings = findingsAfter(() => undefined, dtbs);
    assert.deepEqual(findings.map((f) => [f.code, f.board, f.path]), [['EDTB_MISSING', 'rpi3b', '/devicetree/dtb']]);
  });

  it('loadBoards throws one ProfileError carrying every finding', () => {
    const dir = copyDir(defaultBoardsDir());
    yamlEdit('rpi3b.yaml', (d) => d.set('extends', 'nope'))(dir);
    assert.throws(
      () => loadBoards({ boardsDir: dir }),
      (e: unknown) => e instanceof ProfileError && e.code === 'EPROFILE_EXTENDS_UNKNOWN' && e.findings.length === 1 && /rpi3b\.yaml \/extends/.test(e.message),
    );
  });
});
