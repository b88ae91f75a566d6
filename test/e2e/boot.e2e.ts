/**
 * End to end (needs network or a filled cache, QEMU, and the host tools .ci/setup installs):
 * build the rpi3b image with the CLI, boot it under qemu-system-aarch64 -M raspi3b through
 * U-Boot from the SD card and directly, and talk to the REPL on the console.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootPartitionIn, decodeEnv, Fat32Reader, getBoard, prepareEmulation, startEmulation, type BuildManifest } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { attachLoop, detachLoop, isRoot } from '../helpers/tools.js';
import { e2eOut } from '../helpers/out.js';

const OUT = e2eOut('boot');
const IMAGE = join(OUT, 'nodeos-rpi3b.img');
const PROMPT = /\n> $/;
const BOOT_MS = 240_000;
const MiB = 1 << 20;

/** A 1 GiB loop device (root) for the duration of `fn`, backing file removed afterwards. */
async function withLoopCard(name: string, fn: (dev: string) => Promise<void>): Promise<void> {
  const backing = join(OUT, name);
  writeFileSync(backing, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '1G', backing]);
  const dev = attachLoop(backing);
  try {
    await fn(dev);
  } finally {
    detachLoop(dev);
    rmSync(backing, { force: true });
  }
}

describe('rpi3b end to end (QEMU raspi3b)', () => {
  let manifest: BuildManifest;
  let envBuild: string;

  before(async () => {
    const r = await runCli('build', '--board', 'rpi3b', '--out', OUT, '--json');
    assert.equal(r.code, 0, r.err);
    manifest = JSON.parse(readFileSync(join(OUT, 'nodeos-rpi3b.manifest.json'), 'utf8')) as BuildManifest;
    // What the kit wrote into uboot.env, read back from the image itself.
    const part = bootPartitionIn(IMAGE);
    const fat = new Fat32Reader(IMAGE, part.offset);
    const env = decodeEnv(fat.readFile('uboot.env'));
    fat.close();
    envBuild = env.vars.get('nodeos_A_build') ?? '';
    assert.equal(envBuild, manifest.build, 'slot A holds the build, confirmed');
    assert.equal(env.vars.get('nodeos_A_ok'), '1');
    assert.equal(env.vars.get('nodeos_order'), 'A B');
    assert.match(env.vars.get('bootargs') ?? '', /nodeos\.boot=PARTUUID=[0-9a-f]{8}-01 panic=10/);
  });

  async function boot(direct: boolean, cmdline?: string[]): Promise<{ console: Console; ms: number }> {
    const e = prepareEmulation(IMAGE, getBoard('rpi3b').profile, { direct, ...(cmdline ? { cmdline } : {}) });
    const t = Date.now();
    const c = new Console(startEmulation(e, 'pipe'));
    await c.waitFor(PROMPT, BOOT_MS, 0);
    return { console: c, ms: Date.now() - t };
  }

  it('boots through U-Boot from the SD card to the REPL, with the environment the kit wrote', async () => {
    const { console: c, ms } = await boot(false);
    try {
      // U-Boot's console moves to the mini UART after relocation, so this is what we see of it.
      assert.match(c.output, /Loading Environment from FAT\.\.\. OK/, 'U-Boot imported uboot.env from the card');
      assert.equal(c.output.match(/\d+ bytes read in \d+ ms/g)?.length, 3, 'boot.scr by the env bootcmd, then slot A\'s kernel and initramfs (the DTB is the one U-Boot got)');
      assert.match(c.output, /nodeos: booting slot A/);
      assert.match(c.output, /Run \/init as init process/);
      // Stage 1 arms the watchdog before it looks for the card; QEMU's raspi3b resets at once
      // when it starts, so the emulated DTB vetoes it and stage 1 and init both say so.
      assert.match(c.output, /nodeos: watchdog: not armed: QEMU resets the machine when the watchdog starts\n[\s\S]*nodeos: system slot A on \/dev\/mmcblk0p2/);
      assert.match(c.output, /nodeos: watchdog: not started: QEMU resets the machine when the watchdog starts/);
      assert.equal(await c.eval('6 * 7'), '42');
      assert.equal(await c.eval('process.arch'), "'arm64'");
      assert.equal(await c.eval('process.ppid'), '1', 'the REPL is a child of init');
      const cmdline = await c.eval("require('fs').readFileSync('/proc/cmdline', 'utf8').trim()");
      assert.match(cmdline, /nodeos\.boot=PARTUUID=\S+ panic=10 nodeos\.slot=A'$/, 'the kernel got bootargs from our uboot.env, and the slot from boot.scr');
      assert.equal(await c.eval("require('fs').readFileSync('/proc/1/cmdline', 'utf8').split('\\0').slice(0, 2).join(' ')"), "'/bin/node /usr/lib/nodeos/init'");
      // The system slot is a read-only squashfs; /etc is a copy in memory.
      assert.match(await c.eval("require('fs').readFileSync('/proc/mounts', 'utf8')"), /\/dev\/mmcblk0p2 \/ squashfs ro,/);
      assert.equal(await c.eval("JSON.stringify(board.system)"), `'${JSON.stringify({ slot: 'A', build: envBuild, confirmed: true, other: { slot: 'B', confirmed: false }, next: 'A' })}'`);
      // board: a GPIO line through onoff (cross-built epoll), numbered from the chip's sysfs base.
      const base = Number(await c.eval("+require('fs').readdirSync('/sys/class/gpio').filter(d => d.startsWith('gpiochip')).map(d => '/sys/class/gpio/' + d).find(d => require('fs').readFileSync(d + '/label', 'utf8').trim() === 'pinctrl-bcm2835').replace(/.*gpiochip/, '')"));
      assert.ok(base >= 0, `pinctrl-bcm2835 base ${base}`);
      assert.equal(await c.eval('board.GPIO17.global'), String(base + 17), 'derived from the sysfs base, not assumed');
      assert.equal(await c.eval('board.GPIO17.write(1)'), '<Pin GPIO17 J8:11 out value=1>');
      assert.equal(await c.eval(`require('fs').readFileSync('/sys/class/gpio/gpio${base + 17}/value', 'utf8').trim()`), "'1'");
      assert.equal(await c.eval("board.pin('J8:11').write(0).value"), '0');
      assert.match(await c.eval('board.pin(\'BOARD1\')'), /EPIN_POWER/);
      // board.env: the uboot.env U-Boot booted with, changed from the REPL.
      assert.equal(await c.eval("board.env.get('nodeos_A_build')"), `'${envBuild}'`);
      await c.eval("board.env.set('nodeos_e2e', 'survives')");
      // First boot created the users' partition and mounted it as /home (and HOME).
      assert.equal(c.output.match(/nodeos: created the users partition \/dev\/mmcblk0p4 \(ext4\) and mounted it on \/home/g)?.length, 1);
      assert.equal(await c.eval('process.env.HOME'), "'/home'");
      assert.match(await c.eval("require('fs').readFileSync('/proc/mounts', 'utf8')"), /\/dev\/mmcblk0p4 \/home ext4 rw/);
      await c.eval("require('fs').writeFileSync('/home/first-boot.txt', 'written on boot 1')");
      // .exit ends the REPL; init starts a new one and the kernel does not panic.
      c.child.stdin!.write('.exit\n');
      await c.waitFor(/REPL ended \(exit 0\); starting a new one[\s\S]*\n> $/, 30_000);
      assert.equal(await c.eval('1 + 2'), '3');
      c.neverPrinted(/Kernel panic/, 'after .exit');
      console.log(`      U-Boot path: REPL prompt ${(ms / 1000).toFixed(1)} s after QEMU start`);
      // board.reboot(): the watchdog resets the board, U-Boot loads the changed environment.
      const from = c.output.length;
      c.child.stdin!.write('board.reboot()\n');
      await c.waitFor(/Loading Environment from FAT\.\.\. OK[\s\S]*\n> $/, BOOT_MS, from);
      assert.equal(await c.eval("board.env.get('nodeos_e2e')"), "'survives'");
      // Second boot: the partition is only mounted, and what was written is still there.
      assert.doesNotMatch(c.output.slice(from), /created the users partition/);
      assert.equal(await c.eval("require('fs').readFileSync('/home/first-boot.txt', 'utf8')"), "'written on boot 1'");
      // npm is there, and its global prefix is on the users' partition.
      assert.equal(await c.eval("require('child_process').execFileSync('npm', ['config', 'get', 'prefix'], { encoding: 'utf8' }).trim()", 120_000), "'/home/.npm-global'");
      // A second reboot: still only mounted, still there.
      const third = c.output.length;
      c.child.stdin!.write('board.reboot()\n');
      await c.waitFor(/Loading Environment from FAT\.\.\. OK[\s\S]*\n> $/, BOOT_MS, third);
      assert.doesNotMatch(c.output.slice(third), /created the users partition/);
      assert.match(c.output.slice(third), /Run \/init as init process/);
      assert.equal(await c.eval("require('fs').readFileSync('/home/first-boot.txt', 'utf8')"), "'written on boot 1'");
      assert.equal(c.output.match(/nodeos: created the users partition/g)?.length, 1, 'created exactly once over three boots');
    } finally {
      c.stop();
    }
  });

  it('a card flashed with a hostname boots with that host name (root, loop device)', async function () {
    if (!isRoot()) this.skip();
    await withLoopCard('card-e2e.raw', async (dev) => {
      const f = await runCli('flash', IMAGE, '--device', dev, '--yes', '--hostname', 'kitchen', '--cmdline', 'nodeos.test=1', '--json');
      assert.equal(f.code, 0, f.err + f.out);
      const e = prepareEmulation(dev, getBoard('rpi3b').profile, {});
      const c = new Console(startEmulation(e, 'pipe'));
      try {
        await c.waitFor(PROMPT, BOOT_MS, 0);
        const cmdline = await c.eval("require('fs').readFileSync('/proc/cmdline', 'utf8').trim()");
        assert.match(cmdline, /nodeos\.hostname=kitchen/);
        assert.match(cmdline, /nodeos\.test=1/);
        // What the flag promises: the system's host name, not only an argument.
        assert.equal(await c.eval("require('os').hostname()"), "'kitchen'");
        assert.equal(await c.eval("require('fs').readFileSync('/etc/hostname', 'utf8')"), "'kitchen\\n'");
      } finally {
        c.stop();
      }
    });
  });

  it('never formats free space that already holds a filesystem; the REPL still comes up (root, loop device)', async function () {
    if (!isRoot()) this.skip();
    await withLoopCard('card-e2e-fs.raw', async (dev) => {
      assert.equal((await runCli('flash', IMAGE, '--device', dev, '--yes', '--json')).code, 0);
      // Someone's ext4 filesystem sits where the users' partition would go, outside the table.
      const fsImage = join(OUT, 'someone-else.ext4');
      execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'keepme', fsImage, '64M']);
      execFileSync('dd', [`if=${fsImage}`, `of=${dev}`, 'bs=1M', 'seek=640', 'conv=notrunc,fsync', 'status=none']);
      rmSync(fsImage);
      // The board writes into a qcow2 overlay kept here, so what it wrote can be read back.
      const overlay = join(OUT, 'card-e2e-fs.qcow2');
      rmSync(overlay, { force: true });
      const e = prepareEmulation(dev, getBoard('rpi3b').profile, { overlay });
      const c = new Console(startEmulation(e, 'pipe'));
      try {
        await c.waitFor(PROMPT, BOOT_MS, 0);
        assert.match(c.output, /nodeos: users partition not mounted: the free space at 640 MiB already holds a ext2\/3\/4 filesystem: not touching it/);
        assert.equal(await c.eval('1 + 1'), '2');
        // A write of the test's own, so the overlay read below is surely the one QEMU used.
        await c.eval("board.env.set('nodeos_e2e', 'overlay')");
      } finally {
        c.stop();
      }
      try {
        // Every range the board wrote (the overlay's own data) lies in the boot partition
        // (uboot.env): not the partition table, not the free space, not the filesystem there.
        const layout = JSON.parse(execFileSync('qemu-img', ['map', '--output=json', overlay]).toString()) as { start: number; length: number; depth: number; data: boolean }[];
        const written = layout.filter((r) => r.depth === 0 && r.data);
        const boot = getBoard('rpi3b').profile.partitions.find((p) => p.name === 'boot')!;
        const [lo, hi] = [boot.startMiB * MiB, (boot.startMiB + (boot.sizeMiB as number)) * MiB];
        assert.ok(written.length > 0, 'uboot.env was written through this overlay');
        for (const r of written) assert.ok(r.start >= lo && r.start + r.length <= hi, `the board wrote ${r.length} bytes at ${r.start}, outside the boot partition (${lo}-${hi}): ${JSON.stringify(written)}`);
        // And as the card reads through the overlay: still three partitions, still someone's ext4.
        const mbr = join(OUT, 'card-e2e-fs.mbr');
        execFileSync('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', `if=${overlay}`, `of=${mbr}`, 'bs=512', 'count=1']);
        assert.deepEqual([...readFileSync(mbr).subarray(446 + 48, 446 + 64)], new Array(16).fill(0), 'no fourth partition entry');
        rmSync(mbr);
      } finally {
        rmSync(overlay, { force: true });
      }
    });
  });

  it('boots directly (--direct) to the REPL, which runs the nodeos.run= lines first', async () => {
    const { console: c, ms } = await boot(true, ['nodeos.run="globalThis.e2e = [6 * 7, String(board.GPIO17.write(1))]"']);
    try {
      // Shown as typed after the first prompt, with its result and a new prompt.
      await c.waitFor(/> globalThis\.e2e = \[6 \* 7, String\(board\.GPIO17\.write\(1\)\)\]\n\[ 42, '<Pin GPIO17 J8:11 out value=1>' \]\n> $/, 60_000, 0);
      assert.equal(await c.eval('e2e[0]'), '42');
      assert.equal(await c.eval('e2e[1]'), "'<Pin GPIO17 J8:11 out value=1>'");
      // Only the first REPL of a boot runs them.
      c.child.stdin!.write('.exit\n');
      await c.waitFor(/REPL ended \(exit 0\); starting a new one[\s\S]*\n> $/, 30_000);
      assert.equal(await c.eval('typeof e2e'), "'undefined'");
      assert.doesNotMatch(c.output, /Loading Environment/);
      assert.equal(await c.eval('process.arch'), "'arm64'");
      assert.match(await c.eval('process.version'), /^'v24\./);
      assert.match(await c.eval('board.profile.id'), /'rpi3b'/);
      console.log(`      direct: REPL prompt ${(ms / 1000).toFixed(1)} s after QEMU start`);
    } finally {
      c.stop();
    }
  });
});
