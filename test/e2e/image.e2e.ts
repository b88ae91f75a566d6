/**
 * The real rpi3b image, checked with the real tools: layout, boot partition, small initramfs,
 * system slot (squashfs), .bmap and .sha256, and reproducibility from the same lock and epoch.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { firmwareFile } from '../../src/image/firmware.js';
import { bootPartitionIn, Fat32Reader, fetchArtifacts, getBoard, loadBoards, packageRoot, readLayoutAt, systemImage, type BuildManifest, type PartitionSpec } from '../../src/index.js';
import { systemFile, systemList, withSystemImage } from '../helpers/system-slot.js';
import { runCli } from '../helpers/cli.js';
import { run } from '../helpers/tools.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { e2eOut } from '../helpers/out.js';

const OUT = e2eOut('image');
const IMAGE = join(OUT, 'nodeos-rpi3b.img');

describe('rpi3b image (real artifacts)', () => {
  let manifest: BuildManifest;
  before(async () => {
    const r = await runCli('build', '--board', 'rpi3b', '--out', OUT, '--json');
    assert.equal(r.code, 0, r.err);
    manifest = JSON.parse(readFileSync(join(OUT, 'nodeos-rpi3b.manifest.json'), 'utf8')) as BuildManifest;
  });
  after(cleanupTemp);

  it("sfdisk --dump shows the profile's layout: FAT32 LBA bootable, system slots A and B, 4 MiB aligned", () => {
    const [boot, a, b] = getBoard('rpi3b').profile.partitions as [PartitionSpec, PartitionSpec, PartitionSpec];
    const dump = run('sfdisk', ['--dump', IMAGE]).toString();
    const rows = dump.split('\n').filter((l) => / : start=/.test(l));
    assert.deepEqual(rows.map((l) => l.replace(/^\S+ : /, '').replace(/\s+/g, ' ')), [
      `start= ${boot.startMiB * 2048}, size= ${(boot.sizeMiB as number) * 2048}, type=c, bootable`,
      `start= ${a.startMiB * 2048}, size= ${(a.sizeMiB as number) * 2048}, type=83`,
      `start= ${b.startMiB * 2048}, size= ${(b.sizeMiB as number) * 2048}, type=83`,
    ]);
    // layout.json on the boot partition says the same.
    assert.deepEqual(readLayoutAt(IMAGE).layout, manifest.layout);
  });

  it('the boot partition passes fsck.fat -n and mdir lists what U-Boot and the firmware need', () => {
    const dir = tempDir();
    const part = bootPartitionIn(IMAGE);
    const p = join(dir, 'boot.img');
    execFileSync('dd', [`if=${IMAGE}`, `of=${p}`, 'bs=1M', `skip=${part.offset / (1 << 20)}`, `count=${part.size / (1 << 20)}`, 'status=none']);
    run('fsck.fat', ['-n', p]);
    // mtools' own view: every name as the kit gave it (-b), and the firmware's files as plain
    // 8.3 entries with no long name (the boot ROM and start*.elf look them up by 8.3 name).
    const names = run('mdir', ['-b', '-i', p, '::']).toString().trim().split('\n');
    assert.deepEqual(names.sort(), ['::/bcm2710-rpi-3-b.dtb', '::/boot.scr', '::/bootcode.bin', '::/config.txt', '::/fixup.dat', '::/layout.json', '::/nodeos.dtb', '::/slot-a/', '::/start.elf', '::/u-boot.bin', '::/uboot.bak', '::/uboot.env']);
    assert.deepEqual(run('mdir', ['-b', '-i', p, '::slot-a']).toString().trim().split('\n'), ['::/slot-a/Image.gz', '::/slot-a/initrd.zst']);
    const listing = run('mdir', ['-i', p, '::']).toString();
    for (const [base, ext] of [['bootcode', 'bin'], ['start', 'elf'], ['fixup', 'dat'], ['config', 'txt'], ['u-boot', 'bin'], ['uboot', 'env']] as const) {
      assert.match(listing, new RegExp(`^${base.padEnd(8)} ${ext}\\s+\\d+ \\S+\\s+\\S+\\s*$`, 'm'), `${base}.${ext} is a plain 8.3 entry`);
    }
    const config = execFileSync('mtype', ['-i', p, '::config.txt']).toString();
    for (const line of ['arm_64bit=1', 'enable_uart=1', 'kernel=u-boot.bin']) assert.match(config, new RegExp(`^${line}$`, 'm'));
    // uboot.env is read by the real fw_printenv too.
    const env = join(dir, 'uboot.env');
    execFileSync('mcopy', ['-i', p, '::uboot.env', env]);
    const cfg = join(dir, 'fw_env.config');
    execFileSync('sh', ['-c', `echo "${env} 0x0 0x4000" > ${cfg}`]);
    assert.equal(run('fw_printenv', ['-c', cfg, 'bootcmd']).toString(), 'bootcmd=fatload mmc 0:1 ${scriptaddr} boot.scr; source ${scriptaddr}\n');
    assert.equal(run('fw_printenv', ['-c', cfg, 'nodeos_order', 'nodeos_A_ok']).toString(), 'nodeos_order=A B\nnodeos_A_ok=1\n');
    // boot.scr picks the slot; the kernel gets the DTB the firmware handed U-Boot (the kit's, with the firmware's fix-ups).
    execFileSync('mcopy', ['-i', p, '::boot.scr', join(dir, 'boot.scr')]);
    assert.match(run('dumpimage', ['-l', join(dir, 'boot.scr')]).toString(), /AArch64 Linux Script/);
    run('dumpimage', ['-T', 'script', '-p', '0', '-o', join(dir, 'boot.cmd'), join(dir, 'boot.scr')]);
    assert.match(readFileSync(join(dir, 'boot.cmd'), 'utf8'), /fatload mmc 0:1 \$\{kernel_addr_r\} slot-a\/Image\.gz && fatload mmc 0:1 \$\{ramdisk_addr_r\} slot-a\/initrd\.zst && booti \$\{kernel_addr_r\} \$\{ramdisk_addr_r\}:\$\{filesize\} \$\{fdtcontroladdr\}/);
    // The copy boot.scr falls back to is the same environment.
    execFileSync('mcopy', ['-i', p, '::uboot.bak', join(dir, 'uboot.bak')]);
    assert.deepEqual(readFileSync(join(dir, 'uboot.bak')), readFileSync(env));
  });

  it('the small initramfs holds busybox, /init and the modules that reach the card, under 5 MB', () => {
    const part = bootPartitionIn(IMAGE);
    const fat = new Fat32Reader(IMAGE, part.offset);
    const zst = fat.readFile('slot-a/initrd.zst');
    fat.close();
    assert.ok(zst.length < 5_000_000, `${zst.length} bytes`);
    const cpio = execFileSync('zstd', ['-dc'], { input: zst, maxBuffer: 1 << 30 });
    assert.equal(cpio.length, manifest.initramfs.uncompressed);
    const list = run('cpio', ['-it', '--quiet'], cpio).toString().split('\n');
    for (const f of ['init', 'bin/busybox', 'bin/switch_root', 'dev/console', 'etc/nodeos/stage1.conf']) assert.ok(list.includes(f), f);
    for (const m of ['sdhci-iproc.ko', 'bcm2835.ko', 'squashfs.ko', 'loop.ko']) assert.ok(list.some((l) => l.endsWith(`/${m}`)), m);
    assert.ok(!list.includes('bin/node'), 'Node.js is on the system slot');
    assert.ok(!list.some((l) => l.endsWith('/ext4.ko')), 'only what reaches the card');
  });

  it('the system slot is a squashfs (unsquashfs) with node, its libraries, busybox, the modules and the runtime', () => {
    const list = systemList(IMAGE);
    assert.equal(manifest.system.sha256, createHash('sha256').update(systemImage(IMAGE, manifest.layout)).digest('hex'));
    for (const f of ['usr/lib/nodeos/init', 'bin/node', 'bin/busybox', 'bin/partx', 'etc/nodeos/update-keys.json', 'usr/lib/ld-linux-aarch64.so.1', 'usr/lib/aarch64-linux-gnu/libstdc++.so.6', 'usr/lib/nodeos/runtime/init.js', 'usr/lib/nodeos/runtime/repl.js', 'usr/lib/nodeos/runtime/app-board.js', 'usr/lib/node_modules/nodeos-bsp/package.json', 'usr/lib/node_modules/nodeos-bsp/board.js', 'etc/nodeos/image.json', 'usr/lib/node_modules/onoff/package.json', 'usr/lib/node_modules/epoll/build/Release/epoll.node', 'usr/lib/node_modules/i2c-bus/build/Release/i2c.node', 'usr/lib/node_modules/serialport/package.json', 'usr/lib/node_modules/npm/bin/npm-cli.js', 'bin/npm', 'usr/bin/env', 'bin/mke2fs', 'usr/lib/nodeos/runtime/sshd.js', 'usr/lib/nodeos/runtime/no-compiler.js', 'usr/lib/node_modules/ssh2/package.json', 'usr/lib/node_modules/multicast-dns/package.json']) {
      assert.ok(list.includes(f), f);
    }
    // The runtime is one bundled file per process: no module graph to resolve on the board.
    assert.ok(!list.some((f) => f.startsWith('usr/lib/nodeos/runtime/board/') || f.startsWith('usr/lib/nodeos/uboot-env/')), 'bundled');
    // npm's node-gyp is the kit's no-compiler message on the board (there is no compiler).
    const gyp = systemFile(IMAGE, 'usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js').toString();
    assert.match(gyp, /import\('\/usr\/lib\/nodeos\/runtime\/no-compiler\.js'\)/);
    // Modules with their .modinfo dependencies, decompressed: ext4 brings jbd2, mbcache, crc16.
    for (const m of ['ext4.ko', 'jbd2.ko', 'mbcache.ko', 'crc16.ko', 'i2c-bcm2835.ko']) assert.ok(list.some((l) => l.endsWith(`/${m}`)), m);
    assert.ok(!list.some((l) => l.endsWith('.xz')));
    // Native addons are built for the board (aarch64), never the host.
    assert.ok(manifest.npmModules.some((p) => p.name === 'epoll' && p.integrity?.startsWith('sha512-')));
    assert.ok(!list.some((l) => /prebuilds\/(win32|darwin|linux-x64)/.test(l)));
    assert.deepEqual(manifest.modules.slice(manifest.modules.indexOf('jbd2'), manifest.modules.indexOf('ext4') + 1), ['jbd2', 'mbcache', 'crc16', 'ext4']);
  });

  it("every board's Wi-Fi firmware is in the pinned package its profile names; rpi3b's is in the system slot with the regulatory database", async () => {
    const a = await fetchArtifacts(getBoard('rpi3b').profile, { lockPath: join(OUT, 'nodeos-rpi3b.lock.json'), offline: true });
    const pkg = a.lock.debian.wifiFirmware!.package;
    // rpi3b's lock pins both packages boards take radio firmware from: firmware-brcm80211, and
    // raspi-firmware (its boot firmware; the Pi 400's CYW43456 files are only there).
    const unpacked: Record<string, string> = { [pkg]: a.debs.wifiFirmware!, [a.lock.debian.firmware!.package]: a.debs.firmware! };
    const withWifi = loadBoards().boards.filter((b) => b.profile.wifi);
    assert.ok(withWifi.length >= 6, withWifi.map((b) => b.profile.id).join(' '));
    for (const b of withWifi) {
      const named = b.profile.wifi!.firmware!.package;
      assert.ok(unpacked[named], `${b.profile.id}: ${named} is one of ${Object.keys(unpacked).join(', ')}`);
      for (const f of b.profile.wifi!.firmware!.files) assert.ok(firmwareFile(unpacked[named]!, named, f).length > 0, `${b.profile.id}: ${f}`);
    }
    // A name the package lacks fails the build, naming it and what the package has instead.
    assert.throws(() => firmwareFile(a.debs.wifiFirmware!, pkg, 'brcm/brcmfmac43430-sdio.nosuchboard.txx'), (e: Error & { code?: string }) => e.code === 'EWIFI_FIRMWARE' && /nosuchboard.*brcmfmac43430-sdio\.bin/.test(e.message));
    const list = systemList(IMAGE);
    for (const f of [...getBoard('rpi3b').profile.wifi!.firmware!.files, 'regulatory.db', 'regulatory.db.p7s']) assert.ok(list.includes(`usr/lib/firmware/${f}`), f);
    assert.deepEqual(systemFile(IMAGE, 'usr/lib/firmware/regulatory.db'), firmwareFile(a.debs.regdb!, 'wireless-regdb', 'regulatory.db-debian'));
    // The brcmfmac driver and cfg80211 are on the card with their dependencies.
    for (const m of ['cfg80211.ko', 'brcmutil.ko', 'brcmfmac.ko']) assert.ok(list.some((l) => l.endsWith(`/${m}`)), m);
  });

  it('the .sha256 and .bmap describe the image; bmaptool copy reproduces it', () => {
    const dir = tempDir();
    assert.equal(readFileSync(`${IMAGE}.sha256`, 'utf8'), `${manifest.image.sha256}  nodeos-rpi3b.img\n`);
    execFileSync('sha256sum', ['-c', 'nodeos-rpi3b.img.sha256'], { cwd: OUT });
    const copy = join(dir, 'copy.img');
    run('bmaptool', ['copy', IMAGE, copy]);
    execFileSync('cmp', [IMAGE, copy]);
  });

  it('two builds from the same lock and SOURCE_DATE_EPOCH give the same bytes, apps included; another date changes no node_modules', async () => {
    const [a, b, c] = [tempDir(), tempDir(), tempDir()];
    for (const d of [a, b, c]) {
      mkdirSync(d, { recursive: true });
      copyFileSync(join(OUT, 'nodeos-rpi3b.lock.json'), join(d, 'nodeos-rpi3b.lock.json'));
    }
    // Two apps: one without dependencies, one whose dependency is a native addon (linux-arm64 prebuilds).
    const apps = ['--app', join(packageRoot(), 'examples/thermometer'), '--app', join(packageRoot(), 'test/fixtures/apps/ports')];
    const saved = process.env.SOURCE_DATE_EPOCH;
    try {
      for (const [d, epoch, flags] of [[a, '1700000000', []], [b, '1700000000', ['--offline']], [c, '1800000000', ['--offline']]] as const) {
        process.env.SOURCE_DATE_EPOCH = epoch;
        const r = await runCli('build', '--board', 'rpi3b', '--out', d, ...apps, ...flags, '--json');
        assert.equal(r.code, 0, r.err);
      }
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
    assert.equal(readFileSync(join(a, 'nodeos-rpi3b.img.sha256'), 'utf8'), readFileSync(join(b, 'nodeos-rpi3b.img.sha256'), 'utf8'));
    assert.equal(readFileSync(join(a, 'nodeos-rpi3b.img.bmap'), 'utf8'), readFileSync(join(b, 'nodeos-rpi3b.img.bmap'), 'utf8'));
    assert.notEqual(readFileSync(join(a, 'nodeos-rpi3b.img.sha256'), 'utf8'), readFileSync(join(c, 'nodeos-rpi3b.img.sha256'), 'utf8'), 'the epoch is part of the bytes');
    // Another build date: every file of the apps and of the kit's node_modules is the same.
    const trees = [a, c].map((d) => {
      const x = join(d, 'system');
      withSystemImage(join(d, 'nodeos-rpi3b.img'), (sq) => execFileSync('unsquashfs', ['-q', '-n', '-d', x, sq, 'usr/lib/nodeos/apps', 'usr/lib/node_modules']));
      return x;
    });
    assert.ok(existsSync(join(trees[0]!, 'usr/lib/nodeos/apps/ports/node_modules/@serialport/bindings-cpp/prebuilds/linux-arm64')), 'the addon\'s linux-arm64 prebuilds are in');
    execFileSync('diff', ['-r', '--no-dereference', ...trees]);
  });

});
