/**
 * The boot chain a real board walks (docs/boot-chain.md), one test per rule: a card laid out
 * as the builder lays it out keeps every rule of its board; each break is caught by its rule.
 * QEMU never runs the boot ROM or the GPU firmware, so these are their proof.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootScript, buildFat32, buildMbr, checkBootChain, createImage, getBoard, layoutFor, scriptImage, shortName, ubootEnvironment, writeSparseImage, type FatFile } from '../../src/index.js';
import type { BoardProfile } from '../../src/boards/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const MiB = 1 << 20;
const DISK_ID = 0x4e4f4445;

interface CardEdit {
  files?: (files: FatFile[]) => FatFile[];
  mbrType?: number;
  env?: (vars: [string, string][]) => [string, string][];
  envSize?: number;
  shortNames?: boolean;
}

/** A card as the builder makes it for `profile` (stand-in firmware and kernel bytes). */
function card(profile: BoardProfile, edit: CardEdit = {}): string {
  const layout = layoutFor(profile, DISK_ID);
  let vars = ubootEnvironment(profile, 'test', layout);
  if (edit.env) vars = edit.env(vars);
  const env = createImage(vars.map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { size: edit.envSize ?? 0x4000, pad: 0 });
  let files: FatFile[] = [
    ...(profile.boot.files ?? []).map((f) => ({ path: f.path, data: Buffer.from([...f.lines, ''].join('\n')) })),
    { path: layout.boot.slots.A.kernel, data: Buffer.from('kernel') },
    { path: layout.boot.slots.A.initramfs, data: Buffer.from('initramfs') },
    { path: layout.env.file, data: env },
    { path: layout.env.backup, data: env },
    { path: layout.boot.script, data: scriptImage(bootScript(layout, vars), { name: 'test', arch: 'arm64', time: 0 }) },
    { path: layout.boot.uboot, data: Buffer.from('u-boot') },
    ...(profile.devicetree.dtb ? [{ path: layout.boot.dtb, data: Buffer.from('dtb') }] : []),
    ...(profile.devicetree.firmwareName ? [{ path: profile.devicetree.firmwareName, data: Buffer.from('dtb') }] : []),
    ...(profile.boot.firmware?.files ?? []).map((f) => ({ path: f, data: Buffer.from(f) })),
  ];
  if (edit.files) files = edit.files(files);
  const fat = buildFat32(files, { size: 128 * MiB, volumeId: 1, mtime: 1_735_689_600, hiddenSectors: 8192 });
  const path = join(tempDir(), `${createHash('sha256').update(JSON.stringify(files.map((f) => f.path)) + Math.random()).digest('hex').slice(0, 8)}.img`);
  writeSparseImage(path, 256 * MiB, [
    { offset: 0, data: buildMbr([{ start: 8192, sectors: 128 * 2048, type: edit.mbrType ?? 0x0c, bootable: true }], DISK_ID) },
    ...fat.extents.map((e) => ({ offset: e.offset + 8192 * 512, data: e.data })),
  ]);
  return path;
}

const failed = (image: string, profile: BoardProfile): string[] => checkBootChain(image, profile).filter((r) => !r.ok).map((r) => r.id);

describe('boot chain: what each board\'s card provides for each step', () => {
  after(cleanupTemp);

  for (const id of ['rpi3b', 'rpi3bplus', 'rpi3aplus', 'rpi0-2w', 'rpi4b', 'rpi400', 'qemu-virt']) {
    it(`${id}: a card as the builder lays it out keeps every rule`, () => {
      const p = getBoard(id).profile;
      const rules = checkBootChain(card(p), p);
      assert.deepEqual(rules.filter((r) => !r.ok), []);
      const ids = new Set(rules.map((r) => r.id));
      for (const r of ['BC_MBR', 'BC_FAT32', 'BC_ENV', 'BC_ENV_CRC', 'BC_DEVICE', 'BC_LOADS', 'BC_SCRIPT', 'BC_BOOT_PARTUUID', 'BC_CONSOLE']) assert.ok(ids.has(r), `${id} checks ${r}`);
      if (p.boot.firmware) for (const r of ['BC_FIRMWARE_83', 'BC_CONFIG_TXT', 'BC_ARM64', 'BC_KERNEL', 'BC_DTB']) assert.ok(ids.has(r), `${id} checks ${r}`);
    });
  }

  it('the firmware loads the DTB named after the board (Raspberry Pi documentation\'s names)', () => {
    const names: Record<string, string> = {
      rpi3b: 'bcm2710-rpi-3-b.dtb', rpi3bplus: 'bcm2710-rpi-3-b-plus.dtb', rpi3aplus: 'bcm2710-rpi-3-a-plus.dtb',
      'rpi0-2w': 'bcm2710-rpi-zero-2-w.dtb', rpi4b: 'bcm2711-rpi-4-b.dtb', rpi400: 'bcm2711-rpi-400.dtb',
    };
    for (const [id, dtb] of Object.entries(names)) assert.equal(getBoard(id).profile.devicetree.firmwareName, dtb, id);
  });

  const p3 = getBoard('rpi3b').profile;
  const p4 = getBoard('rpi4b').profile;

  it('BC_MBR: the ROM reads the first partition only if it is FAT (type 0x0c)', () => {
    assert.deepEqual(failed(card(p3, { mbrType: 0x83 }), p3), ['BC_MBR']);
  });

  it('BC_FIRMWARE_83: bootcode.bin, start*.elf, fixup*.dat are found by their 8.3 names, not a ~1 alias', () => {
    // The layout the kit used to write: a long name "bootcode.bin" over the short BOOTCO~1.BIN
    // (made here by rewriting the directory: BOOT.SCR's entry becomes the long-name entry).
    const old = card(p3);
    const img = readFileSync(old);
    const part = 8192 * 512;
    const dirAt = part + (img.readUInt16LE(part + 14) + 2 * img.readUInt32LE(part + 36)) * 512;
    const at = (short: string): number => {
      for (let o = dirAt; img[o] !== 0; o += 32) if (img.toString('latin1', o, o + 11) === short) return o;
      throw new Error(`no ${short}`);
    };
    const e = at('BOOTCODEBIN');
    assert.equal(at('BOOT    SCR'), e - 32, 'boot.scr sorts just before bootcode.bin');
    img.write('BOOTCO~1BIN', e, 'latin1');
    img[e + 12] = 0;
    let sum = 0;
    for (const c of Buffer.from('BOOTCO~1BIN')) sum = (((sum & 1) << 7) + (sum >> 1) + c) & 0xff;
    const lfn = Buffer.alloc(32, 0xff);
    lfn[0] = 0x41;
    [...'bootcode.bin', '\0'].forEach((ch, i) => lfn.writeUInt16LE(ch === '\0' ? 0 : ch.charCodeAt(0), [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30][i]!));
    lfn[11] = 0x0f;
    lfn[12] = 0;
    lfn[13] = sum;
    lfn.writeUInt16LE(0, 26);
    lfn.copy(img, e - 32);
    writeFileSync(old, img);
    assert.deepEqual(failed(old, p3), ['BC_FIRMWARE_83', 'BC_SCRIPT', 'BC_LOADS']);
    assert.match(checkBootChain(old, p3).find((r) => !r.ok)!.detail, /short entry BOOTCO~1\.BIN \(the firmware looks for BOOTCODE\.BIN\)/);
    assert.deepEqual(failed(card(p3, { files: (f) => f.filter((x) => x.path !== 'start.elf') }), p3), ['BC_FIRMWARE_83']);
    assert.deepEqual(failed(card(p4, { files: (f) => f.filter((x) => x.path !== 'fixup4.dat') }), p4), ['BC_FIRMWARE_83']);
    assert.equal(shortName('bootcode.bin', new Set()).short, 'BOOTCODEBIN');
  });

  it('BC_CONFIG_TXT, BC_ARM64, BC_KERNEL, BC_UART: config.txt is there and says 64-bit, kernel=u-boot.bin, enable_uart=1', () => {
    assert.deepEqual(failed(card(p3, { files: (f) => f.filter((x) => x.path !== 'config.txt') }), p3), ['BC_CONFIG_TXT']);
    const config = (text: string) => (f: FatFile[]) => f.map((x) => (x.path === 'config.txt' ? { path: x.path, data: Buffer.from(text) } : x));
    assert.deepEqual(failed(card(p3, { files: config('enable_uart=1\nkernel=u-boot.bin\n') }), p3), ['BC_ARM64']);
    assert.deepEqual(failed(card(p3, { files: config('arm_64bit=1\nenable_uart=1\n') }), p3), ['BC_KERNEL']);
    assert.deepEqual(failed(card(p3, { files: config('arm_64bit=1\nenable_uart=1\nkernel=u-boot2.bin\n') }), p3), ['BC_KERNEL']);
    assert.deepEqual(failed(card(p3, { files: config('arm_64bit=1\nkernel=u-boot.bin\n# enable_uart=1\n') }), p3), ['BC_UART']);
  });

  it('BC_DTB: the DTB the firmware looks for (or device_tree=) is on the card', () => {
    assert.deepEqual(failed(card(p3, { files: (f) => f.filter((x) => x.path !== 'bcm2710-rpi-3-b.dtb') }), p3), ['BC_DTB']);
    assert.deepEqual(failed(card(p4, { files: (f) => f.filter((x) => x.path !== 'bcm2711-rpi-4-b.dtb') }), p4), ['BC_DTB']);
  });

  it("BC_DTB_LINUX: Linux gets the kit's tree: the one the firmware loaded on a Pi; where U-Boot is the firmware, the one boot.scr loads", () => {
    const rule = (image: string, p: BoardProfile): { ok: boolean; detail: string } | undefined => checkBootChain(image, p).find((r) => r.id === 'BC_DTB_LINUX');
    assert.equal(rule(card(p3), p3)?.detail, 'Linux gets the tree the firmware loaded and handed U-Boot (BC_DTB)');
    // A sunxi-like board: U-Boot is the firmware and carries its own tree.
    const virt = getBoard('qemu-virt').profile;
    const own: BoardProfile = { ...virt, devicetree: { ...virt.devicetree, dtb: 'vendor/board.dtb' }, boot: { ...virt.boot, uboot: { ...virt.boot.uboot!, env: { ...virt.boot.uboot!.env, fdt_addr_r: '0x48000000' } } } };
    assert.deepEqual(rule(card(own), own), { id: 'BC_DTB_LINUX', step: 'linux', ok: true, detail: 'boot.scr loads nodeos.dtb to ${fdt_addr_r} (0x48000000) and hands it to Linux' } as never);
    // A script that hands Linux U-Boot's own tree (the kit before this rule): refused.
    const theirs = card(own, { files: (f) => f.map((x) => (x.path === 'boot.scr' ? { path: x.path, data: scriptImage(bootScript({ ...layoutFor(own, DISK_ID), boot: { ...layoutFor(own, DISK_ID).boot, loadDtb: false } }, ubootEnvironment(own, 'test', layoutFor(own, DISK_ID))), { name: 'test', arch: 'arm64', time: 0 }) } : x)) });
    assert.match(rule(theirs, own)?.detail ?? '', /^Linux would get \$\{fdtcontroladdr\}; boot\.scr does not load nodeos\.dtb to \$\{fdt_addr_r\}: this board's U-Boot is its firmware/);
  });

  it('BC_ENV, BC_ENV_CRC: uboot.env is there, of the size U-Boot reads, with a good CRC', () => {
    assert.deepEqual(failed(card(p3, { files: (f) => f.filter((x) => x.path !== 'uboot.env') }), p3), ['BC_ENV']);
    assert.deepEqual(failed(card(p3, { envSize: 0x2000 }), p3), ['BC_ENV']);
    // The size is the U-Boot build's (a sunxi build reads 64 KiB), as the build or layout.json says.
    const big = card(p3, { envSize: 0x10000 });
    assert.deepEqual(failed(big, p3), ['BC_ENV']);
    assert.deepEqual(checkBootChain(big, p3, { envSize: 0x10000 }).filter((r) => !r.ok).map((r) => r.id), []);
    const layoutSays = (size: number): string => card(p3, { envSize: 0x10000, files: (f) => [...f, { path: 'layout.json', data: Buffer.from(JSON.stringify({ ...layoutFor(p3, DISK_ID), env: { file: 'uboot.env', backup: 'uboot.bak', size } })) }] });
    assert.deepEqual(failed(layoutSays(0x10000), p3), []);
    assert.match(checkBootChain(layoutSays(0x4000), p3).find((r) => !r.ok)?.detail ?? '', /uboot\.env: 65536 bytes \(U-Boot reads 16384\)/);
    const bad = card(p3, { files: (f) => f.map((x) => (x.path === 'uboot.env' ? { path: x.path, data: Buffer.concat([Buffer.from([1, 2, 3, 4]), x.data.subarray(4)]) } : x)) });
    assert.deepEqual(failed(bad, p3), ['BC_ENV_CRC']);
  });

  it('BC_LOADS, BC_SCRIPT: bootcmd and boot.scr load files that are on the card, from the boot device; boot.scr is a script image', () => {
    assert.deepEqual(failed(card(p3, { files: (f) => f.filter((x) => x.path !== 'slot-a/initrd.zst') }), p3), ['BC_LOADS']);
    assert.deepEqual(failed(card(p3, { files: (f) => f.filter((x) => x.path !== 'slot-a/Image.gz') }), p3), ['BC_LOADS']);
    assert.deepEqual(failed(card(p3, { env: (v) => v.map(([k, x]) => [k, k === 'bootcmd' ? x.replace(/mmc 0:1/g, 'mmc 1:1') : x]) }), p3), ['BC_LOADS']);
    // bootcmd runs boot.scr: without it nothing is loaded either.
    assert.deepEqual(failed(card(p3, { files: (f) => f.filter((x) => x.path !== 'boot.scr') }), p3), ['BC_SCRIPT', 'BC_LOADS']);
  });

  it('BC_BOOT_PARTUUID, BC_CONSOLE: Linux is told which partition is /boot and where the console is', () => {
    assert.deepEqual(failed(card(p3, { env: (v) => v.map(([k, x]) => [k, k === 'bootargs' ? x.replace(/nodeos\.boot=\S+/, 'nodeos.boot=PARTUUID=00000000-01') : x]) }), p3), ['BC_BOOT_PARTUUID']);
    const bootargs = (edit: (x: string) => string) => card(p3, { env: (v) => v.map(([k, x]) => [k, k === 'bootargs' ? edit(x) : x]) });
    assert.deepEqual(failed(bootargs((x) => x.replace(/console=\S+/, 'console=ttyAMA0,115200')), p3), ['BC_CONSOLE']);
    // The screen's console may come first; the last one (/dev/console) must be the serial console.
    assert.deepEqual(failed(bootargs((x) => x), p3), []);
    assert.match(new Map(ubootEnvironment(p3, 'test', layoutFor(p3, DISK_ID))).get('bootargs') ?? '', /console=tty1 console=ttyS1,115200/);
    assert.deepEqual(failed(bootargs((x) => x.replace(/console=ttyS1,115200/, '')), p3), ['BC_CONSOLE']);
    assert.deepEqual(failed(bootargs((x) => `${x} console=tty1`), p3), ['BC_CONSOLE']);
  });
});
