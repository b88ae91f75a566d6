/** nodeos-bsp update on a card image: mtools writes the slot's boot files, the env is rewritten in place (copy first). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { updateCard } from '../../flash/index.js';
import { createImage, decodeEnv, Fat32Reader, initialSlotVars, readSlots, trustedKey, writeBundle, writeSparseImage, type BspError } from '../../src/index.js';
import { cardExtents, smallLayout } from '../helpers/card.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { attachLoop, detachLoop, isRoot } from '../helpers/tools.js';

const MiB = 1 << 20;
const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('update a card image (mtools, unsquashfs)', () => {
  after(cleanupTemp);
  const { privateKey: key } = generateKeyPairSync('ed25519');
  const layout = smallLayout(4, 60, 0x5eed, 'rpi3b');

  function card(dir: string): string {
    // Slot A: a squashfs whose update-keys.json trusts `key`.
    const root = join(dir, 'root');
    mkdirSync(join(root, 'etc/nodeos'), { recursive: true });
    writeFileSync(join(root, 'etc/nodeos/update-keys.json'), JSON.stringify({ keys: [trustedKey(key)] }));
    execFileSync('mksquashfs', [root, join(dir, 'a.sqfs'), '-quiet', '-no-progress', '-all-root']);
    const env = createImage(initialSlotVars('build1', 3).map(([k, v]) => `${k}=${v}`).join('\n') + '\nbootargs=console=ttyS1\n', { size: 0x4000, pad: 0 });
    const path = join(dir, 'card.img');
    writeSparseImage(path, 128 * MiB, [
      ...cardExtents(layout, [{ path: 'uboot.env', data: env }, { path: 'uboot.bak', data: env }, { path: 'slot-a/Image.gz', data: Buffer.from('kernel A') }, { path: 'slot-a/initrd.zst', data: Buffer.from('initrd A') }]),
      { offset: 64 * MiB, data: readFileSync(join(dir, 'a.sqfs')) },
    ]);
    return path;
  }
  const files = { kernel: Buffer.alloc(300_000, 'k'), initramfs: Buffer.from('initrd B'), system: Buffer.alloc(MiB - 4096, 's') };

  it('writes slot B (partition, boot files via mtools), then activates it in uboot.bak and uboot.env', async () => {
    const dir = tempDir();
    const path = card(dir);
    const bundle = join(dir, 'b.nodeos-update');
    writeFileSync(bundle, writeBundle({ board: 'rpi3b', build: 'build2', layout: { ...layout, diskSignature: '0000abcd' }, files, key }));
    const r = await updateCard(bundle, path, { forceFile: true });
    assert.deepEqual([r.slot, r.build], ['B', 'build2']);
    const fat = new Fat32Reader(path, 4 * MiB);
    for (const f of ['uboot.env', 'uboot.bak']) {
      const st = readSlots(decodeEnv(fat.readFile(f)).vars);
      assert.deepEqual([st.order, st.slots.B.build, st.slots.B.triesLeft, st.slots.A.confirmed], [['B', 'A'], 'build2', 3, true], f);
    }
    assert.deepEqual(fat.readFile('slot-b/Image.gz'), files.kernel);
    assert.deepEqual(fat.readFile('slot-a/Image.gz'), Buffer.from('kernel A'));
    fat.close();
    // mtools agrees about the FAT it edited.
    assert.match(execFileSync('mdir', ['-i', `${path}@@${4 * MiB}`, '::slot-b'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString(), /IMAGE\s+GZ\s+300\s?000/);
    assert.ok(readFileSync(path).subarray(65 * MiB, 66 * MiB - 4096).equals(files.system));
  });

  it('a bundle signed by a key the card does not trust changes nothing', async () => {
    const dir = tempDir();
    const path = card(dir);
    const before = sha(path);
    const bundle = join(dir, 'evil.nodeos-update');
    writeFileSync(bundle, writeBundle({ board: 'rpi3b', build: 'evil', layout, files, key: generateKeyPairSync('ed25519').privateKey }));
    await assert.rejects(() => updateCard(bundle, path, { forceFile: true }), (e: BspError) => e.code === 'EUPDATE_SIGNATURE' && /does not trust/.test(e.message));
    assert.equal(sha(path), before);
    await assert.rejects(() => updateCard(bundle, path), (e: BspError) => e.code === 'ENOT_BLOCK');
  });

  it('a card (loop device): the slot is read back from the card after its cache is dropped (root)', async function () {
    if (!isRoot()) this.skip();
    const dir = tempDir();
    const path = card(dir);
    const bundle = join(dir, 'b.nodeos-update');
    writeFileSync(bundle, writeBundle({ board: 'rpi3b', build: 'build2', layout, files, key }));
    const dev = attachLoop(path);
    try {
      const r = await updateCard(bundle, dev);
      assert.deepEqual([r.slot, r.build], ['B', 'build2']);
    } finally {
      detachLoop(dev);
    }
    assert.ok(readFileSync(path).subarray(65 * MiB, 66 * MiB - 4096).equals(files.system));
  });
});
