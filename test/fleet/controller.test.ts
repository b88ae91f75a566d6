/** The controller's parsing of what boards publish, and a rollout that loses its broker. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { createRollout, driveRollout, parseBoardState, parseProgress, type BrokerClient } from '../../src/fleet/index.js';

class FakeClient extends EventEmitter {
  published: { topic: string; payload: string; retain: boolean }[] = [];
  publish(topic: string, payload: string, opts: { retain: boolean }): this {
    this.published.push({ topic, payload, retain: opts.retain });
    return this;
  }
  subscribe(_t: string[], _o: object, cb?: (err: Error | null) => void): this {
    cb?.(null);
    return this;
  }
  end(): this {
    return this;
  }
}

describe('fleet controller', () => {
  it("keeps only the known fields of a board's state, cut short, control characters replaced; refuses a state published for another board", () => {
    const s = parseBoardState(Buffer.from(JSON.stringify({ board: 'b1', profile: 'pi\u001b[2J', build: 'x'.repeat(500), slot: 'A', confirmed: true, groups: ['west', 'a/+', 7], apps: [{ name: 'app', state: 'running', extra: 1 }, { name: 'door', state: 'running', version: '1.2.0', source: 'deployed' }, { state: 'no name' }], lastFailedUpdate: { slot: 'B', build: 'b3', x: 1 }, addresses: ['10.0.0.2'], clockSynced: true, uptimeSeconds: 5, bootId: 'id', memAvailableMiB: 300, at: 1, evil: '\u001b[2J' })), 'b1')!;
    assert.equal(s.build.length, 64);
    assert.equal(s.profile, 'pi?[2J', 'no escape sequence reaches the terminal');
    assert.deepEqual(s.groups, ['west']);
    assert.deepEqual(s.apps, [{ name: 'app', state: 'running' }, { name: 'door', state: 'running', version: '1.2.0', source: 'deployed' }]);
    assert.deepEqual(s.lastFailedUpdate, { slot: 'B', build: 'b3' });
    assert.equal((s as unknown as Record<string, unknown>).evil, undefined);
    assert.equal(parseBoardState(Buffer.from(JSON.stringify({ board: 'b2' })), 'b1'), undefined);
    assert.equal(parseBoardState(Buffer.from('not json'), 'b1'), undefined);
    assert.equal(parseProgress(Buffer.from(JSON.stringify({ job: 'j', state: 'exploded' }))), undefined);
    assert.deepEqual(parseProgress(Buffer.from(JSON.stringify({ job: 'j', state: 'downloading', percent: 250, at: 3 }))), { job: 'j', state: 'downloading', percent: 100, at: 3 });
  });

  it('a rollout that loses its broker fails with EFLEET_BROKER and says how to resume it', async () => {
    const c = new FakeClient();
    const state = createRollout({ id: 'r-1', fleet: 'f', group: 'g', boards: ['b1', 'b2'], action: { type: 'reboot' }, now: Date.now() });
    const p = driveRollout({ client: c as unknown as BrokerClient, key: generateKeyPairSync('ed25519').privateKey, state, action: { type: 'reboot' } });
    assert.deepEqual(c.published.map((x) => x.topic), ['nodeos/f/b1/jobs', 'nodeos/f/rollouts/r-1'], 'the canary got its job, the state is kept');
    c.emit('close');
    await assert.rejects(p, (e: Error & { code?: string }) => e.code === 'EFLEET_BROKER' && /continue it with fleet update --resume r-1/.test(e.message));
  });
});
