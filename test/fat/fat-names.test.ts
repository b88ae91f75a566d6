/**
 * FAT directory entries compared byte for byte with those mtools writes for the same
 * names (needs mtools and dosfstools). The Pi's boot ROM and GPU firmware find
 * bootcode.bin, start.elf, config.txt and the DTB by their 8.3 names, so those names must
 * be stored as plain upper-case 8.3 entries with the lower-case flags, not as `~1` names.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFat32, Fat32Reader, shortName, writeSparseImage } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { run } from '../helpers/tools.js';

const MiB = 1 << 20;
const EPOCH = 1_735_689_600; // 2025-01-01T00:00:00Z

/** A directory's raw entries: LFN entries whole, short entries as name/attr/case flags/mtime/size. */
function rawEntries(part: Buffer, path: string[] = []): string[] {
  const bps = part.readUInt16LE(11);
  const spc = part[13]!;
  const reserved = part.readUInt16LE(14);
  const fats = part[16]!;
  const fatSectors = part.readUInt32LE(36);
  const dataStart = (reserved + fats * fatSectors) * bps;
  const clusterBytes = spc * bps;
  const fatAt = reserved * bps;
  const chain = (c: number): Buffer => {
    const out: Buffer[] = [];
    for (; c >= 2 && c < 0x0ffffff8; c = part.readUInt32LE(fatAt + c * 4) & 0x0fffffff) out.push(part.subarray(dataStart + (c - 2) * clusterBytes, dataStart + (c - 1) * clusterBytes));
    return Buffer.concat(out);
  };
  let cluster = part.readUInt32LE(44);
  for (const name of path) {
    const d = chain(cluster);
    let found = -1;
    for (let p = 0; p < d.length && d[p] !== 0; p += 32) if (d[p + 11] === 0x10 && d.toString('latin1', p, p + 11).trim() === name) found = (d.readUInt16LE(p + 20) << 16) | d.readUInt16LE(p + 26);
    assert.ok(found > 0, `directory ${name}`);
    cluster = found;
  }
  const d = chain(cluster);
  const out: string[] = [];
  for (let p = 0; p < d.length && d[p] !== 0; p += 32) {
    const e = d.subarray(p, p + 32);
    if (e[11] === 0x08) continue; // the volume label: mkfs.fat and the kit may differ
    if (e[11] === 0x0f) out.push(`LFN ${e.toString('hex')}`);
    else if (e.toString('latin1', 0, 2) === '. ' || e.toString('latin1', 0, 3) === '.. ') out.push(`${e.toString('latin1', 0, 11)} dir`);
    // mmd stamps a directory with the current time: compare directories without it.
    else if (e[11] === 0x10) out.push(`${JSON.stringify(e.toString('latin1', 0, 11))} attr=10 case=${e[12]!.toString(16)}`);
    else out.push(`${JSON.stringify(e.toString('latin1', 0, 11))} attr=${e[11]!.toString(16)} case=${e[12]!.toString(16)} mtime=${e.readUInt32LE(22).toString(16)} size=${e.readUInt32LE(28)}`);
  }
  return out;
}

/** The boot files of every board (firmware, U-Boot, the kit's own names), and names that need long entries. */
const NAMES = [
  'bootcode.bin', 'start.elf', 'fixup.dat', 'start4.elf', 'fixup4.dat', 'config.txt', 'cmdline.txt',
  'u-boot.bin', 'uboot.env', 'boot.scr', 'Image.gz', 'initramfs.zst', 'nodeos.dtb',
  'bcm2837-rpi-3-b.dtb', 'bcm2837-rpi-3-b-plus.dtb', 'bcm2710-rpi-3-b.dtb', 'bcm2711-rpi-4-b.dtb',
  'README', 'LICENCE.broadcom', 'a.b.c', 'x y.txt', 'abcdefgh.txtx', 'MixedCase.TXT', 'lower.TXT', '1234.dat',
];

describe('FAT names: the same directory entries as mtools', () => {
  after(cleanupTemp);

  it('short names: 8.3 names stay 8.3 with case flags, long ones get ~N like Windows/mtools', () => {
    const taken = new Set<string>();
    assert.deepEqual(shortName('bootcode.bin', taken), { short: 'BOOTCODEBIN', flags: 0x18, lfn: false });
    assert.deepEqual(shortName('start.elf', taken), { short: 'START   ELF', flags: 0x18, lfn: false });
    assert.deepEqual(shortName('README', taken), { short: 'README     ', flags: 0, lfn: false });
    assert.deepEqual(shortName('Image.gz', taken), { short: 'IMAGE   GZ ', flags: 0, lfn: true });
    assert.deepEqual(shortName('bcm2837-rpi-3-b.dtb', taken), { short: 'BCM283~1DTB', flags: 0, lfn: true });
    assert.deepEqual(shortName('bcm2837-rpi-3-b-plus.dtb', taken), { short: 'BCM283~2DTB', flags: 0, lfn: true });
  });

  it('the boot partition of a card lists like a FAT mtools wrote: short entries, flags, LFNs, timestamps', () => {
    const dir = tempDir();
    const files = [...NAMES.map((n, i) => ({ path: n, data: Buffer.alloc(100 + i, i) })), { path: 'overlays/miniuart-bt.dtbo', data: Buffer.from('x') }, { path: 'overlays/README', data: Buffer.from('y') }];
    const size = 64 * MiB;
    const ours = buildFat32(files, { size, volumeId: 0x12345678, mtime: EPOCH, hiddenSectors: 0 });
    const oursPath = join(dir, 'ours.img');
    writeSparseImage(oursPath, size, ours.extents);

    // The same files copied by mtools, in the order the kit writes them (directories first,
    // then files sorted by name), with the same modification time.
    const theirs = join(dir, 'mtools.img');
    run('mkfs.fat', ['-C', '-F', '32', '-S', '512', '-s', '1', '-n', 'NODEOS', theirs, String(size / 1024)]);
    const host = join(dir, 'files');
    mkdirSync(join(host, 'overlays'), { recursive: true });
    const env = { ...process.env, TZ: 'UTC', MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: '' };
    const mcopy = (args: string[]): void => {
      const r = spawnSync(args[0]!, args.slice(1), { env });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    mcopy(['mmd', '-i', theirs, '::overlays']);
    for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      const p = join(host, f.path);
      writeFileSync(p, f.data);
      utimesSync(p, EPOCH, EPOCH);
      mcopy(['mcopy', '-m', '-i', theirs, p, `::${f.path}`]);
    }
    const a = readFileSync(oursPath);
    const b = readFileSync(theirs);
    const strip = (l: string[]): string[] => l.filter((x) => !x.endsWith(' dir'));
    assert.deepEqual(rawEntries(a), rawEntries(b));
    assert.deepEqual(strip(rawEntries(a, ['OVERLAYS'])), strip(rawEntries(b, ['OVERLAYS'])));
    run('fsck.fat', ['-n', oursPath]);

    // What a reader sees: the names as given, and the 8.3 names the firmware matches.
    const r = new Fat32Reader(oursPath, 0);
    const byName = new Map(r.list().map((e) => [e.name, e.shortName]));
    r.close();
    assert.equal(byName.get('bootcode.bin'), 'BOOTCODE.BIN');
    assert.equal(byName.get('start4.elf'), 'START4.ELF');
    assert.equal(byName.get('config.txt'), 'CONFIG.TXT');
    assert.equal(byName.get('bcm2711-rpi-4-b.dtb'), 'BCM271~2.DTB');
    const mdir = run('mdir', ['-i', oursPath, '::']).toString();
    assert.match(mdir, /^bootcode bin\s+100 2025-01-01\s+0:00\s*$/m, 'mdir shows a plain 8.3 entry, dated from SOURCE_DATE_EPOCH');
  });

  it('two names that differ only in case are refused (FAT cannot hold both)', () => {
    assert.throws(() => buildFat32([{ path: 'a.txt', data: Buffer.from('1') }, { path: 'A.TXT', data: Buffer.from('2') }], { size: 64 * MiB, volumeId: 1, mtime: EPOCH, hiddenSectors: 0 }), /EFAT|twice/);
  });
});
