/**
 * The board's side of a fleet over a board root in a folder: its id, its state as the agent
 * publishes it, and an update job's download and the real signed A/B install into the root's
 * slot files (runtime/update.ts), from a bundle served on loopback.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { decodeEnv, readSlots, writeBundle } from '../../src/index.js';
import { fleetBoardId, LinuxFleetSystem } from '../../src/runtime/fleet-system.js';
import { updateBoard } from '../../src/runtime/update.js';
import { boardRoot, keysJson } from '../helpers/board-root.js';
import { smallLayout } from '../helpers/card.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const layout = smallLayout(1, 8, 0x1234abcd, 'rpi3b');
const key = generateKeyPairSync('ed25519').privateKey;
const files = { kernel: Buffer.from('kernel2'), initramfs: Buffer.from('initrd2'), system: Buffer.alloc(300_000, 7) };
const bundle = writeBundle({ board: 'rpi3b', build: 'b2', version: 1_800_000_000, layout, files, key });
const sha = createHash('sha256').update(bundle).digest('hex');

/** A board root with what init keeps: image.json, /run/nodeos, /proc, a users' partition. */
function board(): ReturnType<typeof boardRoot> {
  const r = boardRoot(layout, { keys: keysJson(key) });
  const at = (p: string): string => join(r.root, p);
  for (const d of ['run/nodeos', 'proc/sys/kernel/random', 'home/.nodeos', 'sys/class/net/eth0', 'sys/class/net/lo']) mkdirSync(at(d), { recursive: true });
  writeFileSync(at('etc/nodeos/image.json'), JSON.stringify({ board: { id: 'rpi3b' }, build: 'b1', layout }));
  writeFileSync(at('proc/meminfo'), 'MemTotal:  948304 kB\nMemFree:  700000 kB\nMemAvailable:  812345 kB\n');
  writeFileSync(at('proc/uptime'), '123.45 100.00\n');
  writeFileSync(at('proc/sys/kernel/random/boot_id'), '0b1c2d3e-aaaa-bbbb-cccc-000000000001\n');
  writeFileSync(at('run/nodeos/apps.json'), JSON.stringify({ logDir: '/home/x', apps: [{ name: 'thermo', source: 'image', state: 'running', restarts: 0 }] }));
  writeFileSync(at('run/nodeos/clock.json'), JSON.stringify({ synced: true, source: 'ntp' }));
  writeFileSync(at('sys/class/net/eth0/address'), 'B8:27:EB:12:34:56\n');
  writeFileSync(at('sys/class/net/lo/address'), '00:00:00:00:00:00\n');
  return r;
}

function system(root: string, host: ReturnType<typeof boardRoot>['host'], installs: string[] = []): LinuxFleetSystem {
  return new LinuxFleetSystem({
    root,
    boardId: 'b827eb123456',
    install: (file) => {
      installs.push(file);
      return updateBoard(file, () => undefined, host);
    },
    reboot: () => assert.fail('not asked'),
    restartApp: () => Promise.resolve(),
  });
}

describe('fleet: the board (Linux FleetSystem)', () => {
  let server: Server;
  let base = '';
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/b2') return void res.writeHead(200, { 'content-length': bundle.length }).end(bundle);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    server.close();
    cleanupTemp();
  });

  it('names the board by its serial, else by its first network card\'s MAC; a serial of zeros or a name a topic cannot hold is not one', () => {
    const { root } = board();
    assert.equal(fleetBoardId(root), 'b827eb123456');
    mkdirSync(join(root, 'proc/device-tree'), { recursive: true });
    writeFileSync(join(root, 'proc/cpuinfo'), 'processor\t: 0\nSerial\t\t: 00000000\n');
    assert.equal(fleetBoardId(root), 'b827eb123456', 'QEMU\'s raspi says 0');
    writeFileSync(join(root, 'proc/device-tree/serial-number'), '10000000abcdef01\0');
    assert.equal(fleetBoardId(root), '10000000abcdef01');
    writeFileSync(join(root, 'proc/device-tree/serial-number'), 'a/b\0');
    assert.equal(fleetBoardId(root), undefined);
    assert.equal(fleetBoardId(tempDir()), undefined);
  });

  it('reports its state from what init and the kernel keep', async () => {
    const { root, host } = board();
    const s = await system(root, host).state();
    assert.deepEqual({ ...s, addresses: undefined, storageFreeMiB: undefined }, {
      board: 'b827eb123456',
      profile: 'rpi3b',
      build: 'b1',
      slot: 'A',
      confirmed: true,
      apps: [{ name: 'thermo', state: 'running', source: 'image' }],
      addresses: undefined,
      clockSynced: true,
      uptimeSeconds: 123,
      bootId: '0b1c2d3e-aaaa-bbbb-cccc-000000000001',
      memAvailableMiB: 793,
      storageFreeMiB: undefined,
    });
    assert.ok(Array.isArray(s.addresses));
    assert.ok(typeof s.storageFreeMiB === 'number' && s.storageFreeMiB > 0);
  });

  it('an update job: downloaded onto /home, installed into slot B by the signed install, the download removed', async () => {
    const { root, host } = board();
    const percents: number[] = [];
    await system(root, host).update({ type: 'update', url: `${base}/b2`, sha256: sha, version: 'b2', size: bundle.length }, (p) => percents.push(p));
    const st = readSlots(decodeEnv(readFileSync(join(root, 'boot', layout.env.file))).vars);
    assert.equal(st.slots.B.build, 'b2');
    assert.deepEqual(st.order, ['B', 'A']);
    assert.equal(Math.round(percents.at(-1)!), 100);
    assert.deepEqual(readdirSync(join(root, 'home/.cache/nodeos')), []);
  });

  it('refuses a bundle that is not the job\'s build, or not its SHA-256, before anything is written', async () => {
    for (const [job, code] of [
      [{ version: 'b9', sha256: sha }, 'EFLEET_JOB'],
      [{ version: 'b2', sha256: 'f'.repeat(64) }, 'EFLEET_CHECKSUM'],
    ] as const) {
      const { root, host } = board();
      const env = readFileSync(join(root, 'boot', layout.env.file));
      const installs: string[] = [];
      await assert.rejects(system(root, host, installs).update({ type: 'update', url: `${base}/b2`, ...job }, () => undefined), (e: Error & { code?: string }) => e.code === code);
      assert.deepEqual(installs, []);
      assert.ok(readFileSync(join(root, 'boot', layout.env.file)).equals(env), 'the environment is as it was');
      assert.ok(readFileSync(join(root, 'dev/mmcblk0p3')).equals(Buffer.alloc(1 << 20, 0xee)), 'slot B is as it was');
    }
  });

  it('refuses an update without a users\' partition (EFLEET_NO_USERS)', async () => {
    const { root, host } = board();
    rmSync(join(root, 'home/.nodeos'), { recursive: true });
    await assert.rejects(system(root, host).update({ type: 'update', url: `${base}/b2`, sha256: sha, version: 'b2' }, () => undefined), (e: Error & { code?: string }) => e.code === 'EFLEET_NO_USERS');
  });
});
