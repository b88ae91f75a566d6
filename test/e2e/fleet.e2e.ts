/**
 * Fleets end to end: two emulated qemu-virt boards (through U-Boot, each with its own MAC, so
 * its own board id) flashed with `flash --fleet ...`, reaching a Mosquitto the test starts
 * on this machine's loopback (TLS with a test CA, the ACL `fleet broker-config` makes)
 * through `emulate`'s restricted network: the board's 10.0.2.100:8883 is the broker,
 * 10.0.2.100:80 a loopback HTTP server holding the bundles (and the time, for TLS).
 *
 * - both boards report to `fleet status` (online, build 1, slot A, confirmed);
 * - a reboot job signed by another key is rejected by both, and neither reboots;
 * - `fleet update` of build 2 updates the canary (download, signed install, reboot,
 *   confirmed), and only then the other board;
 * - `fleet update` of build 3, whose app crash-loops, fails on the canary (the new system is
 *   not confirmed; after bootlimit tries U-Boot is back on build 2 and the board reports
 *   failed) and never reaches the second board;
 * - the broker refuses board 1 publishing as board 2 (with board 1's own password).
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { createKeyPair, getBoard, HOST_SERVICE_ADDRESS, packageRoot, prepareEmulation, startEmulation, type BuildManifest } from '../../src/index.js';
import type { BoardRow, RolloutState } from '../../src/fleet/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { startBroker, type TestBroker } from '../helpers/mosquitto.js';
import { crashingApp, signedBuild } from '../helpers/signed-build.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const BOARD = 'qemu-virt';
const FLEET = 'e2e';
const GROUP = 'lab';
const MACS = ['52:54:00:f1:ee:01', '52:54:00:f1:ee:02'];
/** A qemu-virt has no serial number: its board id is its MAC's 12 hex digits. */
const IDS = MACS.map((m) => m.replace(/:/g, ''));
const PROMPT = /\n> $/;
const BOOT_MS = 300_000;

const exited = (child: ChildProcess): Promise<void> => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r())));

/** Wait for a line init printed in the background (Console keeps those in `messages`). */
async function said(c: Console, re: RegExp, ms: number, from = 0): Promise<void> {
  await until(() => c.messages.slice(from).some((m) => re.test(m)), `${re} (messages: ${c.messages.slice(from).join(' | ').slice(-3000)}; console: ${c.printed.slice(-3000)})`, ms);
}

describe('fleets end to end (two emulated qemu-virt boards, Mosquitto on loopback)', () => {
  const consoles: Console[] = [];
  let broker: TestBroker | undefined;
  let http: Server | undefined;
  // What each board printed, kept in out/e2e-fleet/board<N>.log as it goes (the test runs long; a reader can follow it).
  const dump = (): void => consoles.forEach((c, i) => writeFileSync(join(packageRoot(), 'out', 'e2e-fleet', `board${i + 1}.log`), c.printed));
  let dumping: NodeJS.Timeout | undefined;
  after(async () => {
    clearInterval(dumping);
    for (const c of consoles) {
      c.stop();
      await exited(c.child);
    }
    dump();
    http?.close();
    await broker?.stop();
    cleanupTemp();
  });

  it('status shows both; a job of another key is rejected by both; build 2 reaches the canary, then the other; a crash-looping build 3 fails on the canary only; the ACL holds', async function () {
    this.timeout(2_400_000);
    const dir = tempDir();
    const out = join(packageRoot(), 'out', 'e2e-fleet');
    const keys = join(dir, 'keys');
    const update = createKeyPair(keys);
    const fleetKey = createKeyPair(keys, 'nodeos-fleet');
    const stranger = createKeyPair(keys, 'stranger');

    // Build 1 (on the cards), build 2 and build 3 (its app exits at once), all signed by the update key.
    const builds: BuildManifest[] = [];
    for (const [i, more] of [[], [], ['--app', crashingApp(dir)]].entries()) builds.push(await signedBuild(BOARD, join(out, String(i + 1)), 1_764_000_000 + i * 100_000, update.privateKey, more));
    const [m1, m2, m3] = builds as [BuildManifest, BuildManifest, BuildManifest];
    const bundle = (n: number): string => join(out, String(n), `nodeos-${BOARD}.nodeos-update`);

    // A folder of its own: Mosquitto runs as its own user, and the test's folder is root's only.
    broker = await startBroker(tempDir(), FLEET, IDS.map((board) => ({ board, groups: [GROUP] })), { verbose: false });
    const b = broker;
    const files: Record<string, Buffer> = { '/b2': readFileSync(bundle(2)), '/b3': readFileSync(bundle(3)) };
    http = createServer((req, res) => {
      const f = files[req.url ?? ''];
      // Every answer carries a Date: the board's clock is set from it (nodeos.timeurl), so it can check the broker's certificate.
      if (!f) return void res.writeHead(req.url === '/' ? 200 : 404).end();
      res.writeHead(200, { 'content-length': f.length }).end(f);
    });
    await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
    const httpPort = (http.address() as { port: number }).port;
    const controllerPw = join(dir, 'controller.pw');
    writeFileSync(controllerPw, `${b.password('controller')}\n`);
    const flags = ['--broker', b.url, '--fleet', FLEET, '--ca', join(b.dir, 'ca-ca.pem'), '--password-file', controllerPw];

    // Each card: build 1 flashed onto a 1 GiB file with the fleet setting and the board's own password.
    const cards = IDS.map((id, i) => {
      const card = join(dir, `card${i + 1}.raw`);
      execFileSync('truncate', ['-s', '1G', card]);
      const pw = join(dir, `${id}.pw`);
      writeFileSync(pw, `${b.password(id)}\n`);
      return { card, pw };
    });
    for (const { card, pw } of cards) {
      const f = await runCli('flash', join(out, '1', `nodeos-${BOARD}.img`), '-d', card, '--force-file', '--yes', '--json', '--cmdline', `nodeos.timeurl=http://${HOST_SERVICE_ADDRESS}/`, '--fleet', `mqtts://${HOST_SERVICE_ADDRESS}:8883`, '--fleet-name', FLEET, '--fleet-group', GROUP, '--fleet-ca', join(b.dir, 'ca-ca.pem'), '--fleet-key', fleetKey.publicKey, '--fleet-credentials', pw);
      assert.equal(f.code, 0, f.err);
      assert.ok(!f.out.includes(readFileSync(pw, 'utf8').trim()) && !f.err.includes(readFileSync(pw, 'utf8').trim()), 'the password is never printed');
      const shown = await runCli('settings', 'show', card, '--json');
      assert.deepEqual(JSON.parse(shown.out).fleet.groups, [GROUP]);
      assert.equal(JSON.parse(shown.out).fleet.password, 'set');
    }

    // Both boards at once, each on its own card and MAC.
    const profile = getBoard(BOARD).profile;
    for (const [i, { card }] of cards.entries()) {
      const e = prepareEmulation(card, profile, { net: { services: [{ board: 8883, host: b.port }, { board: 80, host: httpPort }], mac: MACS[i]! } });
      consoles.push(new Console(startEmulation(e, 'pipe')));
    }
    dumping = setInterval(dump, 5000);
    const t0 = Date.now();
    await Promise.all(consoles.map((c) => c.waitFor(PROMPT, BOOT_MS, 0)));
    for (const c of consoles) assert.match(c.output, /nodeos: after the prompt: .*the fleet agent \(e2e\)/);
    await Promise.all(consoles.map((c) => said(c, /nodeos: fleet: connected to the broker/, BOOT_MS)));
    console.log(`      both boards connected ${((Date.now() - t0) / 1000).toFixed(0)} s after their QEMU started`);
    // The password left the card at the first boot.
    for (const c of consoles) assert.match(c.printed, /nodeos: fleet: the broker password moved from the card to the users' partition/);

    const status = async (): Promise<BoardRow[]> => {
      const r = await runCli('fleet', 'status', ...flags, '--json');
      assert.equal(r.code, 0, r.err);
      return JSON.parse(r.out) as BoardRow[];
    };
    const row = (rows: BoardRow[], id: string): BoardRow => rows.find((r) => r.board === id)!;
    let rows = await status();
    for (const end = Date.now() + 60_000; rows.filter((r) => r.online && r.state?.build === m1.build).length < 2; rows = await status()) {
      if (Date.now() > end) assert.fail(`both boards in fleet status with build 1: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (const id of IDS) assert.deepEqual([row(rows, id).state!.profile, row(rows, id).state!.slot, row(rows, id).state!.confirmed, row(rows, id).state!.groups], [BOARD, 'A', true, [GROUP]]);
    const boots = IDS.map((id) => row(rows, id).state!.bootId);

    // A reboot job signed by a key the boards do not trust: both refuse it and say why.
    const forged = await runCli('fleet', 'reboot', '--group', GROUP, '--key', stranger.privateKey, '--wait', '60', ...flags);
    assert.equal(forged.code, 1, forged.err);
    for (const id of IDS) assert.match(forged.out, new RegExp(`${id} +rejected: the job is signed by ${stranger.id.replace(/[+/]/g, '.')}, which this board does not trust`));

    // Build 2: the canary first, then the other board.
    const r2 = await runCli('fleet', 'update', `http://${HOST_SERVICE_ADDRESS}/b2`, '--bundle', bundle(2), '--group', GROUP, '--canary', '1', '--rate', '60', '--timeout', '20', '--key', fleetKey.privateKey, '--json', ...flags);
    assert.equal(r2.code, 0, r2.err);
    const s2 = JSON.parse(r2.out) as RolloutState;
    assert.equal(s2.phase, 'finished');
    assert.deepEqual(s2.boards.map((x) => x.state), ['succeeded', 'succeeded']);
    const [canary, second] = s2.boards as [RolloutState['boards'][0], RolloutState['boards'][0]];
    assert.ok(second.releasedAt! >= canary.updatedAt!, 'the second board started only once the canary had succeeded');
    rows = await status();
    for (const id of IDS) assert.deepEqual([row(rows, id).state!.build, row(rows, id).state!.slot, row(rows, id).state!.confirmed], [m2.build, 'B', true], id);
    assert.ok(IDS.every((id, i) => row(rows, id).state!.bootId !== boots[i]), 'both rebooted into build 2');
    assert.equal(forged.out.includes(m2.build), false);

    // Build 3: its app crash-loops; the canary falls back to build 2 and reports it; the other board is never asked.
    const c3 = IDS.indexOf(canary.board);
    const from = consoles[c3]!.messages.length;
    const r3 = await runCli('fleet', 'update', `http://${HOST_SERVICE_ADDRESS}/b3`, '--bundle', bundle(3), '--group', GROUP, '--canary', '1', '--timeout', '25', '--key', fleetKey.privateKey, '--json', ...flags);
    assert.equal(r3.code, 1, r3.err);
    const s3 = JSON.parse(r3.out) as RolloutState;
    assert.equal(s3.phase, 'aborted');
    assert.equal(s3.boards[0]!.board, canary.board, 'the same canary');
    assert.equal(s3.boards[0]!.state, 'failed');
    assert.match(s3.boards[0]!.reason!, new RegExp(`build ${m3.build} did not come up: U-Boot fell back to build ${m2.build}`));
    assert.equal(s3.boards[1]!.releasedAt, undefined, 'the second board was never sent build 3');
    assert.ok(consoles[c3]!.messages.slice(from).some((m) => new RegExp(`app crasher crash-loops on this new system \\(build ${m3.build}\\)`).test(m)));
    rows = await status();
    for (const id of IDS) assert.deepEqual([row(rows, id).state!.build, row(rows, id).state!.confirmed], [m2.build, true], id);
    assert.deepEqual(row(rows, canary.board).state!.lastFailedUpdate, { slot: 'A', build: m3.build }, 'fleet status shows the update that fell back');

    // The broker's ACL: board 1, logged in with its own password, cannot publish as board 2.
    const [one, two] = IDS as [string, string];
    const client = mqtt.connect(b.url, { ca: b.ca, username: one, password: b.password(one), reconnectPeriod: 0, protocolVersion: 5, clientId: `e2e-acl-${one}` });
    try {
      await new Promise<void>((resolve, reject) => (client.once('connect', () => resolve()), client.once('error', reject)));
      const err = await new Promise<Error | undefined>((r) => client.publish(`nodeos/${FLEET}/${two}/state`, '{"board":"forged"}', { qos: 1, retain: true }, (e) => r(e ?? undefined)));
      assert.match(String(err), /Not authorized|135/);
    } finally {
      client.end(true);
    }
    assert.equal(row(await status(), two).state!.build, m2.build, 'board 2\'s state is its own');
  });
});
