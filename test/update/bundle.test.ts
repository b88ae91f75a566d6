/** Update bundles: signed, checked before anything is written, installed slot-first, env last. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createKeyPair, downgradeProblem, getBoard, initialSlotVars, installBundle, slotVersion, layoutFor, loadSigningKey, openBundle, readSlots, trustedKey, writeBundle, type BspError, type SlotTarget } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { statSync } from 'node:fs';

const layout = layoutFor(getBoard('rpi3b').profile, 0x01020304);
const files = { kernel: Buffer.from('kernel '.repeat(1000)), initramfs: Buffer.from('initramfs'), system: Buffer.alloc(9 << 20, 7) };
const { privateKey: key } = generateKeyPairSync('ed25519');
const { privateKey: otherKey } = generateKeyPairSync('ed25519');

/** A card in memory: the environment, two slots, the boot files. */
function memoryCard(trusted = [trustedKey(key)]): SlotTarget & { env: Map<string, string>; slots: Record<string, Buffer>; boot: Map<string, Buffer>; writes: string[] } {
  const card = {
    layout,
    env: new Map(initialSlotVars('build1', 3)),
    slots: { A: Buffer.alloc(16 << 20, 1), B: Buffer.alloc(16 << 20) } as Record<string, Buffer>,
    boot: new Map<string, Buffer>(),
    writes: [] as string[],
    trustedKeys: () => trusted,
    readEnv: () => new Map(card.env),
    writeEnv: (v: Map<string, string>) => void (card.writes.push('env'), (card.env = new Map(v))),
    writeSystem: (s: string, o: number, d: Buffer) => void (card.writes.push(`system ${s}`), d.copy(card.slots[s]!, o)),
    readSystem: (s: string, o: number, n: number) => card.slots[s]!.subarray(o, o + n),
    syncSystem: () => undefined,
    writeBootFile: (p: string, d: Buffer) => void (card.writes.push(p), card.boot.set(p, d)),
    readBootFile: (p: string) => card.boot.get(p)!,
  };
  return card;
}
const reader = (b: Buffer) => (p: number, n: number): Buffer => b.subarray(p, p + n);
const codeOf = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return (err as BspError).code;
  }
  return 'no error';
};
const asyncCodeOf = async (f: () => Promise<unknown>): Promise<string> => {
  try {
    await f();
  } catch (err) {
    return (err as BspError).code;
  }
  return 'no error';
};

describe('update bundles', () => {
  after(cleanupTemp);
  const bundle = writeBundle({ board: 'rpi3b', build: 'build2', layout, files, key });

  it('install: slot B emptied first, system then boot files written and read back, then B activated', async () => {
    const card = memoryCard();
    const r = await installBundle(reader(bundle), bundle.length, 'b', card, 'B');
    assert.deepEqual([r.slot, r.build], ['B', 'build2']);
    assert.equal(card.writes[0], 'env', 'the slot is emptied before anything is written to it');
    assert.equal(card.writes.at(-1), 'env', 'and activated last');
    assert.ok(card.writes.slice(1, -1).every((w) => w !== 'system A'), 'the running slot is never written');
    assert.ok(card.slots.B!.subarray(0, files.system.length).equals(files.system));
    assert.ok(card.slots.A!.every((x) => x === 1));
    assert.deepEqual(card.boot.get('slot-b/Image.gz'), files.kernel);
    assert.deepEqual(card.boot.get('slot-b/initrd.zst'), files.initramfs);
    const st = readSlots(card.env);
    assert.deepEqual(st.order, ['B', 'A']);
    assert.deepEqual(st.slots.B, { slot: 'B', build: 'build2', confirmed: false, triesLeft: 3 });
    assert.deepEqual(st.slots.A, { slot: 'A', build: 'build1', confirmed: true, triesLeft: 3 });
  });

  it('refuses an unsigned bundle, another key, a changed header, another board or layout: nothing written', async () => {
    const cases: [string, Buffer, string][] = [
      ['unsigned', writeBundle({ board: 'rpi3b', build: 'x', layout, files }), 'EUPDATE_UNSIGNED'],
      ['other key', writeBundle({ board: 'rpi3b', build: 'x', layout, files, key: otherKey }), 'EUPDATE_SIGNATURE'],
      ['other board', writeBundle({ board: 'rpi4b', build: 'x', layout: { ...layout, board: 'rpi4b' }, files, key }), 'EUPDATE_BOARD'],
      ['other layout', writeBundle({ board: 'rpi3b', build: 'x', layout: { ...layout, bootlimit: 5 }, files, key }), 'EUPDATE_LAYOUT'],
    ];
    const tampered = Buffer.from(bundle);
    tampered.write('"build":"evil22"', tampered.indexOf('"build":"build2"'), 'utf8');
    cases.push(['tampered header', tampered, 'EUPDATE_SIGNATURE']);
    cases.push(['truncated', bundle.subarray(0, bundle.length - 4096), 'EUPDATE_BUNDLE']);
    cases.push(['not a bundle', Buffer.from('hello world, not a bundle'), 'EUPDATE_BUNDLE']);
    for (const [name, b, code] of cases) {
      const card = memoryCard();
      assert.equal(await asyncCodeOf(() => installBundle(reader(b), b.length, name, card, 'B')), code, name);
      assert.deepEqual(card.writes, [], `${name}: nothing written`);
    }
    // A system that trusts no key (an unsigned build) takes no bundle.
    const none = memoryCard([]);
    assert.equal(await asyncCodeOf(() => installBundle(reader(bundle), bundle.length, 'b', none, 'B')), 'EUPDATE_SIGNATURE');
  });

  it('an older signed version is refused (EUPDATE_DOWNGRADE, nothing written) unless allowed; the version is signed and recorded for the slot', async () => {
    const running = 1_800_000_000;
    const card = (): ReturnType<typeof memoryCard> => {
      const c = memoryCard();
      c.env = new Map(initialSlotVars('build1', 3, running));
      return Object.assign(c, { runningVersion: () => slotVersion(c.env, 'A') });
    };
    const older = writeBundle({ board: 'rpi3b', build: 'old', version: running - 86400, layout, files, key });
    const c1 = card();
    await assert.rejects(installBundle(reader(older), older.length, 'old.nodeos-update', c1, 'B'), (e: unknown) => (e as BspError).code === 'EUPDATE_DOWNGRADE' && /version 1799913600 \(2027-01-14T08:00:00Z\), older than the running system's 1800000000 .*--allow-downgrade/.test((e as Error).message));
    assert.deepEqual(c1.writes, []);
    // A bundle from before versions counts as 0.
    const unversioned = writeBundle({ board: 'rpi3b', build: 'pre', layout, files, key });
    assert.equal(await asyncCodeOf(() => installBundle(reader(unversioned), unversioned.length, 'pre', card(), 'B')), 'EUPDATE_DOWNGRADE');
    // The version is in the signed header: raising it breaks the signature.
    const forged = Buffer.from(older);
    forged.write(`"version":${running + 1}`, forged.indexOf(`"version":${running - 86400}`), 'utf8');
    assert.equal(await asyncCodeOf(() => installBundle(reader(forged), forged.length, 'forged', card(), 'B')), 'EUPDATE_SIGNATURE');
    // On purpose: allowed, and the slot records the version it holds; the same version and a newer one need nothing.
    const c2 = card();
    await installBundle(reader(older), older.length, 'old', c2, 'B', undefined, { allowDowngrade: true });
    assert.equal(slotVersion(c2.env, 'B'), running - 86400);
    for (const v of [running, running + 1]) {
      const b = writeBundle({ board: 'rpi3b', build: `v${v}`, version: v, layout, files, key });
      const c = card();
      await installBundle(reader(b), b.length, 'b', c, 'B');
      assert.equal(slotVersion(c.env, 'B'), v);
    }
    // A card from before versions (nothing recorded) takes any.
    assert.equal(downgradeProblem(1, undefined, 'x'), undefined);
  });

  it('a payload damaged after signing is caught while writing: the slot stays empty, the running system preferred', async () => {
    const damaged = Buffer.from(bundle);
    const h = openBundle(reader(damaged), damaged.length, 'd').header;
    const at = h.files.system.offset + 5_000_000;
    damaged[at] = damaged[at]! ^ 0xff;
    const card = memoryCard();
    assert.equal(await asyncCodeOf(() => installBundle(reader(damaged), damaged.length, 'd', card, 'B')), 'EUPDATE_HASH');
    const st = readSlots(card.env);
    assert.deepEqual(st.order, ['A', 'B']);
    assert.equal(st.slots.B.build, undefined);
    assert.equal(st.slots.B.triesLeft, 0);
  });

  it('keys create writes a 0600 private key and refuses to overwrite; build loads it', () => {
    const dir = tempDir();
    const k = createKeyPair(dir);
    assert.equal(statSync(k.privateKey).mode & 0o777, 0o600);
    assert.match(k.id, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(trustedKey(loadSigningKey(k.privateKey)).id, k.id);
    assert.equal(codeOf(() => createKeyPair(dir)), 'EKEY_EXISTS');
    assert.equal(codeOf(() => loadSigningKey(k.publicKey)), 'EKEY');
  });
});
