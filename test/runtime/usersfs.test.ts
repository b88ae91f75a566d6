/** The users' partition safety rules, on real filesystems made here (needs e2fsprogs, dosfstools). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diskOf, signatureAt } from '../../src/runtime/usersfs.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe("users' partition rules", () => {
  after(cleanupTemp);

  it('recognises existing filesystems so first boot never formats them', () => {
    const dir = tempDir();
    const MiB = 1 << 20;
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(0));
    execFileSync('truncate', ['-s', String(200 * MiB), disk]);
    const ext = join(dir, 'ext.img');
    execFileSync('mkfs.ext4', ['-q', '-F', ext, '64M']);
    execFileSync('dd', [`if=${ext}`, `of=${disk}`, 'bs=1M', 'seek=128', 'conv=notrunc', 'status=none']);
    const fat = join(dir, 'fat.img');
    execFileSync('mkfs.fat', ['-C', fat, String(40 * 1024)], { stdio: 'ignore' });
    execFileSync('dd', [`if=${fat}`, `of=${disk}`, 'bs=1M', 'seek=4', 'conv=notrunc', 'status=none']);
    assert.equal(signatureAt(disk, 128 * MiB), 'ext2/3/4');
    assert.equal(signatureAt(disk, 4 * MiB), 'FAT');
    assert.equal(signatureAt(disk, 64 * MiB), undefined, 'zeros are free space');
    const swap = join(dir, 'swap.img');
    execFileSync('truncate', ['-s', '1M', swap]);
    execFileSync('mkswap', [swap], { stdio: 'ignore' });
    assert.equal(signatureAt(swap, 0), 'swap');
  });

  it('names partitions of mmcblk and sd disks', () => {
    assert.equal(diskOf('/dev/mmcblk0p1').disk, '/dev/mmcblk0');
    assert.equal(diskOf('/dev/mmcblk0p1').part(2), '/dev/mmcblk0p2');
    assert.equal(diskOf('/dev/sda1').part(2), '/dev/sda2');
    assert.equal(diskOf('/dev/nvme0n1p1').part(2), '/dev/nvme0n1p2');
  });
});
