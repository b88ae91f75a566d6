/**
 * Fleets over a real Mosquitto (Debian's, on a loopback port, TLS with a test CA, the ACL
 * `fleet broker-config` makes): board agents (the real FleetAgent over simulated boards) and
 * the controller (readFleet, driveRollout) talk only through it.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { createRollout, driveRollout, encodeJob, JOB_FORMAT, readFleet, readRollouts, signJob, type BrokerClient, type RolloutState } from '../../src/fleet/index.js';
import { getBoard, layoutFor, trustedKey, writeBundle } from '../../src/index.js';
import { HOST_SERVICE_ADDRESS } from '../../src/emulate/index.js';
import { runCli } from '../helpers/cli.js';
import { SimBoard, startSimAgent, type SimAgent } from '../helpers/fleet-sim.js';
import { startBroker, type TestBroker } from '../helpers/mosquitto.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

/** Ask again until `fn` gives a value (the broker and the agents take their time). */
async function eventually<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const FLEET = 'greenhouse';
const fleetKey = generateKeyPairSync('ed25519').privateKey;
const strangerKey = generateKeyPairSync('ed25519').privateKey;
const SHA = 'c'.repeat(64);
const BOARDS = [
  { board: '10000000000000a1', groups: ['west'] },
  { board: '10000000000000b2', groups: ['west'] },
  { board: '10000000000000c3', groups: ['east'] },
];

describe('fleets over a real Mosquitto on loopback (TLS, ACL from fleet broker-config)', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let agents: SimAgent[] = [];
  const clients: mqtt.MqttClient[] = [];

  const connect = async (user: string, password = broker.password(user)): Promise<mqtt.MqttClient> => {
    const c = mqtt.connect(broker.url, { ca: broker.ca, username: user, password, reconnectPeriod: 0, protocolVersion: 5, clientId: `${user}-${clients.length}` });
    clients.push(c);
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    return c;
  };
  const board = (i: number): SimAgent => agents[i]!;

  before(async () => {
    broker = await startBroker(tempDir(), FLEET, BOARDS);
    agents = BOARDS.map((b) =>
      startSimAgent({ url: broker.url, ca: broker.ca, fleet: FLEET, board: new SimBoard(b.board, 'build-1', new Set(['build-3'])), groups: b.groups, trusted: [trustedKey(fleetKey)], password: broker.password(b.board) }),
    );
    await until(() => agents.every((a) => a.agent().counts.connects > 0), 'every agent connected', 20_000);
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    for (const c of clients) c.end(true);
    await broker?.stop();
    cleanupTemp();
  });

  it('fleet status: every board, online, with its build, slot and groups', async () => {
    const c = await connect('controller');
    const rows = await eventually(async () => {
      const r = await readFleet(c as unknown as BrokerClient, FLEET, { settleMs: 300 });
      return r.length === 3 && r.every((x) => x.state && x.online) ? r : undefined;
    }, 20_000, 'three boards in the fleet');
    assert.deepEqual(rows.map((r) => [r.board, r.online, r.state!.build, r.state!.slot, r.state!.groups.join()]), [
      ['10000000000000a1', true, 'build-1', 'A', 'west'],
      ['10000000000000b2', true, 'build-1', 'A', 'west'],
      ['10000000000000c3', true, 'build-1', 'A', 'east'],
    ]);
  });

  const rollout = async (id: string, build: string, group = 'west'): Promise<RolloutState> => {
    const c = await connect('controller');
    const rows = await readFleet(c as unknown as BrokerClient, FLEET, { settleMs: 300 });
    const boards = rows.filter((r) => r.state?.groups.includes(group)).map((r) => r.board);
    const state = createRollout({ id, fleet: FLEET, group, boards, action: { type: 'update', version: build }, options: { canary: 1, ratePerMinute: 600, timeoutMs: 30_000 }, now: Date.now() });
    return driveRollout({ client: c as unknown as BrokerClient, key: fleetKey, state, action: { type: 'update', url: `https://127.0.0.1:9/${build}.nodeos-update`, sha256: SHA, version: build } });
  };

  it('a rollout of build 2 to the west group updates the canary, then the other board; the east board is not touched', async () => {
    const s = await rollout('r-build-2', 'build-2');
    assert.equal(s.phase, 'finished');
    assert.deepEqual(s.boards.map((b) => [b.board, b.state]), [
      ['10000000000000a1', 'succeeded'],
      ['10000000000000b2', 'succeeded'],
    ]);
    assert.ok(s.boards[1]!.releasedAt! >= s.boards[0]!.updatedAt!, 'the second board got its job after the canary succeeded');
    assert.deepEqual(agents.map((a) => [a.board.build, a.board.slot]), [['build-2', 'B'], ['build-2', 'B'], ['build-1', 'A']]);
    assert.equal(board(2).board.updates, 0);
  });

  it('a crash-looping build 3 fails on the canary (it fell back) and never reaches the second board', async () => {
    const before = board(1).board.updates;
    const s = await rollout('r-build-3', 'build-3');
    assert.equal(s.phase, 'aborted');
    assert.equal(s.boards[0]!.state, 'failed');
    assert.match(s.boards[0]!.reason!, /build build-3 did not come up: U-Boot fell back to build build-2/);
    assert.equal(s.boards[1]!.state, 'pending');
    assert.equal(board(1).board.updates, before, 'the second board downloaded nothing');
    assert.equal(board(0).board.build, 'build-2');
    // The rollout's state is kept on the broker, for fleet rollouts and --resume.
    const c = await connect('controller');
    const kept = (await readRollouts(c as unknown as BrokerClient, FLEET, { settleMs: 300 })).find((r) => r.id === 'r-build-3');
    assert.equal(kept?.phase, 'aborted');
  });

  it('a job signed by another key is rejected by both boards of the group, and reported', async () => {
    const c = await connect('controller');
    const job = signJob({ format: JOB_FORMAT, id: 'forged-1', fleet: FLEET, target: { group: 'west' }, issuedAt: Date.now(), expiresAt: Date.now() + 600_000, action: { type: 'reboot' } }, strangerKey);
    const boots = [board(0).board.bootId, board(1).board.bootId];
    c.publish(`nodeos/${FLEET}/group/west/jobs`, encodeJob(job).toString(), { qos: 1 });
    const rows = await eventually(async () => {
      const r = await readFleet(c as unknown as BrokerClient, FLEET, { settleMs: 300 });
      const west = r.filter((x) => x.state?.groups.includes('west'));
      return west.every((x) => x.progress?.state === 'rejected') ? west : undefined;
    }, 20_000, 'both west boards reported the job rejected');
    for (const r of rows) {
      assert.equal(r.progress!.code, 'EFLEET_JOB_SIGNATURE');
      assert.match(r.progress!.reason!, /which this board does not trust/);
    }
    assert.deepEqual([board(0).board.bootId, board(1).board.bootId], boots, 'neither rebooted');
  });

  it("the broker's ACL refuses board 1 publishing as board 2, and reading board 2's jobs", async () => {
    const c = await connect('controller');
    const a = await connect(BOARDS[0]!.board);
    const forged = JSON.stringify({ board: BOARDS[1]!.board, profile: 'x', build: 'forged', slot: 'A', confirmed: true });
    const err = await new Promise<Error | undefined>((r) => a.publish(`nodeos/${FLEET}/${BOARDS[1]!.board}/state`, forged, { qos: 1, retain: true }, (e) => r(e ?? undefined)));
    assert.match(String(err), /Not authorized|135/, 'MQTT 5: the PUBACK says not authorized');
    const rows = await readFleet(c as unknown as BrokerClient, FLEET, { settleMs: 300 });
    assert.equal(rows.find((r) => r.board === BOARDS[1]!.board)!.state!.build, 'build-2', 'the forged state never reached anyone');
    // Mosquitto grants subscriptions and filters on delivery: what board 1 receives is the proof.
    const got: string[] = [];
    a.on('message', (topic) => got.push(topic));
    const topics = [`nodeos/${FLEET}/${BOARDS[1]!.board}/jobs`, `nodeos/${FLEET}/group/east/jobs`, `nodeos/${FLEET}/${BOARDS[0]!.board}/jobs`];
    await new Promise((r, j) => a.subscribe(topics, { qos: 1 }, (e) => (e ? j(e) : r(undefined))));
    for (const t of topics) await new Promise((r) => c.publish(t, 'not a job', { qos: 1 }, r));
    await until(() => got.length > 0, 'board 1 receives its own jobs (the check works)', 5000);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(got, [topics[2]], "only board 1's own jobs reached it");
  });

  it('a client without the CA pinned, or with a wrong password, is refused', async () => {
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const c = mqtt.connect(broker.url, { username: 'controller', password: broker.password('controller'), reconnectPeriod: 0, connectTimeout: 5000 });
        clients.push(c);
        c.once('connect', () => resolve());
        c.once('error', reject);
      }),
      /self.signed|unable to verify|certificate/i,
    );
    await assert.rejects(connect('controller', 'wrong'), /Not authorized|Bad User Name or Password|135|134/);
  });

  describe('the fleet CLI against the same broker', () => {
    let server: Server;
    let dir: string;
    let bundle: Buffer;
    const flags = (): string[] => ['--broker', broker.url, '--fleet', FLEET, '--ca', join(broker.dir, 'ca-ca.pem'), '--password-file', join(dir, 'controller.pw')];

    before(async () => {
      dir = tempDir();
      writeFileSync(join(dir, 'controller.pw'), `${broker.password('controller')}\n`);
      writeFileSync(join(dir, 'fleet.key'), fleetKey.export({ type: 'pkcs8', format: 'pem' }));
      // A signed bundle whose build is build-4 (the simulated boards are qemu-virt ones).
      const layout = layoutFor(getBoard('qemu-virt').profile, 0x01020304);
      bundle = writeBundle({ board: 'qemu-virt', build: 'build-4', layout, files: { kernel: Buffer.from('k'), initramfs: Buffer.from('i'), system: Buffer.alloc(4096, 7) }, key: fleetKey });
      server = createServer((req, res) => (req.url === '/b4.nodeos-update' ? res.end(bundle) : res.writeHead(404).end()));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    });
    after(() => server?.close());

    it('fleet status prints every board; --group and --json narrow and shape it', async () => {
      const r = await runCli('fleet', 'status', ...flags());
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^BOARD +ONLINE +PROFILE +BUILD +SLOT +CONFIRMED +LAST JOB +APPS +SEEN/);
      assert.match(r.out, /10000000000000c3 +yes +qemu-virt +build-1 +A +yes/);
      const j = await runCli('fleet', 'status', ...flags(), '--group', 'east', '--json');
      assert.deepEqual((JSON.parse(j.out) as { board: string }[]).map((x) => x.board), ['10000000000000c3']);
    });

    it('fleet update downloads the bundle to take its SHA-256 and build, rolls it out, and fleet rollouts lists it', async () => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/b4.nodeos-update`;
      const r = await runCli('fleet', 'update', url, '--group', 'east', '--key', join(dir, 'fleet.key'), '--json', ...flags());
      assert.equal(r.code, 0, r.err);
      const s = JSON.parse(r.out) as RolloutState;
      assert.equal(s.phase, 'finished');
      assert.deepEqual(s.action, { type: 'update', url, sha256: createHash('sha256').update(bundle).digest('hex'), version: 'build-4', size: bundle.length });
      assert.equal(board(2).board.build, 'build-4');
      // The controller cleared the board's retained job once it ended; that is no job to refuse.
      await new Promise((r) => setTimeout(r, 500));
      const rows = await readFleet((await connect('controller')) as unknown as BrokerClient, FLEET, { settleMs: 300 });
      assert.deepEqual([rows[2]!.progress?.job, rows[2]!.progress?.state], [`${s.id}.0`, 'succeeded']);
      const list = await runCli('fleet', 'rollouts', ...flags());
      assert.match(list.out, new RegExp(`${s.id} +finished +build build-4 to group east: 1 succeeded, 0 failed`));
      // A URL only the boards reach (an emulated board's 10.0.2.100): checked from the file served there, never fetched here.
      const only = `http://${HOST_SERVICE_ADDRESS}/b4.nodeos-update`;
      writeFileSync(join(dir, 'b4.nodeos-update'), bundle);
      const f = await runCli('fleet', 'update', only, '--bundle', join(dir, 'b4.nodeos-update'), '--group', 'east', '--key', join(dir, 'fleet.key'), '--json', ...flags());
      assert.equal(f.code, 0, f.err);
      assert.deepEqual((JSON.parse(f.out) as RolloutState).action, { type: 'update', url: only, sha256: createHash('sha256').update(bundle).digest('hex'), version: 'build-4', size: bundle.length });
      const resumeWithFile = await runCli('fleet', 'update', '--resume', s.id, '--bundle', join(dir, 'b4.nodeos-update'), '--key', join(dir, 'fleet.key'), ...flags());
      assert.match(resumeWithFile.err, /--resume ROLLOUT-ID alone .*\[EUSAGE\]/);
    });

    it('fleet reboot and fleet restart-app: signed jobs to a board or a group, each board\'s report printed', async () => {
      const boot = board(2).board.bootId;
      const r = await runCli('fleet', 'reboot', '--board', BOARDS[2]!.board, '--key', join(dir, 'fleet.key'), '--wait', '20', ...flags());
      assert.equal(r.code, 0, r.err + r.out);
      assert.match(r.out, /10000000000000c3 +succeeded/);
      assert.notEqual(board(2).board.bootId, boot, 'it restarted');
      const g = await runCli('fleet', 'restart-app', 'sensor', '--group', 'west', '--key', join(dir, 'fleet.key'), '--wait', '20', '--json', ...flags());
      assert.deepEqual((JSON.parse(g.out) as { boards: { board: string; state: string }[] }).boards.map((b) => [b.board, b.state]), [
        ['10000000000000a1', 'succeeded'],
        ['10000000000000b2', 'succeeded'],
      ]);
      const bad = await runCli('fleet', 'restart-app', 'nope', '--board', BOARDS[0]!.board, '--key', join(dir, 'fleet.key'), '--wait', '20', ...flags());
      assert.equal(bad.code, 1);
      assert.match(bad.out, /10000000000000a1 +failed: no app nope/);
      const slash = await runCli('fleet', 'restart-app', 'a/b', '--board', BOARDS[0]!.board, '--key', join(dir, 'fleet.key'), ...flags());
      assert.match(slash.err, /fleet jobs name apps with .* \[EUSAGE\]/);
    });

    it('refusals say what to do: a plain mqtt:// broker elsewhere, a wrong password, a missing bundle, no rollout to resume', async () => {
      const plain = await runCli('fleet', 'status', ...flags().map((f) => (f === broker.url ? 'mqtt://broker.example.test:1883' : f)));
      assert.match(plain.err, /use mqtts:\/\/ \(TLS\); plain mqtt:\/\/ only to a broker on this machine \[EUSAGE\]/);
      writeFileSync(join(dir, 'wrong.pw'), 'nope');
      const bad = await runCli('fleet', 'status', ...flags().map((f) => (f.endsWith('controller.pw') ? join(dir, 'wrong.pw') : f)));
      assert.match(bad.err, /Not authorized \(check --broker, --ca, --user and --password-file\) \[EFLEET_BROKER\]/);
      const missing = await runCli('fleet', 'update', `http://127.0.0.1:${(server.address() as AddressInfo).port}/nope`, '--group', 'east', '--key', join(dir, 'fleet.key'), ...flags());
      assert.match(missing.err, /HTTP 404: the boards must be able to download the bundle from there \[EFLEET_BUNDLE\]/);
      const resume = await runCli('fleet', 'update', '--resume', 'r-none', '--key', join(dir, 'fleet.key'), ...flags());
      assert.match(resume.err, /keeps no rollout r-none .* \[EFLEET_ROLLOUT\]/);
    });

    it('fleet broker-config writes the config and ACL this suite\'s broker runs with', async () => {
      writeFileSync(join(dir, 'boards.json'), JSON.stringify(BOARDS));
      const r = await runCli('fleet', 'broker-config', '--fleet', FLEET, '--boards', join(dir, 'boards.json'), '--out', join(dir, 'conf'));
      assert.equal(r.code, 0, r.err);
      const acl = readFileSync(join(dir, 'conf', 'acl'), 'utf8');
      assert.equal(acl, readFileSync(join(broker.dir, 'acl'), 'utf8').replace(join(broker.dir, 'acl'), join(dir, 'conf', 'acl')));
      assert.match(readFileSync(join(dir, 'conf', 'mosquitto.conf'), 'utf8'), /^allow_anonymous false$/m);
      const bad = await runCli('fleet', 'broker-config', '--fleet', FLEET, '--boards', join(dir, 'controller.pw'), '--out', join(dir, 'conf2'));
      assert.match(bad.err, /\[EUSAGE\]/);
    });
  });
});
