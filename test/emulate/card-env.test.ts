import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createImage, decodeEnv, getBoard, prepareEmulation, writeSparseImage, type BoardProfile } from '../../src/index.js';
import { CARD_BOOTARGS, emulatedEnv, setEmulatedBootargs } from '../../src/emulate/card-env.js';
import { cardExtents, smallLayout } from '../helpers/card.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const OWN = 'console=tty1 console=ttyS1,115200 nodeos.boot=PARTUUID=0000002a-01';

describe('emulate: kernel arguments through U-Boot go into the emulated card\'s environment', () => {
  after(cleanupTemp);

  it('emulatedEnv: the card\'s own bootargs, then the added ones; again with other ones, not longer; none: back to the card\'s', () => {
    const card = new Map([['bootargs', OWN], ['nodeos_A_ok', '1']]);
    assert.equal(emulatedEnv(card, []), undefined, 'nothing added, nothing to change');
    const once = emulatedEnv(card, ['console=ttyAMA0,115200'])!;
    assert.equal(once.get('bootargs'), `${OWN} console=ttyAMA0,115200`);
    assert.equal(once.get(CARD_BOOTARGS), OWN);
    assert.equal(once.get('nodeos_A_ok'), '1', 'the rest as it was');
    const twice = emulatedEnv(once, ['nodeos.run="process.arch"', 'console=ttyAMA0,115200'])!;
    assert.equal(twice.get('bootargs'), `${OWN} nodeos.run="process.arch" console=ttyAMA0,115200`, 'from the card\'s own, not from the last run\'s');
    const back = emulatedEnv(twice, [])!;
    assert.equal(back.get('bootargs'), OWN);
    assert.equal(back.has(CARD_BOOTARGS), false);
  });

  /** A card image with the kit's uboot.env and uboot.bak, and a qcow2 overlay over it. */
  function card(env: Buffer, backup = env): { image: string; overlay: string; layout: ReturnType<typeof smallLayout> } {
    const dir = tempDir();
    const image = join(dir, 'card.img');
    const layout = smallLayout(4, 64, 0x2a);
    writeSparseImage(image, 128 << 20, cardExtents(layout, [{ path: 'uboot.env', data: env }, { path: 'uboot.bak', data: backup }, { path: 'u-boot.bin', data: Buffer.from('uboot') }]));
    const overlay = join(dir, 'card,1.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', image, overlay, String(1 << 30)]);
    return { image, overlay, layout };
  }

  /** A file of the boot partition as the guest would read it from the overlay (qemu-img to raw, then mtools). */
  function guestFile(overlay: string, name: string): Buffer {
    const raw = join(tempDir(), 'guest.img');
    execFileSync('qemu-img', ['convert', '-O', 'raw', overlay, raw]);
    return execFileSync('mcopy', ['-n', '-i', `${raw}@@${4 << 20}`, `::/${name}`, '-']);
  }

  it('setEmulatedBootargs writes both copies in the overlay (qemu-io), never the image; a kept overlay gets the same change, not a longer one', () => {
    const env = createImage(`bootargs=${OWN}\nboard_name=qemu-virt\n`, { size: 0x4000, pad: 0 });
    const { image, overlay, layout } = card(env);
    const before = readFileSync(image);
    assert.equal(setEmulatedBootargs(overlay, layout, 4 << 20, ['console=ttyAMA0,115200']), `${OWN} console=ttyAMA0,115200`);
    assert.equal(setEmulatedBootargs(overlay, layout, 4 << 20, ['console=ttyAMA0,115200']), `${OWN} console=ttyAMA0,115200`);
    for (const f of ['uboot.env', 'uboot.bak']) {
      const vars = decodeEnv(guestFile(overlay, f)).vars;
      assert.equal(vars.get('bootargs'), `${OWN} console=ttyAMA0,115200`, f);
      assert.equal(vars.get('board_name'), 'qemu-virt');
    }
    assert.ok(readFileSync(image).equals(before), 'the image is never written');
    assert.equal(setEmulatedBootargs(overlay, layout, 4 << 20, []), OWN, 'nothing added this time: the card\'s own again');
    assert.equal(decodeEnv(guestFile(overlay, 'uboot.env')).vars.get('bootargs'), OWN);
  });

  it('a damaged copy stays as it is; no readable copy at all is EENV_CRC, nothing written', () => {
    const env = createImage(`bootargs=${OWN}\n`, { size: 0x4000, pad: 0 });
    const bad = Buffer.from(env);
    bad[10] = bad[10]! ^ 0xff;
    const one = card(bad, env);
    setEmulatedBootargs(one.overlay, one.layout, 4 << 20, ['console=ttyAMA0,115200']);
    assert.ok(guestFile(one.overlay, 'uboot.env').equals(bad), 'the damaged uboot.env is left for boot.scr to skip');
    assert.equal(decodeEnv(guestFile(one.overlay, 'uboot.bak')).vars.get('bootargs'), `${OWN} console=ttyAMA0,115200`);
    const none = card(bad, bad);
    assert.throws(() => setEmulatedBootargs(none.overlay, none.layout, 4 << 20, ['console=ttyAMA0,115200']), (e: unknown) => (e as { code?: string }).code === 'EENV_CRC' && /cannot reach the kernel/.test((e as Error).message));
    assert.ok(guestFile(none.overlay, 'uboot.bak').equals(bad));
  });

  it('prepareEmulation: the card on the profile\'s SD bus, and the moved console and --append in the card\'s bootargs', () => {
    const env = createImage(`bootargs=${OWN}\n`, { size: 0x4000, pad: 0 });
    const { image } = card(env);
    const virt = getBoard('qemu-virt').profile;
    const q = virt.emulation!.qemu;
    const profile: BoardProfile = { ...virt, console: { ...virt.console, device: 'ttyS1' }, emulation: { qemu: { ...q, storage: 'sd', sdBus: '/generic-sdhci/sd-bus', serial: ['ttyAMA0', 'ttyS1'], console: 'ttyAMA0', cmdline: ['clk_ignore_unused'] } } };
    const e = prepareEmulation(image, profile, { cmdline: ['nodeos.run="process.arch"'], net: false });
    try {
      assert.equal(e.cmdline, `${OWN} clk_ignore_unused nodeos.run="process.arch" console=ttyAMA0,${virt.console.baud}`);
      const i = e.args.indexOf('-device');
      assert.equal(e.args[i + 1], 'sd-card,drive=card,bus=/generic-sdhci/sd-bus');
      assert.match(e.args[i - 1]!, /,if=none,format=qcow2,cache=writethrough,id=card$/);
      assert.deepEqual(e.args.filter((a, j) => e.args[j - 1] === '-serial'), ['mon:stdio'], 'the moved console (ttyAMA0, port 0) gets the terminal');
    } finally {
      e.cleanup();
    }
  });
});
