/**
 * The users' partition safety rules, on partition tables and filesystems made here by the real
 * tools (needs e2fsprogs, dosfstools, fdisk, exfatprogs, f2fs-tools, cryptsetup-bin,
 * squashfs-tools, xorriso; lvm2 and root for the LVM case).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { diskOf, planUsersPartition, setupUsers, signatureAt, type UsersHost } from '../../src/runtime/usersfs.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { attachLoop, detachLoop, isRoot } from '../helpers/tools.js';

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

/** An MBR with the given partitions (MiB), as sfdisk writes it. */
function mbrWith(dir: string, parts: { start: number; size: number; type: string }[], diskMiB = 1024): Buffer {
  const disk = join(dir, `mbr-${parts.length}-${parts.map((p) => p.start).join('-')}.img`);
  execFileSync('truncate', ['-s', `${diskMiB}M`, disk]);
  const script = ['label: dos', ...parts.map((p) => `start=${p.start * 2048}, size=${p.size * 2048}, type=${p.type}`)].join('\n');
  execFileSync('sfdisk', ['-q', disk], { input: script });
  return firstSector(disk);
}

function firstSector(path: string): Buffer {
  const b = Buffer.alloc(512);
  const fd = openSync(path, 'r');
  readSync(fd, b, 0, 512, 0);
  closeSync(fd);
  return b;
}

describe("users' partition: only in space no partition uses (sfdisk-made tables)", () => {
  after(cleanupTemp);
  const spec = { number: 2, role: 'users' as const, name: 'users', filesystem: 'ext4' as const, startMiB: 132, sizeMiB: 'fill' as const, mbrType: '83', createdOnFirstBoot: true, mount: '/home' };
  const MiB = 1 << 20;

  it('a NodeOS card as flashed: the users partition fills the card after the boot partition', () => {
    const mbr = mbrWith(tempDir(), [{ start: 4, size: 128, type: 'c' }]);
    assert.deepEqual(planUsersPartition(mbr, 1024 * MiB, spec), { action: 'create', start: 132 * MiB, end: 1024 * MiB });
  });

  it('an existing third partition ends the users partition before it; one over the start stops it', () => {
    const dir = tempDir();
    const after3 = mbrWith(dir, [{ start: 4, size: 128, type: 'c' }, { start: 600, size: 100, type: '83' }]);
    // sfdisk puts the second line in slot 2: the users entry (number 2) is then taken -> mount.
    assert.deepEqual(planUsersPartition(after3, 1024 * MiB, spec), { action: 'mount' });
    // The same layout in entry 3, as the card had it.
    const slot3 = Buffer.from(after3);
    slot3.copy(slot3, 446 + 32, 446 + 16, 446 + 32);
    slot3.fill(0, 446 + 16, 446 + 32);
    assert.deepEqual(planUsersPartition(slot3, 1024 * MiB, spec), { action: 'create', start: 132 * MiB, end: 600 * MiB });
    const over = Buffer.from(slot3);
    over.writeUInt32LE(140 * 2048, 446 + 32 + 8);
    assert.match((planUsersPartition(over, 1024 * MiB, spec) as { reason: string }).reason, /partition 3 uses the space at 132 MiB/);
    const tooClose = Buffer.from(slot3);
    tooClose.writeUInt32LE(150 * 2048, 446 + 32 + 8);
    assert.equal(planUsersPartition(tooClose, 1024 * MiB, spec).action, 'skip');
  });

  it('an extended partition counts whole; a GPT or no table at all means do nothing', () => {
    const dir = tempDir();
    const ext = mbrWith(dir, [{ start: 4, size: 128, type: 'c' }, { start: 132, size: 500, type: '5' }]);
    const moved = Buffer.from(ext);
    moved.copy(moved, 446 + 32, 446 + 16, 446 + 32);
    moved.fill(0, 446 + 16, 446 + 32);
    assert.match((planUsersPartition(moved, 1024 * MiB, spec) as { reason: string }).reason, /extended/);
    const gptDisk = join(dir, 'gpt.img');
    execFileSync('truncate', ['-s', '1G', gptDisk]);
    execFileSync('sfdisk', ['-q', gptDisk], { input: 'label: gpt\nstart=2048, size=262144\n' });
    assert.match((planUsersPartition(firstSector(gptDisk), 1024 * MiB, spec) as { reason: string }).reason, /GPT/);
    assert.equal(planUsersPartition(Buffer.alloc(512), 1024 * MiB, spec).action, 'skip');
  });
});

describe('signatureAt recognises what blkid recognises for the common types', () => {
  after(cleanupTemp);
  const MiB = 1 << 20;

  /** A 64 MiB file made by a real tool; blkid -p must see a filesystem there too. */
  const cases: [string, (f: string) => void, string][] = [
    ['ext4', (f) => execFileSync('mkfs.ext4', ['-q', '-F', f]), 'ext2/3/4'],
    ['vfat', (f) => execFileSync('mkfs.vfat', ['-F', '32', f], { stdio: 'ignore' }), 'FAT'],
    ['swap', (f) => execFileSync('mkswap', [f], { stdio: 'ignore' }), 'swap'],
    ['exfat', (f) => execFileSync('mkfs.exfat', [f], { stdio: 'ignore' }), 'exFAT'],
    ['f2fs', (f) => execFileSync('mkfs.f2fs', ['-q', '-f', f], { stdio: 'ignore' }), 'F2FS'],
    ['luks2', (f) => execFileSync('cryptsetup', ['luksFormat', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '-q', f, '-'], { input: 'secret' }), 'LUKS'],
    ['luks1', (f) => execFileSync('cryptsetup', ['luksFormat', '--type', 'luks1', '--pbkdf-force-iterations', '1000', '-q', f, '-'], { input: 'secret' }), 'LUKS'],
    ['squashfs', (f) => {
      const src = `${f}.d`;
      mkdirSync(src);
      writeFileSync(join(src, 'a'), 'a');
      execFileSync('mksquashfs', [src, f, '-noappend', '-quiet'], { stdio: 'ignore' });
    }, 'squashfs'],
    ['iso9660', (f) => {
      const src = `${f}.d`;
      mkdirSync(src);
      writeFileSync(join(src, 'a'), 'a');
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-o', f, src], { stdio: 'ignore' });
    }, 'ISO9660'],
    ['nested MBR', (f) => execFileSync('sfdisk', ['-q', f], { input: 'label: dos\nstart=2048, size=4096, type=83\n' }), 'MBR partition table or boot sector'],
    ['nested GPT', (f) => execFileSync('sfdisk', ['-q', f], { input: 'label: gpt\nstart=2048, size=4096\n' }), 'GPT partition table'],
  ];
  for (const [what, make, expected] of cases) {
    it(`${what}: "${expected}", and blkid -p agrees there is something`, () => {
      const f = join(tempDir(), `${what.replace(/\s/g, '-')}.img`);
      execFileSync('truncate', ['-s', `${64 * MiB}`, f]);
      make(f);
      const blkid = spawnSync('blkid', ['-p', '-o', 'export', f], { encoding: 'utf8' });
      assert.match(blkid.stdout, /^(TYPE|PTTYPE)=/m, `blkid sees ${what}`);
      assert.equal(signatureAt(f, 0), expected);
    });
  }

  it('an LVM2 physical volume (pvcreate on a loop device, root)', function () {
    if (!isRoot()) this.skip();
    const f = join(tempDir(), 'pv.img');
    execFileSync('truncate', ['-s', `${64 * MiB}`, f]);
    const dev = attachLoop(f);
    try {
      execFileSync('pvcreate', ['-qq', dev], { stdio: 'ignore' });
      assert.match(execFileSync('blkid', ['-p', '-o', 'export', dev]).toString(), /TYPE=LVM2_member/);
      assert.equal(signatureAt(dev, 0), 'LVM2 physical volume');
      execFileSync('pvremove', ['-qq', '-y', dev], { stdio: 'ignore' });
    } finally {
      detachLoop(dev);
    }
  });
});

describe('setupUsers on made-up cards (a file as the disk, the kernel and mke2fs recorded)', function () {
  this.timeout(20_000);
  after(cleanupTemp);
  const MiB = 1 << 20;
  // A NodeOS card's layout: boot, system A, system B, then users as partition 4 at 640 MiB.
  const spec = { number: 4, role: 'users' as const, name: 'users', filesystem: 'ext4' as const, startMiB: 640, sizeMiB: 'fill' as const, mbrType: '0x83', createdOnFirstBoot: true, mount: '/home' };
  const NODEOS = [{ start: 4, size: 124, type: 'c' }, { start: 128, size: 256, type: '83' }, { start: 384, size: 256, type: '83' }];

  /** A 1 GiB sparse card (named /dev/mmcblk0 to init) and a host whose disk is that file. */
  function card(parts: { start: number; size: number; type: string }[], label = 'dos'): { file: string; host: UsersHost; calls: string[]; nodes: Set<string> } {
    const file = join(tempDir(), 'card.img');
    execFileSync('truncate', ['-s', '1G', file]);
    if (parts.length) execFileSync('sfdisk', ['-q', file], { input: [`label: ${label}`, ...parts.map((p) => `start=${p.start * 2048}, size=${p.size * 2048}, type=${p.type}`)].join('\n') });
    const calls: string[] = [];
    const nodes = new Set(parts.map((_, i) => `/dev/mmcblk0p${i + 1}`));
    const dev = (d: string): string => {
      assert.equal(d, '/dev/mmcblk0', 'only the card itself is read or written');
      return file;
    };
    const host: UsersHost = {
      diskBytes: (d) => statSync(dev(d)).size,
      read: (d, offset, length) => {
        const b = Buffer.alloc(length);
        const fd = openSync(dev(d), 'r');
        readSync(fd, b, 0, length, offset);
        closeSync(fd);
        return b;
      },
      writeAt: (d, offset, data) => {
        calls.push(`write ${data.length} bytes at ${offset}`);
        const fd = openSync(dev(d), 'r+');
        writeSync(fd, data, 0, data.length, offset);
        closeSync(fd);
      },
      exists: (p) => nodes.has(p),
      sleep: () => undefined,
      addPartition: (d, n) => {
        calls.push(`partx --add --nr ${n} ${d}`);
        nodes.add(`${d}p${n}`);
        return undefined;
      },
      makeExt4: (d) => (calls.push(`mke2fs ${d}`), undefined),
      mount: (d, at) => (calls.push(`mount ${d} ${at}`), undefined),
      writeFile: (p) => void calls.push(`write ${p}`),
      sync: () => undefined,
    };
    return { file, host, calls, nodes };
  }
  /** The table's sector and the region a users' partition would take (what setupUsers may write). */
  const sha = (f: string): string => {
    const h = createHash('sha256');
    const fd = openSync(f, 'r');
    for (const [at, len] of [[0, MiB], [640 * MiB, 64 * MiB]] as const) {
      const b = Buffer.alloc(len);
      readSync(fd, b, 0, len, at);
      h.update(b);
    }
    closeSync(fd);
    return h.digest('hex');
  };

  it('a card as flashed: entry 4 from 640 MiB to the end, announced, formatted, mounted; nothing else written', () => {
    const { file, host, calls } = card(NODEOS);
    const before = firstSector(file);
    assert.deepEqual(setupUsers('/dev/mmcblk0', spec, 'b1', host), { state: 'created', device: '/dev/mmcblk0p4' });
    assert.deepEqual(calls, ['write 16 bytes at 494', 'partx --add --nr 4 /dev/mmcblk0', 'mke2fs /dev/mmcblk0p4', 'mount /dev/mmcblk0p4 /home', 'write /home/.nodeos']);
    const after = firstSector(file);
    assert.ok(after.subarray(0, 494).equals(before.subarray(0, 494)) && after.subarray(510).equals(before.subarray(510)), 'only the 16 bytes of entry 4 changed');
    const table = JSON.parse(execFileSync('sfdisk', ['--json', file]).toString()) as { partitiontable: { partitions: { node: string; start: number; size: number; type: string }[] } };
    assert.deepEqual(table.partitiontable.partitions[3], { node: `${file}4`, start: 640 * 2048, size: 384 * 2048, type: '83' });
  });

  it('free space that holds a filesystem (outside the table) is never formatted: nothing written at all', () => {
    const { file, host, calls } = card(NODEOS);
    const fs = join(tempDir(), 'someone.ext4');
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'keepme', fs, '64M']);
    execFileSync('dd', [`if=${fs}`, `of=${file}`, 'bs=1M', 'seek=640', 'conv=notrunc', 'status=none']);
    const before = sha(file);
    const r = setupUsers('/dev/mmcblk0', spec, 'b1', host);
    assert.deepEqual(r, { state: 'skipped', reason: 'the free space at 640 MiB already holds a ext2/3/4 filesystem: not touching it' });
    assert.deepEqual(calls, []);
    assert.equal(sha(file), before);
  });

  it('a second boot: entry 4 exists, so it is only mounted', () => {
    const { file, host, calls } = card([...NODEOS, { start: 640, size: 384, type: '83' }]);
    const before = sha(file);
    assert.deepEqual(setupUsers('/dev/mmcblk0', spec, 'b1', host), { state: 'mounted', device: '/dev/mmcblk0p4' });
    assert.deepEqual(calls, ['mount /dev/mmcblk0p4 /home']);
    assert.equal(sha(file), before);
  });

  it('tables it must not touch: a partition over 640 MiB, an extended one, a GPT; no table at all', () => {
    for (const [parts, label, why] of [
      [[...NODEOS.slice(0, 2), { start: 384, size: 400, type: '83' }], 'dos', /partition 3 uses the space at 640 MiB/],
      [[...NODEOS.slice(0, 2), { start: 384, size: 600, type: '5' }], 'dos', /partition 3 \(extended\)/],
      [[{ start: 4, size: 124, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B' }], 'gpt', /GPT/],
      [[], 'dos', /no MBR partition table/],
    ] as const) {
      const { file, host, calls } = card([...parts], label);
      const before = sha(file);
      const r = setupUsers('/dev/mmcblk0', spec, 'b1', host);
      assert.equal(r.state, 'skipped');
      assert.match((r as { reason: string }).reason, why);
      assert.deepEqual(calls, []);
      assert.equal(sha(file), before, 'nothing written');
    }
  });

  it('the kernel does not pick the new entry up: says so, and formats nothing', () => {
    const { host, calls } = card(NODEOS);
    host.addPartition = (d, n) => (calls.push(`partx --add --nr ${n} ${d}`), 'BLKPG: Device or resource busy');
    const r = setupUsers('/dev/mmcblk0', spec, 'b1', host);
    assert.deepEqual(r, { state: 'skipped', reason: 'created /dev/mmcblk0p4 but the kernel did not pick it up: BLKPG: Device or resource busy' });
    assert.ok(!calls.some((c) => c.startsWith('mke2fs')));
  });
});
