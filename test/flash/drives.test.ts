/**
 * The system-drive rules on lsblk JSON fixtures (no root, no real disks): roots, homes and
 * swaps on LUKS, LVM and RAID deep under a disk make it a system drive; cards are offered.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { candidateDrives, drivesFromLsblk, type LsblkTree } from '../../flash/index.js';

const fixture = (name: string): LsblkTree => JSON.parse(readFileSync(`test/fixtures/lsblk/${name}`, 'utf8')) as LsblkTree;
const none = { swaps: new Set<string>(), held: new Set<string>() };

describe('drives: system-drive rules on lsblk fixtures', () => {
  it('a laptop: root, swap and home on LVM on LUKS make the NVMe disk a system drive; the USB card is the only candidate', () => {
    const drives = drivesFromLsblk(fixture('laptop-luks-lvm.json'), none);
    const nvme = drives.find((d) => d.device === '/dev/nvme0n1')!;
    assert.equal(nvme.isSystem, true);
    for (const why of [/vg0-root .* mounted on \/$/, /vg0-swap .* active swap/, /vg0-home .* mounted on \/home/, /nvme0n1p1 .*mounted on \/boot\/efi/]) {
      assert.ok(nvme.systemReasons.some((r) => why.test(r)), `${why} in ${nvme.systemReasons.join('; ')}`);
    }
    assert.ok(nvme.systemReasons.some((r) => r.includes('/dev/mapper/vg0-root (on /dev/mapper/luks-3f1c on /dev/nvme0n1p3 on /dev/nvme0n1)')), 'names the chain');
    assert.deepEqual(candidateDrives(drives).map((d) => d.device), ['/dev/sdb']);
  });

  it('the same laptop with only the grandchildren mounted (no /boot partitions) is still a system drive', () => {
    const tree = fixture('laptop-luks-lvm.json');
    const nvme = tree.blockdevices[0]!;
    nvme.children = nvme.children!.filter((c) => c.name === 'nvme0n1p3');
    const d = drivesFromLsblk(tree, none).find((x) => x.device === '/dev/nvme0n1')!;
    assert.equal(d.isSystem, true);
    assert.equal(d.systemReasons.length, 3);
  });

  it('a server: both RAID members of a root md, a bare LVM disk with /var; an idle data disk is not system', () => {
    const drives = drivesFromLsblk(fixture('server-raid-lvm.json'), none);
    const by = (dev: string) => drives.find((d) => d.device === dev)!;
    assert.equal(by('/dev/sda').isSystem, true);
    assert.equal(by('/dev/sdc').isSystem, true);
    assert.equal(by('/dev/sdd').isSystem, true);
    assert.match(by('/dev/sdd').systemReasons[0]!, /vg2-var .* mounted on \/var/);
    assert.deepEqual(by('/dev/sdd').partitions, [], 'a logical volume is not a partition');
    assert.equal(by('/dev/sde').isSystem, false);
    assert.deepEqual(by('/dev/sde').mountpoints, ['/srv/data']);
    // The SD slot reports neither RM nor a transport: still offered as a card.
    assert.deepEqual(candidateDrives(drives).map((d) => d.device), ['/dev/mmcblk0']);
  });

  it('a swap from /proc/swaps and the disk holding the kit are system even when lsblk shows no mount', () => {
    const tree = fixture('server-raid-lvm.json');
    const drives = drivesFromLsblk(tree, { swaps: new Set(['/dev/sde1']), held: new Set(['/dev/mmcblk0p1']) });
    assert.match(drives.find((d) => d.device === '/dev/sde')!.systemReasons.join(), /active swap/);
    assert.match(drives.find((d) => d.device === '/dev/mmcblk0')!.systemReasons.join(), /holds the directory nodeos-bsp runs from/);
    assert.deepEqual(candidateDrives(drives), []);
  });
});
