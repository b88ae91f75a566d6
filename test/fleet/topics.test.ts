/** Fleet topics: names that could widen a subscription or an ACL never reach a topic. */
import assert from 'node:assert/strict';
import { fleetTopics, nameProblem, parseTopic, retryDelay } from '../../src/fleet/index.js';
import { thrownError } from '../helpers/error-code.js';

describe('fleet topics and names', () => {
  it('builds the topics of the design', () => {
    const t = fleetTopics('greenhouse');
    assert.equal(t.state('10000000abcdef01'), 'nodeos/greenhouse/10000000abcdef01/state');
    assert.equal(t.online('10000000abcdef01'), 'nodeos/greenhouse/10000000abcdef01/online');
    assert.equal(t.allOnline, 'nodeos/greenhouse/+/online');
    assert.equal(t.boardJobs('10000000abcdef01'), 'nodeos/greenhouse/10000000abcdef01/jobs');
    assert.equal(t.progress('b1'), 'nodeos/greenhouse/b1/jobs/progress');
    assert.equal(t.groupJobs('west'), 'nodeos/greenhouse/group/west/jobs');
    assert.equal(t.rollout('r-2'), 'nodeos/greenhouse/rollouts/r-2');
    assert.equal(t.allStates, 'nodeos/greenhouse/+/state');
  });

  it('refuses wildcards, separators, empty and over-long names, and the reserved board ids (EFLEET_NAME)', () => {
    for (const bad of ['', '+', '#', 'a/b', '.hidden', 'a b', 'x'.repeat(65), 'é', 'a\0b']) {
      assert.ok(nameProblem('board', bad), JSON.stringify(bad));
      assert.equal(thrownError(() => fleetTopics('f').state(bad)).code, 'EFLEET_NAME');
    }
    assert.match(nameProblem('board', 'group')!, /reserved/);
    assert.equal(nameProblem('group', 'group'), undefined, 'a group may be called group');
    assert.ok(nameProblem('board', 42));
    assert.equal(thrownError(() => fleetTopics('a+b')).code, 'EFLEET_NAME');
  });

  it('parses what it builds, and nothing else', () => {
    const t = fleetTopics('f');
    assert.deepEqual(parseTopic('f', t.state('b1')), { kind: 'state', board: 'b1' });
    assert.deepEqual(parseTopic('f', t.progress('b1')), { kind: 'progress', board: 'b1' });
    assert.deepEqual(parseTopic('f', t.online('b1')), { kind: 'online', board: 'b1' });
    assert.deepEqual(parseTopic('f', t.boardJobs('b1')), { kind: 'jobs', board: 'b1' });
    assert.deepEqual(parseTopic('f', t.groupJobs('g')), { kind: 'group-jobs', group: 'g' });
    assert.deepEqual(parseTopic('f', t.rollout('r')), { kind: 'rollout', id: 'r' });
    for (const other of ['nodeos/g/b1/state', 'nodeos/f/b1/state/x', 'nodeos/f/.b/state', 'nodeos/f/group/state', 'x/f/b1/state', 'nodeos/f/b1/jobs/progress/more']) assert.equal(parseTopic('f', other), undefined, other);
  });
});

describe('fleet agents: retry pacing', () => {
  it('doubles from 1 s to a 5 min cap, in the upper half of each step (never zero, spread across boards)', () => {
    assert.deepEqual([0, 1, 2, 3].map((n) => retryDelay(n, undefined, () => 0)), [500, 1000, 2000, 4000]);
    assert.deepEqual([0, 1, 2, 3].map((n) => retryDelay(n, undefined, () => 0.999999)), [1000, 2000, 4000, 8000]);
    assert.equal(retryDelay(40, undefined, () => 0.999999), 300_000);
    assert.equal(retryDelay(1e9, undefined, () => 0), 150_000);
    const spread = new Set(Array.from({ length: 1000 }, () => retryDelay(10)));
    assert.ok(spread.size > 500, 'a thousand boards do not come back in step');
  });
});
