/**
 * The board's side of an update (board.system.update, and the nodeos-update SSH subsystem):
 * the real updateBoard over a folder laid out as the board's root — /proc/cmdline and
 * /proc/mounts, /boot with layout.json and the environment, the slots' partition devices
 * as files under /dev, the trusted keys in /etc/nodeos — so the key loading, the refusals and
 * what lands on the card are the board's code, not a stand-in.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { PassThrough } from 'node:stream';
import { decodeEnv, readSlots, trustedKey, writeBundle, type BspError } from '../../src/index.js';
import { updateBoard } from '../../src/runtime/update.js';
import { boardRoot as rootFor, keysJson } from '../helpers/board-root.js';
import { smallLayout } from '../helpers/card.js';
import { cleanupTemp } from '../helpers/tmp.js';

const layout = smallLayout(1, 8, 0x1234abcd, 'rpi3b');
const trusted = generateKeyPairSync('ed25519').privateKey;
const files = { kernel: Buffer.from('kernel '.repeat(100)), initramfs: Buffer.from('initramfs'), system: Buffer.alloc(600 << 10, 7) };
const bundle = (key?: KeyObject, board = 'rpi3b'): Buffer => writeBundle({ board, build: 'b2', layout, files, ...(key ? { key } : {}) });
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const boardRoot = (o: Parameters<typeof rootFor>[1] = {}): ReturnType<typeof rootFor> => rootFor(layout, o);
const cardState = (root: string): string[] => ['boot/uboot.env', 'boot/uboot.bak', 'dev/mmcblk0p2', 'dev/mmcblk0p3'].map((p) => sha(readFileSync(join(root, p))));

describe("the board's update (updateBoard over a board root in a folder)", () => {
  after(cleanupTemp);

  it('installs a bundle signed by a key in /etc/nodeos/update-keys.json into slot B, then prefers B', async () => {
    const { root, host, remounts, flushed } = boardRoot({ keys: keysJson(trusted) });
    const file = join(root, 'tmp', 'b2.nodeos-update');
    writeFileSync(file, bundle(trusted));
    const steps: string[] = [];
    const r = await updateBoard(file, (m) => steps.push(m), host);
    assert.deepEqual(r, { slot: 'B', build: 'b2', signedBy: trustedKey(trusted).id, bytes: files.system.length + files.kernel.length + files.initramfs.length });
    const slotB = readFileSync(join(root, 'dev/mmcblk0p3'));
    assert.ok(slotB.subarray(0, files.system.length).equals(files.system), 'the system is in slot B');
    assert.ok(readFileSync(join(root, 'dev/mmcblk0p2')).equals(Buffer.alloc(1 << 20, 1)), 'the running slot A is untouched');
    assert.ok(readFileSync(join(root, 'boot', layout.boot.slots.B.kernel)).equals(files.kernel));
    assert.ok(readFileSync(join(root, 'boot', layout.boot.slots.B.initramfs)).equals(files.initramfs));
    const st = readSlots(decodeEnv(readFileSync(join(root, 'boot/uboot.env'))).vars);
    assert.deepEqual(st.order, ['B', 'A']);
    assert.deepEqual(st.slots.B, { slot: 'B', build: 'b2', confirmed: false, triesLeft: layout.bootlimit });
    assert.ok(remounts.length > 0 && remounts.every((p) => p === join(root, 'boot')), 'every write to /boot is inside a read-write remount');
    assert.deepEqual(flushed, [join(root, 'dev/mmcblk0p3')], "slot B's cache is dropped before it is read back");
    assert.ok(steps.length > 0);
  });

  it("an older version than the running system's image.json is refused with the card as it was, unless allowed", async () => {
    const { root, host } = boardRoot({ keys: keysJson(trusted) });
    // A card from before versions: nothing in the environment, the running system's image.json says its build time.
    writeFileSync(join(root, 'etc/nodeos/image.json'), JSON.stringify({ buildEpoch: 1_800_000_000 }));
    const file = join(root, 'tmp', 'old.nodeos-update');
    writeFileSync(file, writeBundle({ board: 'rpi3b', build: 'old', version: 1_700_000_000, layout, files, key: trusted }));
    const before = cardState(root);
    await assert.rejects(updateBoard(file, () => undefined, host), (e: BspError) => e.code === 'EUPDATE_DOWNGRADE');
    assert.deepEqual(cardState(root), before);
    const r = await updateBoard(file, () => undefined, host, { allowDowngrade: true });
    assert.equal(r.build, 'old');
    assert.equal(decodeEnv(readFileSync(join(root, 'boot/uboot.env'))).vars.get('nodeos_B_version'), '1700000000');
  });

  it('an upload (a stream, as the SSH subsystem hands it) is staged in /tmp and removed afterwards', async () => {
    const { root, host } = boardRoot({ keys: keysJson(trusted) });
    const stream = new PassThrough();
    stream.end(bundle(trusted));
    const steps: string[] = [];
    const r = await updateBoard(stream, (m) => steps.push(m), host);
    assert.equal(r.build, 'b2');
    assert.equal(steps[0], 'receiving the bundle');
    assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'the staged bundle is gone');
  });

  it('downloads an http bundle; a server that stalls, cuts the body short or says 404 is EUPDATE_DOWNLOAD with the card as it was', async () => {
    const { root, host } = boardRoot({ keys: keysJson(trusted) });
    const good = bundle(trusted);
    const server = createServer((req, res) => {
      if (req.url === '/good') return void res.writeHead(200, { 'content-length': good.length }).end(good);
      if (req.url === '/stall') return void (res.writeHead(200, { 'content-length': good.length }), res.write(good.subarray(0, 1000)));
      if (req.url === '/short') return void (res.writeHead(200, { 'content-length': good.length }), res.write(good.subarray(0, 1000), () => res.destroy()));
      if (req.url === '/silent') return; // not even the headers
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const before = cardState(root);
      for (const [path, why] of [
        ['/stall', /nothing received for 300 ms \(1000 of \d+ bytes in\)/],
        ['/silent', /nothing received for 300 ms \(0 bytes in\)/],
        ['/short', /the server sent 1000 of \d+ bytes|the download failed/],
        ['/missing', /HTTP 404/],
      ] as const) {
        const t = Date.now();
        await assert.rejects(updateBoard(`${base}${path}`, () => undefined, host, { stallMs: 300 }), (e: BspError) => e.code === 'EUPDATE_DOWNLOAD' && why.test(e.message) && /nothing was written to the other slot/.test(e.message));
        assert.ok(Date.now() - t < 5000, `${path} given up in ${Date.now() - t} ms`);
        assert.deepEqual(cardState(root), before, `${path}: the card is as it was`);
        assert.deepEqual(readdirSync(join(root, 'tmp')), [], `${path}: the staged download is gone`);
      }
      const steps: string[] = [];
      const r = await updateBoard(`${base}/good`, (m) => steps.push(m), host, { stallMs: 300 });
      assert.equal(r.build, 'b2');
      assert.equal(steps[0], `downloading ${base}/good`);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  for (const [what, keys, key, code] of [
    ['signed by a key the board does not trust', keysJson(trusted), generateKeyPairSync('ed25519').privateKey, 'EUPDATE_SIGNATURE'],
    ['unsigned', keysJson(trusted), undefined, 'EUPDATE_UNSIGNED'],
    ['trusted keys file missing: no key, so no update', undefined, trusted, 'EUPDATE_SIGNATURE'],
    ['trusted keys file lists other keys only', keysJson(generateKeyPairSync('ed25519').privateKey), trusted, 'EUPDATE_SIGNATURE'],
  ] as const) {
    it(`refuses a bundle ${what}: ${code}, the card as it was`, async () => {
      const { root, host } = boardRoot(keys === undefined ? {} : { keys });
      const before = cardState(root);
      const file = join(root, 'tmp', 'x.nodeos-update');
      writeFileSync(file, bundle(key));
      await assert.rejects(updateBoard(file, () => undefined, host), (e: BspError) => e.code === code);
      assert.deepEqual(cardState(root), before);
      assert.equal(existsSync(join(root, 'boot', layout.boot.slots.B.kernel)), false);
    });
  }

  it('refuses a bundle for another board, an unconfirmed running slot, and a system not started from a slot', async () => {
    const other = boardRoot({ keys: keysJson(trusted) });
    const file = join(other.root, 'tmp', 'x.nodeos-update');
    writeFileSync(file, bundle(trusted, 'rpi4b'));
    const before = cardState(other.root);
    await assert.rejects(updateBoard(file, () => undefined, other.host), (e: BspError) => /^EUPDATE/.test(e.code) && /rpi4b/.test(e.message));
    assert.deepEqual(cardState(other.root), before);
    const unconfirmed = boardRoot({ keys: keysJson(trusted), confirmed: false });
    await assert.rejects(updateBoard(file, () => undefined, unconfirmed.host), (e: BspError) => e.code === 'EUPDATE_UNCONFIRMED');
    const direct = boardRoot({ keys: keysJson(trusted), cmdline: 'console=ttyS1,115200\n' });
    await assert.rejects(updateBoard(file, () => undefined, direct.host), (e: BspError) => e.code === 'EUPDATE' && /direct boot/.test(e.message));
  });
});
