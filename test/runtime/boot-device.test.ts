/**
 * Which partition init takes as /boot, on sysfs trees made here (no root): the one the
 * kernel command line names by PARTUUID, never another NodeOS card in a USB reader, and
 * none when two cards from one image carry the same name.
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootArgument, chooseBootPartition, scanPartitions } from '../../src/runtime/boot-device.js';
import { buildFat32, buildMbr } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** A disk in a fake root: its sysfs directories and links, and /dev files with its MBR and the first partition's boot sector. */
function addDisk(root: string, bus: string, disk: string, parts: string[], signature: number, label = 'NODEOS'): void {
  const devdir = join(root, 'sys/devices', bus, 'block', disk);
  mkdirSync(devdir, { recursive: true });
  mkdirSync(join(root, 'sys/class/block'), { recursive: true });
  mkdirSync(join(root, 'dev'), { recursive: true });
  symlinkSync(join('../../devices', bus, 'block', disk), join(root, 'sys/class/block', disk));
  writeFileSync(join(root, 'dev', disk), buildMbr(parts.map((_, i) => ({ start: 8192 + i * 262144, sectors: 262144, type: i === 0 ? 0x0c : 0x83, bootable: i === 0 })), signature));
  parts.forEach((p, i) => {
    mkdirSync(join(devdir, p));
    writeFileSync(join(devdir, p, 'partition'), `${i + 1}\n`);
    symlinkSync(join('../../devices', bus, 'block', disk, p), join(root, 'sys/class/block', p));
    const fat = buildFat32([], { size: 64 << 20, label, volumeId: 1, mtime: 0, hiddenSectors: 0 });
    writeFileSync(join(root, 'dev', p), i === 0 ? fat.extents[0]!.data.subarray(0, 512) : Buffer.alloc(512));
  });
}

describe('boot partition: the one the kernel command line names', () => {
  after(cleanupTemp);

  it('reads PARTUUIDs and labels from sysfs and the disks\' first sectors', () => {
    const root = tempDir();
    addDisk(root, 'platform/soc/3f202000.mmc/mmc_host/mmc0/mmc0:aaaa', 'mmcblk0', ['mmcblk0p1', 'mmcblk0p2'], 0x1a2b3c4d);
    const parts = scanPartitions(root);
    assert.deepEqual(parts, [
      { device: '/dev/mmcblk0p1', disk: '/dev/mmcblk0', number: 1, partuuid: '1a2b3c4d-01', label: 'NODEOS' },
      { device: '/dev/mmcblk0p2', disk: '/dev/mmcblk0', number: 2, partuuid: '1a2b3c4d-02' },
    ]);
    assert.equal(bootArgument('console=ttyS1,115200 nodeos.boot=PARTUUID=1a2b3c4d-01 TERM=dumb'), 'PARTUUID=1a2b3c4d-01');
  });

  it('a second NodeOS card (another image) in a USB reader is never taken, whichever is listed first', () => {
    const root = tempDir();
    // sda sorts before mmcblk0: the old "first FAT labelled NODEOS" rule took the USB card.
    addDisk(root, 'platform/soc/3f980000.usb/usb1/1-1/host0/target0:0:0/0:0:0:0', 'sda', ['sda1', 'sda2'], 0x99999999);
    addDisk(root, 'platform/soc/3f202000.mmc/mmc_host/mmc0/mmc0:aaaa', 'mmcblk0', ['mmcblk0p1'], 0x1a2b3c4d);
    const c = chooseBootPartition(scanPartitions(root), 'nodeos.build=abc nodeos.boot=PARTUUID=1a2b3c4d-01');
    assert.ok(c.ok);
    assert.equal(c.partition.device, '/dev/mmcblk0p1');
    assert.equal(c.partition.disk, '/dev/mmcblk0');
    // Without the argument (an older image) two NODEOS labels are ambiguous: none is taken.
    const old = chooseBootPartition(scanPartitions(root), 'nodeos.build=abc');
    assert.equal(old.ok, false);
    assert.match((old as { reason: string }).reason, /all labelled NODEOS/);
  });

  it('two cards from the same image: neither is chosen, and init says why', () => {
    const root = tempDir();
    addDisk(root, 'usb/sda', 'sda', ['sda1'], 0x1a2b3c4d);
    addDisk(root, 'mmc/mmcblk0', 'mmcblk0', ['mmcblk0p1'], 0x1a2b3c4d);
    const c = chooseBootPartition(scanPartitions(root), 'nodeos.boot=PARTUUID=1A2B3C4D-01');
    assert.deepEqual({ ok: c.ok, final: (c as { final: boolean }).final }, { ok: false, final: true });
    assert.match((c as { reason: string }).reason, /\/dev\/mmcblk0p1 and \/dev\/sda1 all have PARTUUID=1a2b3c4d-01.*remove the other card/);
  });

  it('not there (yet) is worth waiting for; a malformed argument is not', () => {
    const root = tempDir();
    addDisk(root, 'usb/sda', 'sda', ['sda1'], 0x99999999);
    const missing = chooseBootPartition(scanPartitions(root), 'nodeos.boot=PARTUUID=1a2b3c4d-01');
    assert.deepEqual([missing.ok, (missing as { final: boolean }).final], [false, false]);
    const bad = chooseBootPartition(scanPartitions(root), 'nodeos.boot=/dev/sda1');
    assert.deepEqual([bad.ok, (bad as { final: boolean }).final], [false, true]);
  });
});
