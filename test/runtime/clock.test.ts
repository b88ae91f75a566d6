import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { SntpError, type ClockSample } from '../../src/net/index.js';
import { clockState } from '../../src/runtime/board/info.js';
import { applyFloor, askTime, ClockKeeper, retryDelayMs, timeSources } from '../../src/runtime/clock.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const sample = (offsetMs: number, source: string): ClockSample => ({ offsetMs, delayMs: 1, stratum: 2, source });

describe('the board clock', () => {
  after(cleanupTemp);

  it('asks the lease NTP servers first, then nodeos.ntp=, then nodeos.timeurl= and the npm registry', () => {
    const s = timeSources('console=ttyS1 nodeos.ntp=10.0.0.9,10.0.0.8 nodeos.timeurl=http://10.0.2.100/ nodeos.ntp=10.0.0.9', ['10.0.0.1'], 'https://registry.example/');
    assert.deepEqual(s, { ntp: ['10.0.0.1', '10.0.0.9', '10.0.0.8'], http: ['http://10.0.2.100/', 'https://registry.example/'] });
    assert.deepEqual(timeSources('nodeos.timeurl=ftp://x/', [], undefined), { ntp: [], http: [] });
  });

  it('falls back from SNTP to an HTTP Date, and reports every error when nothing answers', async () => {
    const tried: string[] = [];
    const sntp = async (h: string): Promise<ClockSample> => {
      tried.push(h);
      throw new SntpError('ESNTP_TIMEOUT', `ntp ${h}:123: no answer`);
    };
    const http = async (u: string): Promise<ClockSample> => {
      tried.push(u);
      return sample(5000, `http ${u}`);
    };
    const r = await askTime({ ntp: ['a', 'b'], http: ['http://t/'] }, { sntp, http });
    assert.deepEqual(tried, ['a', 'b', 'http://t/']);
    assert.equal(r.sample?.source, 'http http://t/');
    // Nothing answers: every source's error, SNTP's and HTTP's, in the order tried.
    const failingHttp = async (u: string): Promise<ClockSample> => {
      tried.push(u);
      throw new Error(`http ${u}: connect ECONNREFUSED`);
    };
    tried.length = 0;
    const none = await askTime({ ntp: ['a'], http: ['http://t/', 'https://u/'] }, { sntp, http: failingHttp });
    assert.equal(none.sample, undefined);
    assert.deepEqual(tried, ['a', 'http://t/', 'https://u/']);
    assert.deepEqual(none.errors, ['ntp a:123: no answer', 'http http://t/: connect ECONNREFUSED', 'http https://u/: connect ECONNREFUSED']);
  });

  it('an HTTP Date from a server on loopback moves the clock by its offset', async () => {
    const future = Date.UTC(2031, 0, 1);
    const srv = createServer((_q, s) => {
      s.setHeader('Date', new Date(future).toUTCString());
      s.end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/`;
      const set: number[] = [];
      const dir = tempDir();
      const k = new ClockKeeper({ sources: () => ({ ntp: [], http: [url] }), log: () => undefined, set: (ms) => void set.push(ms), stateFile: join(dir, 'clock.json') });
      assert.equal(await k.sync(), true);
      k.stop();
      assert.ok(Math.abs(set[0]! - future) < 2000, `${new Date(set[0]!).toISOString()}`);
      const st = clockState(readFileSync(join(dir, 'clock.json')));
      assert.deepEqual({ synced: st.synced, source: st.source }, { synced: true, source: `http ${url}` });
    } finally {
      srv.close();
    }
  });

  it('says a failure once, keeps retrying with backoff, and says when it is set', async () => {
    const logs: string[] = [];
    const reply: { answer?: ClockSample } = {};
    const dir = tempDir();
    const k = new ClockKeeper({
      sources: () => ({ ntp: ['10.0.0.1'], http: [] }),
      log: (m) => logs.push(m),
      ask: async () => (reply.answer ? { sample: reply.answer, errors: [] } : { errors: ['ntp 10.0.0.1:123: no answer in 3000 ms'] }),
      set: () => undefined,
      stateFile: join(dir, 'clock.json'),
    });
    for (let i = 0; i < 3; i++) assert.equal(await k.sync(), false);
    reply.answer = sample(-7200_000, 'ntp 10.0.0.1:123');
    assert.equal(await k.sync(), true);
    assert.equal(await k.sync(), true);
    k.stop();
    assert.equal(logs.length, 2, logs.join('\n'));
    assert.match(logs[0]!, /clock: no time source answered \(ntp 10\.0\.0\.1:123: no answer in 3000 ms\); trying again with backoff/);
    assert.match(logs[1]!, /clock: set to \S+ from ntp 10\.0\.0\.1:123 \(was off by -7200\.0 s\)/);
    assert.deepEqual([1, 2, 3, 10].map(retryDelayMs), [30_000, 60_000, 120_000, 3600_000]);
  });

  it('no time source sets the clock before the build time, however sure it sounds', async () => {
    const logs: string[] = [];
    const set: number[] = [];
    const build = 1_800_000_000;
    const k = new ClockKeeper({
      sources: () => ({ ntp: ['10.0.0.1'], http: [] }),
      log: (m) => logs.push(m),
      // Now is the build time; the server says a year earlier.
      now: () => build * 1000,
      ask: async () => ({ sample: sample(-365 * 86400_000, 'ntp 10.0.0.1:123'), errors: [] }),
      set: (ms) => void set.push(ms),
      stateFile: join(tempDir(), 'clock.json'),
      buildEpoch: build,
    });
    assert.equal(await k.sync(), false);
    assert.equal(await k.sync(), false);
    k.stop();
    assert.deepEqual(set, []);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /clock: ntp 10\.0\.0\.1:123 says 2026-\S+, before this image was built \(2027-\S+\); not used/);
  });

  it('nodeos.ntp=HOST:PORT asks that port; a malformed entry is an error of its own', async () => {
    const asked: [string, number | undefined][] = [];
    const sntp = async (h: string, o?: { port?: number }): Promise<ClockSample> => {
      asked.push([h, o?.port]);
      throw new SntpError('ESNTP_TIMEOUT', `ntp ${h}:${o?.port}: no answer`);
    };
    const r = await askTime({ ntp: ['127.0.0.1:10123', 'x:y', '10.0.2.2'], http: [] }, { sntp, http: async () => sample(0, 'x') });
    assert.deepEqual(asked, [['127.0.0.1', 10123], ['10.0.2.2', 123]]);
    assert.match(r.errors[1]!, /ntp x:y: not a host or host:port/);
  });

  it('never runs earlier than the build time', () => {
    const set: number[] = [];
    const logs: string[] = [];
    const dir = tempDir();
    const state = join(dir, 'clock.json');
    applyFloor(1_700_000_000, (m) => logs.push(m), { set: (ms) => void set.push(ms), now: () => 1_699_999_000_000, stateFile: state });
    assert.deepEqual(clockState(readFileSync(state)), { synced: false, source: 'build time', at: '2023-11-14T22:13:20.000Z' });
    // Already later: untouched.
    applyFloor(1_700_000_000, (m) => logs.push(m), { set: (ms) => void set.push(ms), now: () => 1_800_000_000_000, stateFile: join(dir, 'other.json') });
    assert.deepEqual(set, [1_700_000_000_000]);
    assert.deepEqual(logs, []);
  });

  it('board.info.clock reads the state init records', () => {
    assert.deepEqual(clockState(undefined), { synced: false });
    assert.deepEqual(clockState(Buffer.from('not json')), { synced: false });
    assert.deepEqual(clockState(Buffer.from('{"synced":true,"source":"ntp 10.0.2.2:123","at":"2031-01-01T00:00:00.000Z"}')), { synced: true, source: 'ntp 10.0.2.2:123', at: '2031-01-01T00:00:00.000Z' });
  });
});
