/**
 * boot.scr in the real U-Boot (integration: needs qemu-system-aarch64 and Debian's
 * u-boot-qemu, which .ci/setup installs). Each case writes a small card by the real tools
 * (sfdisk, mkfs.fat, mcopy) holding the kit's boot.scr, a uboot.env and its copy uboot.bak
 * in a given state, and stand-in slot kernels; U-Boot's distro boot runs the script under
 * `qemu-system-aarch64 -M virt` (a few seconds), and the test reads back what the script
 * saved and which slot's kernel it started. Every row of the state table is checked against
 * nextBoot(), so the TypeScript model and the script cannot drift apart. The U-Boot is the
 * host's (Debian 12: 2023.01; the boards' 2025.01 runs the same script in update.e2e): the
 * script uses only hush, setexpr, env import/export, fatload and fatwrite, alike in both.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { activateSlot, beginInstall, bootScript, confirmBoot, createImage, decodeEnv, getBoard, layoutFor, nextBoot, scriptImage, SLOT_ENV, ubootEnvironment, type ImageLayout } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** Debian's U-Boot for QEMU's virt machine (package u-boot-qemu). */
const UBOOT = '/usr/lib/u-boot/qemu_arm64/u-boot.bin';
const MiB = 1 << 20;
const profile = getBoard('qemu-virt').profile;
const layout: ImageLayout = layoutFor(profile, 0x5eed0001);
const defaults = ubootEnvironment(profile, 'build1', layout);
const LIMIT = layout.bootlimit;

/**
 * A stand-in arm64 kernel: a valid Image header (booti checks its magic), then code that
 * writes `<kernel S>` to the PL011 at 0x09000000, then the device tree U-Boot handed it (x0)
 * in hex as `<dtb ...>` (its /chosen/bootargs is the kernel's command line), and powers the
 * machine off through PSCI (QEMU's virt answers HVC calls), so the test sees which slot's
 * kernel U-Boot jumped to, and with which arguments.
 */
function standInKernel(slot: string): Buffer {
  const chars = (text: string): number[] => [...text].flatMap((ch) => [0x52800000 | (ch.charCodeAt(0) << 5) | 1, 0xb9000001]); // movz w1, #ch; str w1, [x0]
  // w7 (0..15) as a hex digit to the UART: w8 = w7 + '0', or w7 + 'a' - 10 when above 9.
  const digit = [0x1100c0e8, 0x11015ce9, 0x710024ff, 0x1a888128, 0xb9000008]; // add w8, w7, #0x30; add w9, w7, #0x57; cmp w7, #9; csel w8, w9, w8, hi; str w8, [x0]
  const code: number[] = [
    0xaa0003e3, // mov x3, x0: the device tree
    0xd2a12000, // movz x0, #0x0900, lsl #16: the PL011
    ...chars(`<kernel ${slot}>\n<dtb `),
    0xb9400464, // ldr w4, [x3, #4]: totalsize
    0x5ac00884, // rev w4, w4: big-endian
    0xd2800005, // movz x5, #0
    // loop: one byte as two hex digits
    0x38656866, // ldrb w6, [x3, x5]
    0x53047cc7, // lsr w7, w6, #4
    ...digit,
    0x12000cc7, // and w7, w6, #0xf
    ...digit,
    0x910004a5, // add x5, x5, #1
    0xeb0400bf, // cmp x5, x4
    0x54fffe23, // b.lo loop (15 instructions back)
    ...chars('>\n'),
    0xd2800100, 0xf2b08000, 0xd4000002, 0x14000000, // x0 = 0x84000008 (SYSTEM_OFF); hvc #0; b .
  ];
  const img = Buffer.alloc(0x1000);
  img.writeUInt32LE(0x14000010, 0); // b 0x40: past the header
  img.writeBigUInt64LE(0n, 8); // text_offset
  img.writeBigUInt64LE(BigInt(img.length), 16); // image_size
  img.writeBigUInt64LE(0xan, 24); // little-endian, 4 KiB pages, anywhere in RAM
  img.writeUInt32LE(0x644d5241, 56); // "ARM\x64"
  code.forEach((w, i) => img.writeUInt32LE(w >>> 0, 0x40 + 4 * i));
  return img;
}

interface Card {
  /** The environment in uboot.env (a Buffer: bytes as they are, e.g. corrupt). */
  env: Map<string, string> | Buffer;
  /** uboot.bak; default the same as uboot.env. */
  backup?: Map<string, string> | Buffer;
  /** Slots whose kernel file is left off the card (a slot that cannot start). */
  noKernel?: string[];
  /** More files on the boot partition (a DTB for boot.scr to load). */
  files?: Record<string, Buffer>;
}

interface Run {
  console: string;
  /** uboot.env as the script left it. */
  saved: Map<string, string>;
  /** uboot.env's bytes changed. */
  wrote: boolean;
  /** The slot whose stand-in kernel ran. */
  started?: string;
  /** The slot boot.scr announced. */
  chosen?: string;
  /** The kernel's command line: /chosen/bootargs of the device tree the stand-in kernel got. */
  bootargs?: string;
  /** That tree's root compatible. */
  compatible?: string;
}

const envImage = (vars: Map<string, string>): Buffer => createImage([...vars].map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { size: layout.env.size, pad: 0 });

/** Write the card, let U-Boot find and run boot.scr, read back what it did. */
function runBootScript(dir: string, card: Card, script = bootScript(layout, defaults)): Run {
  const disk = join(dir, 'card.img');
  const fat = join(dir, 'boot.fat');
  execFileSync('truncate', ['-s', '0', disk]);
  execFileSync('truncate', ['-s', `${64 * MiB}`, disk]);
  // One bootable FAT32 partition, as layout's `virtio 0:1`: distro boot scans bootable ones.
  execFileSync('sfdisk', ['-q', disk], { input: 'label: dos\nstart=2048, type=c, bootable\n' });
  rmSync(fat, { force: true });
  execFileSync('mkfs.fat', ['-F', '32', '-C', fat, String(63 * 1024)], { stdio: 'ignore' });
  const put = (path: string, data: Buffer): void => {
    const local = join(dir, 'file');
    writeFileSync(local, data);
    const parent = path.split('/').slice(0, -1).join('/');
    if (parent) spawnSync('mmd', ['-i', fat, `::/${parent}`]); // exists already: fine
    execFileSync('mcopy', ['-o', '-i', fat, local, `::/${path}`]);
  };
  const env = card.env instanceof Map ? envImage(card.env) : card.env;
  put(layout.boot.script, scriptImage(script, { name: 'nodeos test', arch: 'arm64', time: 0 }));
  put(layout.env.file, env);
  const backup = card.backup ?? card.env;
  put(layout.env.backup, backup instanceof Map ? envImage(backup) : backup);
  for (const s of ['A', 'B'] as const) {
    if (!card.noKernel?.includes(s)) put(layout.boot.slots[s].kernel, standInKernel(s));
    put(layout.boot.slots[s].initramfs, Buffer.from(`initramfs ${s}\n`));
  }
  for (const [path, data] of Object.entries(card.files ?? {})) put(path, data);
  execFileSync('dd', [`if=${fat}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
  // -no-reboot: the script's `reset` (a slot that did not start) ends QEMU as the kernel's poweroff does.
  const r = spawnSync('qemu-system-aarch64', ['-M', 'virt,acpi=off', '-cpu', 'cortex-a53', '-m', '512', '-accel', 'tcg,thread=single', '-bios', UBOOT,
    '-drive', `file=${disk},if=virtio,format=raw`, '-nographic', '-no-reboot', '-nic', 'none', '-monitor', 'none', '-serial', 'stdio'], { timeout: 60_000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const console = (r.stdout ?? '').replace(/\r/g, '') + (r.stderr ?? '');
  if (r.error) throw new Error(`qemu-system-aarch64: ${r.error.message}\n${console}`);
  assert.match(console, /Found U-Boot script \/boot\.scr/, console);
  execFileSync('dd', [`if=${disk}`, `of=${fat}`, 'bs=1M', 'skip=1', 'status=none']);
  const out = join(dir, 'saved.env');
  execFileSync('mcopy', ['-o', '-i', fat, `::/${layout.env.file}`, out]);
  const bytes = readFileSync(out);
  const wrote = !bytes.equals(env);
  const dtb = /<dtb ([0-9a-f]+)>/.exec(console)?.[1];
  let bootargs: string | undefined;
  let compatible: string | undefined;
  if (dtb) {
    writeFileSync(join(dir, 'got.dtb'), Buffer.from(dtb, 'hex'));
    bootargs = execFileSync('fdtget', ['-t', 's', join(dir, 'got.dtb'), '/chosen', 'bootargs'], { encoding: 'utf8' }).replace(/\n$/, '');
    compatible = execFileSync('fdtget', ['-t', 's', join(dir, 'got.dtb'), '/', 'compatible'], { encoding: 'utf8' }).trim();
  }
  return {
    console,
    // Unwritten: as it was (a corrupt one reads as empty); written: it must be whole.
    saved: wrote || !(card.env instanceof Map) ? (wrote ? decodeEnv(bytes).vars : new Map()) : card.env,
    wrote,
    ...(/<kernel ([AB])>/.exec(console) ? { started: /<kernel ([AB])>/.exec(console)![1] } : {}),
    ...(bootargs !== undefined ? { bootargs } : {}),
    ...(compatible !== undefined ? { compatible } : {}),
    ...(/nodeos: booting slot ([AB])/.exec(console) ? { chosen: /nodeos: booting slot ([AB])/.exec(console)![1] } : {}),
  };
}

/** The slot variables of an environment, for comparing the script with the model. */
const slotVars = (v: ReadonlyMap<string, string>): Record<string, string | undefined> =>
  Object.fromEntries([SLOT_ENV.order, ...(['A', 'B'] as const).flatMap((s) => [SLOT_ENV.build(s), SLOT_ENV.ok(s), SLOT_ENV.left(s)])].map((k) => [k, v.get(k)]));

/** Boot `vars` with the real script and check it against nextBoot(): same slot, same saved counts. */
function agreesWithModel(dir: string, vars: Map<string, string>, expect: { slot: string; counted: boolean }): Run {
  const model = nextBoot(vars, LIMIT);
  assert.deepEqual({ slot: model.slot, counted: model.counted }, expect, 'the model (nextBoot) for this row');
  const run = runBootScript(dir, { env: vars });
  assert.equal(run.chosen, model.slot, run.console);
  assert.equal(run.started, model.slot, `the stand-in kernel of slot ${model.slot} ran:\n${run.console}`);
  // The script saves before the try exactly when it counted; what it saved is the model's state.
  assert.equal(run.wrote, model.counted, `uboot.env written: ${run.wrote}, model counted: ${model.counted}\n${run.console}`);
  assert.deepEqual(slotVars(run.saved), slotVars(model.vars));
  assert.equal(run.bootargs, `${vars.get('bootargs')} nodeos.slot=${model.slot}`, 'the kernel gets the card\'s bootargs and the slot');
  return run;
}

describe("boot.scr in Debian's U-Boot under QEMU virt: the A/B state table (integration, QEMU)", function () {
  this.timeout(90_000);
  after(cleanupTemp);

  before(function () {
    if (!existsSync(UBOOT)) throw new Error(`${UBOOT} is missing: apt-get install u-boot-qemu (.ci/setup does this)`);
  });

  const fresh = (): Map<string, string> => new Map([...defaults]);

  it('a fresh card: slot A, confirmed, boots without counting or writing', () => {
    const run = agreesWithModel(tempDir(), fresh(), { slot: 'A', counted: false });
    assert.match(run.console, /nodeos: environment from uboot\.env/);
  });

  it("the kernel's command line is the card's bootargs, quotes and all, and the slot; the saved bootargs stay the card's", () => {
    const v = activateSlot(beginInstall(fresh(), 'B'), 'B', 'build2', LIMIT);
    // As flash --cmdline may write them: U-Boot's hush drops quotes from a command word that
    // holds "${bootargs}", so the script never puts bootargs in one.
    const args = `${v.get('bootargs') ?? ''} nodeos.run="require('fs').readdirSync('/')" nodeos.hostname='a b'`;
    v.set('bootargs', args);
    const run = agreesWithModel(tempDir(), v, { slot: 'B', counted: true });
    assert.equal(run.saved.get('bootargs'), args);
  });

  it('an update not yet confirmed: slot B with tries left is tried, its count saved first', () => {
    const v = activateSlot(beginInstall(fresh(), 'B'), 'B', 'build2', LIMIT);
    const run = agreesWithModel(tempDir(), v, { slot: 'B', counted: true });
    assert.equal(run.saved.get(SLOT_ENV.left('B')), String(LIMIT - 1));
  });

  it('the last try of B: counted down to 0, still B', () => {
    const v = activateSlot(beginInstall(fresh(), 'B'), 'B', 'build2', LIMIT);
    v.set(SLOT_ENV.left('B'), '1');
    const run = agreesWithModel(tempDir(), v, { slot: 'B', counted: true });
    assert.equal(run.saved.get(SLOT_ENV.left('B')), '0');
  });

  it('B has no tries left: the other slot (A, confirmed) boots, nothing written', () => {
    const v = activateSlot(beginInstall(fresh(), 'B'), 'B', 'build2', LIMIT);
    v.set(SLOT_ENV.left('B'), '0');
    agreesWithModel(tempDir(), v, { slot: 'A', counted: false });
  });

  it('both unconfirmed and out of tries: both get bootlimit again, the preferred one is tried first', () => {
    const v = new Map([...fresh(), ['nodeos_order', 'B A'], ['nodeos_B_build', 'build2'], ['nodeos_A_ok', '0'], ['nodeos_A_left', '0'], ['nodeos_B_ok', '0'], ['nodeos_B_left', '0']]);
    const run = agreesWithModel(tempDir(), v, { slot: 'B', counted: true });
    assert.match(run.console, /no slot has tries left/);
    assert.deepEqual([run.saved.get('nodeos_B_left'), run.saved.get('nodeos_A_left')], [String(LIMIT - 1), String(LIMIT)]);
  });

  it('a confirmed B after an update: boots B and writes nothing', () => {
    const v = confirmBoot(nextBoot(activateSlot(beginInstall(fresh(), 'B'), 'B', 'build2', LIMIT), LIMIT).vars, 'B', LIMIT).vars;
    agreesWithModel(tempDir(), v, { slot: 'B', counted: false });
  });

  it('uboot.env unreadable (bad CRC): the script imports uboot.bak, boots from it and rewrites uboot.env', () => {
    const v = activateSlot(beginInstall(fresh(), 'B'), 'B', 'build2', LIMIT);
    const corrupt = envImage(v);
    corrupt[100] = corrupt[100]! ^ 0xff;
    const run = runBootScript(tempDir(), { env: corrupt, backup: v });
    assert.match(run.console, /uboot\.env is unreadable: using its copy uboot\.bak/);
    const model = nextBoot(v, LIMIT);
    assert.equal(run.started, model.slot);
    assert.deepEqual(slotVars(run.saved), slotVars(model.vars), 'uboot.env is whole again, with the count of this try');
  });

  it('neither uboot.env nor uboot.bak readable: the build\'s defaults boot slot A', () => {
    const junk = Buffer.alloc(layout.env.size, 0x55);
    const run = runBootScript(tempDir(), { env: junk, backup: junk });
    assert.match(run.console, /nodeos: no readable environment: booting with the defaults of the build/);
    const model = nextBoot(new Map(defaults), LIMIT);
    assert.equal(run.started, model.slot, run.console);
  });

  it('a slot whose kernel does not start loses its tries and confirmation; U-Boot resets', () => {
    const v = activateSlot(beginInstall(fresh(), 'B'), 'B', 'build2', LIMIT);
    // Quotes of both kinds, as flash --cmdline may write them: U-Boot's hush drops quotes from a
    // command word holding "${bootargs}", so the script never puts bootargs in one.
    const args = `${v.get('bootargs') ?? ''} nodeos.run="require('fs').readdirSync('/')"`;
    v.set('bootargs', args);
    const run = runBootScript(tempDir(), { env: v, noKernel: ['B'] });
    assert.equal(run.chosen, 'B');
    assert.equal(run.started, undefined, run.console);
    assert.match(run.console, /nodeos: slot B did not start: no more tries for it/);
    assert.deepEqual([run.saved.get('nodeos_B_ok'), run.saved.get('nodeos_B_left')], ['0', '0']);
    // The next boot of that environment is the model's fallback: A.
    assert.equal(nextBoot(run.saved, LIMIT).slot, 'A');
    assert.equal(run.saved.get('bootargs'), args, 'the slot goes to the kernel only, never into the saved bootargs; the quotes stay');
  });
  it("a board whose U-Boot is its firmware (method uboot with the kit's DTB): boot.scr loads nodeos.dtb and Linux gets it, not U-Boot's own tree", () => {
    // As a sunxi or Rockchip profile: U-Boot carries a tree of its own, which ignores the kit's and its overlays.
    const own = { ...profile, devicetree: { ...profile.devicetree, dtb: 'nodeos/test.dtb' } };
    const dtbLayout = layoutFor(own, 0x5eed0002);
    assert.equal(dtbLayout.boot.loadDtb, true);
    const vars = new Map([...defaults, ['fdt_addr_r', '0x48000000']]);
    const script = bootScript(dtbLayout, [...vars]);
    assert.throws(() => bootScript(dtbLayout, defaults), /boot\.uboot\.env needs fdt_addr_r/);
    const dir = tempDir();
    writeFileSync(join(dir, 't.dts'), '/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; compatible = "nodeos,test-board"; model = "the kit\'s tree";\n chosen { };\n memory@40000000 { device_type = "memory"; reg = <0 0x40000000 0 0x20000000>; };\n};\n');
    const kitDtb = execFileSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', join(dir, 't.dts')]);
    const run = runBootScript(dir, { env: vars, files: { [dtbLayout.boot.dtb]: kitDtb } }, script);
    assert.equal(run.started, 'A', run.console);
    assert.equal(run.compatible, 'nodeos,test-board', `Linux got the kit's tree:\n${run.console}`);
    assert.match(run.bootargs ?? '', / nodeos\.slot=A$/, 'with U-Boot\'s fix-ups (the command line) in it');
    // Without loadDtb (the Pi's way) Linux gets the tree the firmware gave U-Boot: here QEMU's.
    assert.equal(runBootScript(tempDir(), { env: vars, files: { [dtbLayout.boot.dtb]: kitDtb } }).compatible, 'linux,dummy-virt');
  });
});
