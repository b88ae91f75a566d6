/**
 * `BENCH_ONLY=fleet npm run bench`: a simulated fleet on one Mosquitto. BENCH_FLEET boards
 * (default 1000; the real FleetAgent over simulated boards, in 4 worker processes) connect
 * over TLS; the controller reads the fleet, then rolls out a build that 3 % of the boards
 * (chosen by a fixed hash) cannot boot (they fall back), with canary 10, rate 200/min and an
 * abort threshold of 2 %: it must stop at the threshold. Reports messages per board, the
 * controller's CPU and memory, and the broker's connections.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';
import { createRollout, driveRollout, failedBoards, readFleet, rolloutCounts, type BrokerClient } from '../../src/fleet/index.js';
import { trustedKey } from '../../src/update/index.js';
import { startBroker } from '../helpers/mosquitto.js';

const WORKERS = 4;

export async function fleetBench(dir: string): Promise<void> {
  const n = Number(process.env.BENCH_FLEET ?? 1000);
  const fleet = 'bench';
  const key = generateKeyPairSync('ed25519').privateKey;
  const ids = Array.from({ length: n }, (_, i) => `1000000000${i.toString(16).padStart(6, '0')}`);
  // 3 % of the boards crash-loop on the new build, spread by a hash (not the first ones, not every 33rd).
  const crashes = (id: string): boolean => createHash('sha256').update(id).digest().readUInt16BE(0) % 100 < 3;
  const broker = await startBroker(dir, fleet, ids.map((board) => ({ board, groups: ['all'] })), { verbose: false });
  const workers: ChildProcess[] = [];
  const outputs: string[] = [];
  try {
    const t0 = performance.now();
    for (let w = 0; w < WORKERS; w++) {
      const slice = ids.filter((_, i) => i % WORKERS === w);
      const spec = join(dir, `worker-${w}.json`);
      writeFileSync(spec, JSON.stringify({ url: broker.url, ca: broker.ca.toString(), fleet, trusted: [trustedKey(key)], badBuild: 'build-2', boards: slice.map((board) => ({ board, password: broker.password(board), crashLoops: crashes(board) })) }));
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fleet-worker.mts'), spec], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', () => outputs.push(out));
      workers.push(child);
    }
    const client = mqtt.connect(broker.url, { ca: broker.ca, username: 'controller', password: broker.password('controller'), reconnectPeriod: 0, protocolVersion: 5 });
    await new Promise<void>((r, j) => (client.once('connect', () => r()), client.once('error', j)));
    const c = client as unknown as BrokerClient;
    // Wait until every board's state is on the broker.
    let rows = await readFleet(c, fleet, { settleMs: 500 });
    for (let tries = 0; rows.filter((r) => r.state && r.online).length < n && tries < 120; tries++) {
      await new Promise((r) => setTimeout(r, 1000));
      rows = await readFleet(c, fleet, { settleMs: 500 });
    }
    const connectedS = (performance.now() - t0) / 1000;
    const connections = Number(execFileSync('sh', ['-c', `ss -Htn state established '( sport = :${broker.port} )' | wc -l`]).toString().trim());
    const statusT = performance.now();
    const status = await readFleet(c, fleet, { settleMs: 500 });
    const statusS = (performance.now() - statusT) / 1000;

    const cpu0 = process.cpuUsage();
    const mem0 = process.memoryUsage().rss;
    const t1 = performance.now();
    const state = createRollout({ id: 'r-bench', fleet, group: 'all', boards: status.filter((r) => r.state?.groups.includes('all')).map((r) => r.board), action: { type: 'update', version: 'build-2' }, options: { canary: 10, ratePerMinute: 200, abortFailedPercent: 2, minFinished: 20, timeoutMs: 5 * 60_000 }, now: Date.now() });
    const final = await driveRollout({ client: c, key, state, action: { type: 'update', url: 'https://127.0.0.1:9/b2.nodeos-update', sha256: 'b'.repeat(64), version: 'build-2' } });
    const rolloutS = (performance.now() - t1) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const rssMiB = process.memoryUsage().rss / 1048576;
    client.end(true);

    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(undefined) : w.once('exit', r)))));
    const totals = outputs.map((o) => JSON.parse(o.trim().split('\n').at(-1)!) as { boards: number; connects: number; published: number; received: number });
    const sum = (k: 'published' | 'received' | 'connects'): number => totals.reduce((a, t) => a + t[k], 0);
    const counts = rolloutCounts(final);
    const failed = failedBoards(final);
    console.log(`\nfleet: ${n} simulated boards (the real agent, ${WORKERS} processes) on one Mosquitto (${spawnSync('mosquitto', ['-h']).stdout.toString().split('\n')[0]}), TLS, ACL`);
    console.log(`  all connected and their states retained after ${connectedS.toFixed(1)} s; broker connections ${connections}; fleet status read ${status.length} boards in ${statusS.toFixed(1)} s`);
    console.log(`  rollout (canary 10, 200/min, abort over 2 %): ${final.phase} after ${rolloutS.toFixed(1)} s — ${final.reason ?? 'no reason'}`);
    console.log(`    released ${counts.released} of ${counts.total}: ${counts.succeeded} succeeded, ${counts.failed} failed (${failed.slice(0, 3).map((b) => `${b.board}: ${b.reason}`).join('; ')}${failed.length > 3 ? '; ...' : ''})`);
    console.log(`    boards that would have crash-looped: ${ids.filter(crashes).length} of ${n} (${((ids.filter(crashes).length * 100) / n).toFixed(1)} %)`);
    console.log(`  messages per board: ${(sum('published') / n).toFixed(1)} published, ${(sum('received') / n).toFixed(1)} received, ${(sum('connects') / n).toFixed(2)} connections (a reboot is a new one)`);
    console.log(`  controller during the rollout: ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s CPU, RSS ${rssMiB.toFixed(0)} MiB (${((process.memoryUsage().rss - mem0) / 1048576).toFixed(0)} MiB more than before)`);
  } finally {
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    await broker.stop();
  }
}
