/** The board's fleet agent over a fake broker and a fake clock: reconnecting, its will and state, jobs across a reboot. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { encodeJob, FleetAgent, JOB_FORMAT, signJob, type BoardState, type BrokerClient, type FleetSystem, type Will } from '../../src/fleet/index.js';
import { trustedKey } from '../../src/update/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryJobStore } from '../helpers/fleet-sim.js';

const fleetKey = generateKeyPairSync('ed25519').privateKey;

/** A broker connection the test drives: it records what the agent publishes and subscribes. */
class FakeConnection extends EventEmitter implements BrokerClient {
  published: { topic: string; payload: string; retain: boolean }[] = [];
  subscribed: string[] = [];
  ended = false;
  constructor(readonly will: Will) {
    super();
  }
  publish(topic: string, payload: string, opts: { retain: boolean }, cb?: (err?: Error) => void): this {
    this.published.push({ topic, payload, retain: opts.retain });
    cb?.();
    return this;
  }
  subscribe(topics: string[], _opts: object, cb?: (err: Error | null) => void): this {
    this.subscribed.push(...topics);
    cb?.(null);
    return this;
  }
  end(_force?: boolean, _opts?: object, cb?: () => void): this {
    this.ended = true;
    cb?.();
    return this;
  }
}

class System implements FleetSystem {
  build = 'b1';
  confirmed = true;
  bootId = 'boot-1';
  rebooted = 0;
  async state(): Promise<Omit<BoardState, 'groups' | 'lastJob' | 'at'>> {
    return { board: 'b', profile: 'rpi3b', build: this.build, slot: 'A', confirmed: this.confirmed, apps: [], addresses: [], clockSynced: true, uptimeSeconds: 5, bootId: this.bootId, memAvailableMiB: 300 };
  }
  async update(): Promise<void> {}
  reboot(): void {
    this.rebooted++;
  }
  async restartApp(): Promise<void> {}
}

function setup(o: { store?: MemoryJobStore; system?: System } = {}): { agent: FleetAgent; clock: FakeClock; conns: FakeConnection[]; system: System; store: MemoryJobStore; logs: string[] } {
  const clock = new FakeClock();
  const conns: FakeConnection[] = [];
  const system = o.system ?? new System();
  const store = o.store ?? new MemoryJobStore();
  const logs: string[] = [];
  const agent = new FleetAgent({
    fleet: 'f',
    board: '10000000abcdef01',
    groups: ['west'],
    trusted: [trustedKey(fleetKey)],
    connect: (will) => {
      const c = new FakeConnection(will);
      conns.push(c);
      return c;
    },
    system,
    store,
    log: (l) => logs.push(l),
    syncedNow: () => 1_800_000_000_000 + clock.now(),
    now: () => clock.now(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    clearTimeout: (h) => clock.clearTimeout(h),
    stateEveryMs: 60_000,
    random: () => 0,
  });
  return { agent, clock, conns, system, store, logs };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('fleet agent', () => {
  it('connects with an offline will, subscribes to its own and its groups\' jobs, says online and publishes its state retained', async () => {
    const { agent, conns } = setup();
    agent.start();
    const c = conns[0]!;
    assert.deepEqual(c.will, { topic: 'nodeos/f/10000000abcdef01/online', payload: 'offline', qos: 1, retain: true });
    c.emit('connect');
    await flush();
    assert.deepEqual(c.subscribed, ['nodeos/f/10000000abcdef01/jobs', 'nodeos/f/group/west/jobs']);
    assert.deepEqual(c.published[0], { topic: 'nodeos/f/10000000abcdef01/online', payload: 'online', retain: true });
    const state = JSON.parse(c.published[1]!.payload) as BoardState;
    assert.equal(c.published[1]!.topic, 'nodeos/f/10000000abcdef01/state');
    assert.equal(c.published[1]!.retain, true);
    assert.deepEqual([state.board, state.build, state.groups], ['10000000abcdef01', 'b1', ['west']]);
  });

  it('republishes its state every stateEveryMs while connected', async () => {
    const { agent, conns, clock } = setup();
    agent.start();
    conns[0]!.emit('connect');
    await flush();
    const states = (): number => conns[0]!.published.filter((p) => p.topic.endsWith('/state')).length;
    assert.equal(states(), 1);
    clock.advance(60_000);
    await flush();
    clock.advance(60_000);
    await flush();
    assert.equal(states(), 3);
  });

  it('a lost or refused connection is retried after 0.5, 1, 2, 4 s...; a connection that succeeds starts the count again', async () => {
    const { agent, conns, clock } = setup();
    agent.start();
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      conns.at(-1)!.emit('close');
      waits.push(clock.nextIn()!);
      clock.advance(clock.nextIn()!);
    }
    assert.deepEqual(waits, [500, 1000, 2000, 4000]);
    assert.equal(conns.length, 5);
    conns.at(-1)!.emit('connect');
    await flush();
    conns.at(-1)!.emit('close');
    assert.ok(conns.at(-2)!.ended && conns.at(-1)!.ended, 'a closed connection is ended, never reused');
    // The state timer was cleared with the connection: the next timer is the retry.
    assert.equal(clock.nextIn(), 500);
  });

  it('stop() says offline and stops retrying; it does not wait for a broker that never answers', async () => {
    const { agent, conns, clock } = setup();
    agent.start();
    conns[0]!.emit('connect');
    await flush();
    await agent.stop();
    assert.deepEqual(conns[0]!.published.at(-1), { topic: 'nodeos/f/10000000abcdef01/online', payload: 'offline', retain: true });
    conns[0]!.emit('close');
    assert.equal(clock.nextIn(), undefined, 'no retry after stop');

    const silent = setup();
    silent.agent.start();
    const c = silent.conns[0]!;
    c.publish = (_t, _p, _o, _cb) => c; // the broker never acknowledges
    const stopping = silent.agent.stop();
    silent.clock.advance(2000);
    await stopping;
    assert.ok(c.ended);
  });

  it('an update job is judged after the reboot: succeeded once the asked-for build runs confirmed, failed when the board came back on the old one', async () => {
    const run = async (comesUp: 'new' | 'old'): Promise<{ state: string; reason?: string }> => {
      const { agent, conns, system, store } = setup();
      agent.start();
      conns[0]!.emit('connect');
      await flush();
      const job = signJob({ format: JOB_FORMAT, id: `u-${comesUp}`, fleet: 'f', target: { board: '10000000abcdef01' }, issuedAt: 1_800_000_000_000, expiresAt: 1_800_000_600_000, action: { type: 'update', url: 'https://h.test/b2', sha256: 'a'.repeat(64), version: 'b2' } }, fleetKey);
      conns[0]!.emit('message', 'nodeos/f/10000000abcdef01/jobs', encodeJob(job));
      await flush();
      await flush();
      assert.equal(system.rebooted, 1);
      const steps = conns[0]!.published.filter((p) => p.topic.endsWith('/progress')).map((p) => (JSON.parse(p.payload) as { state: string }).state);
      assert.deepEqual(steps, ['queued', 'downloading', 'installed', 'rebooting']);
      // The next boot: a new agent with the same store.
      system.bootId = 'boot-2';
      if (comesUp === 'new') system.build = 'b2';
      const next = setup({ store, system });
      next.agent.start();
      next.conns[0]!.emit('connect');
      await flush();
      await flush();
      const last = next.conns[0]!.published.filter((p) => p.topic.endsWith('/progress')).at(-1)!;
      return JSON.parse(last.payload) as { state: string; reason?: string };
    };
    assert.equal((await run('new')).state, 'succeeded');
    const failed = await run('old');
    assert.equal(failed.state, 'failed');
    assert.match(failed.reason!, /build b2 did not come up: U-Boot fell back to build b1/);
  });

  it('a retained job seen before is not run or reported again; a forged job cannot use up a real job\'s id', async () => {
    const { agent, conns, system } = setup();
    agent.start();
    conns[0]!.emit('connect');
    await flush();
    const real = signJob({ format: JOB_FORMAT, id: 'reboot-1', fleet: 'f', target: { group: 'west' }, issuedAt: 1_800_000_000_000, expiresAt: 1_800_000_600_000, action: { type: 'reboot' } }, fleetKey);
    const forged = { ...real, signature: Buffer.alloc(64).toString('base64') };
    conns[0]!.emit('message', 'nodeos/f/group/west/jobs', encodeJob(forged));
    conns[0]!.emit('message', 'nodeos/f/group/west/jobs', encodeJob(forged));
    await flush();
    const reports = (): string[] => conns[0]!.published.filter((p) => p.topic.endsWith('/progress')).map((p) => (JSON.parse(p.payload) as { state: string }).state);
    assert.deepEqual(reports(), ['rejected'], 'refused once, not at each delivery');
    conns[0]!.emit('message', 'nodeos/f/group/west/jobs', encodeJob(real));
    await flush();
    await flush();
    assert.equal(system.rebooted, 1, 'the real job with the same id still runs');
    conns[0]!.emit('message', 'nodeos/f/group/west/jobs', encodeJob(real));
    await flush();
    assert.equal(system.rebooted, 1);
    assert.deepEqual(reports(), ['rejected', 'queued', 'rebooting']);
    // The controller clears a retained job once it ended: an empty message, not a job to refuse.
    conns[0]!.emit('message', 'nodeos/f/10000000abcdef01/jobs', Buffer.alloc(0));
    await flush();
    assert.deepEqual(reports(), ['rejected', 'queued', 'rebooting']);
  });

  it('a message whose handling throws (the job memory cannot be written) is logged; the agent goes on', async () => {
    const store = new MemoryJobStore();
    store.remember = () => {
      throw new Error('ENOSPC: no space left on device');
    };
    const { agent, conns, logs } = setup({ store });
    agent.start();
    conns[0]!.emit('connect');
    await flush();
    const job = signJob({ format: JOB_FORMAT, id: 'r-9', fleet: 'f', target: { group: 'west' }, issuedAt: 1_800_000_000_000, expiresAt: 1_800_000_600_000, action: { type: 'reboot' } }, fleetKey);
    assert.doesNotThrow(() => conns[0]!.emit('message', 'nodeos/f/group/west/jobs', encodeJob(job)));
    assert.match(logs.join('\n'), /fleet: a message on nodeos\/f\/group\/west\/jobs failed: ENOSPC/);
  });
});
