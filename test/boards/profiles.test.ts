import assert from 'node:assert/strict';
import { checkBoards, getBoard, loadBoards, UnknownBoardError } from '../../src/index.js';

describe('shipped board profiles', () => {
  it('all load, resolve and pass every check', () => {
    const { set, findings } = checkBoards();
    assert.deepEqual(findings, []);
    assert.deepEqual(
      set.boards.map((b) => b.profile.id),
      ['pine64-plus', 'qemu-virt', 'rock64', 'rpi0-2w', 'rpi0w', 'rpi1bplus', 'rpi3aplus', 'rpi3b', 'rpi3bplus', 'rpi400', 'rpi4b', 'rpi5b'],
    );
  });

  it('carry the Debian arm64 DTB names and the mini-UART console quirk', () => {
    const dtb = (id: string): string | undefined => getBoard(id).profile.devicetree.dtb;
    assert.equal(dtb('rpi3b'), 'broadcom/bcm2837-rpi-3-b.dtb');
    assert.equal(dtb('rpi3bplus'), 'broadcom/bcm2837-rpi-3-b-plus.dtb');
    assert.equal(dtb('rpi3aplus'), 'broadcom/bcm2837-rpi-3-a-plus.dtb');
    assert.equal(dtb('rpi0-2w'), 'broadcom/bcm2837-rpi-zero-2-w.dtb');
    assert.equal(dtb('rpi4b'), 'broadcom/bcm2711-rpi-4-b.dtb');
    assert.equal(dtb('rpi400'), 'broadcom/bcm2711-rpi-400.dtb');
    assert.equal(dtb('rpi5b'), 'broadcom/bcm2712-rpi-5-b.dtb');
    // Boards whose PL011 drives Bluetooth put the console on the mini UART (ttyS1 on mainline).
    for (const id of ['rpi3b', 'rpi3bplus', 'rpi3aplus', 'rpi0-2w', 'rpi4b', 'rpi400']) {
      const p = getBoard(id).profile;
      assert.equal(p.console.device, 'ttyS1', id);
      assert.ok(p.kernel.cmdline.includes('console=ttyS1,115200'), id);
    }
    assert.equal(getBoard('rpi1bplus').profile.console.device, 'ttyAMA0');
    assert.equal(getBoard('rpi5b').profile.console.device, 'ttyAMA10');
  });

  it("mark ARMv6 boards unsupported with the reason, and the Pi 5 supported on trixie-backports' 7.x kernel", () => {
    for (const id of ['rpi0w', 'rpi1bplus']) {
      const p = getBoard(id).profile;
      assert.equal(p.status, 'unsupported');
      assert.match(p.statusReason ?? '', /no official ARMv6 build/);
    }
    const p5 = getBoard('rpi5b').profile;
    assert.equal(p5.status, 'supported');
    assert.deepEqual(p5.kernel.source, { debian: 'linux-image-arm64', suite: 'trixie-backports' });
    assert.deepEqual(getBoard('rpi4b').profile.kernel.source, { debian: 'linux-image-arm64' }, 'the other Pis stay on the build suite');
  });

  it('inherit from SoC and family profiles: lists grow by add, scalars override', () => {
    const b = getBoard('rpi3b');
    assert.deepEqual(b.chain, ['rpi3b.yaml', 'base/bcm2837.yaml', 'base/rpi.yaml']);
    const p = b.profile;
    assert.deepEqual(p.kernel.fragments.slice(-6), ['soc/bcm283x.config', 'soc/bcm283x-sdhost.config', 'soc/bcm2835-rng.config', 'features/usb-net.config', 'features/pi3-ethernet.config', 'features/wifi.config']);
    assert.ok(p.kernel.modules.includes('sdhci-iproc') && p.kernel.modules.includes('i2c-bcm2835'));
    assert.equal(p.gpio.controllers[0]?.label, 'pinctrl-bcm2835');
    assert.equal(getBoard('rpi4b').profile.gpio.controllers[0]?.label, 'pinctrl-bcm2711');
    const pi5 = getBoard('rpi5b').profile;
    assert.equal(pi5.gpio.controllers[0]?.label, 'pinctrl-rp1');
    assert.ok(!pi5.kernel.modules.includes('i2c-bcm2835'), 'removed by the bcm2712 profile');
    assert.ok(!pi5.kernel.cmdline.includes('console=ttyS1,115200'));
    assert.ok(!('abstract' in p), 'abstract is not inherited');
  });

  it('an unknown board id is a typed error listing the known ones', () => {
    assert.throws(() => getBoard('rpi9'), (e: unknown) => e instanceof UnknownBoardError && e.code === 'EBOARD_UNKNOWN' && /rpi3b/.test(e.message));
  });

  it('revision codes decode to the board they are listed on (type and processor fields)', () => {
    const types: Record<string, [number, number]> = {
      rpi3b: [0x08, 2], rpi3bplus: [0x0d, 2], rpi3aplus: [0x0e, 2], 'rpi0-2w': [0x12, 2],
      rpi4b: [0x11, 3], rpi400: [0x13, 3], rpi5b: [0x17, 4], rpi0w: [0x0c, 0], rpi1bplus: [0x03, 0],
    };
    // Old-style codes (before bit 23), from the Raspberry Pi documentation's table.
    const oldStyle: Record<string, string> = { '0010': 'rpi1bplus', '0013': 'rpi1bplus' };
    let checked = 0;
    for (const b of loadBoards().boards) {
      const revisions = b.profile.detection.revisions ?? [];
      const want = types[b.profile.id];
      // Every board that lists revision codes is in the table: none passes unchecked.
      if (revisions.length > 0) assert.ok(want, `${b.profile.id} lists revision codes but has no expected type/processor here`);
      for (const r of revisions) {
        const code = parseInt(r, 16);
        checked++;
        if (!(code & (1 << 23))) {
          assert.equal(oldStyle[r], b.profile.id, `old-style ${r} belongs to ${oldStyle[r] ?? 'no board'}`);
          continue;
        }
        assert.equal((code >> 4) & 0xff, want![0], `${b.profile.id} ${r} type`);
        assert.equal((code >> 12) & 0xf, want![1], `${b.profile.id} ${r} processor`);
      }
    }
    assert.equal(checked, 34, 'every listed code was checked');
  });
});
