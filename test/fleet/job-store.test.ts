/** The agent's memory on the users' partition: kept across restarts, bounded, and never a crash on a damaged file. */
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileJobStore, SEEN_KEPT } from '../../src/fleet/job-store.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe('fleet: the job store on the users partition', () => {
  after(cleanupTemp);

  it('remembers job ids and the pending job across a restart (a new store on the same folder), files 0600', () => {
    const dir = join(tempDir(), 'fleet');
    const a = new FileJobStore(dir);
    a.remember('j1');
    a.remember('#abc');
    a.setPending({ job: 'j1', kind: 'update', fromBuild: 'b1', toBuild: 'b2', bootId: 'x', rollout: 'r1' });
    const b = new FileJobStore(dir);
    assert.ok(b.seen('j1') && b.seen('#abc') && !b.seen('j2'));
    assert.deepEqual(b.pending(), { job: 'j1', kind: 'update', fromBuild: 'b1', toBuild: 'b2', bootId: 'x', rollout: 'r1' });
    b.setPending(undefined);
    assert.equal(new FileJobStore(dir).pending(), undefined);
    assert.equal(statSync(join(dir, 'jobs-seen.json')).mode & 0o777, 0o600);
  });

  it(`keeps the newest ${SEEN_KEPT} ids`, () => {
    const dir = tempDir();
    const s = new FileJobStore(dir);
    for (let i = 0; i < SEEN_KEPT + 5; i++) s.remember(`j${i}`);
    const again = new FileJobStore(dir);
    assert.ok(!again.seen('j0') && !again.seen('j4') && again.seen('j5') && again.seen(`j${SEEN_KEPT + 4}`));
    assert.equal((JSON.parse(readFileSync(join(dir, 'jobs-seen.json'), 'utf8')) as string[]).length, SEEN_KEPT);
  });

  it('damaged or foreign files count as empty', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'jobs-seen.json'), '{"not": "a list"');
    writeFileSync(join(dir, 'job-pending.json'), JSON.stringify({ job: 'j', kind: 'format-disk', fromBuild: 'b', bootId: 'x' }));
    const s = new FileJobStore(dir);
    assert.ok(!s.seen('not'));
    assert.equal(s.pending(), undefined);
    writeFileSync(join(dir, 'job-pending.json'), JSON.stringify({ job: 'j', kind: 'update', fromBuild: 'b', bootId: 'x' }));
    assert.equal(s.pending(), undefined, 'an update without its target build');
    writeFileSync(join(dir, 'jobs-seen.json'), JSON.stringify(['ok', 42, '', 'x'.repeat(500)]));
    const t = new FileJobStore(dir);
    assert.ok(t.seen('ok') && !t.seen(''));
  });
});
