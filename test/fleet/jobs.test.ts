/** Fleet jobs: signed by the fleet key, verified and checked field by field on the board. */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { acceptJob, encodeJob, JOB_FORMAT, MAX_JOB_BYTES, signJob, type Job, type JobReceiver } from '../../src/fleet/index.js';
import { trustedKey } from '../../src/update/index.js';
import { thrownError as errorCode } from '../helpers/error-code.js';

const fleetKey = generateKeyPairSync('ed25519').privateKey;
const otherKey = generateKeyPairSync('ed25519').privateKey;
const T0 = Date.UTC(2026, 11, 7, 12);

const job = (over: Partial<Job> = {}): Job => ({
  format: JOB_FORMAT,
  id: 'rollout-7.b1',
  fleet: 'greenhouse',
  target: { group: 'west' },
  issuedAt: T0,
  expiresAt: T0 + 3600_000,
  action: { type: 'update', url: 'https://updates.example.test/b2.nodeos-update', sha256: 'a'.repeat(64), version: 'build-2' },
  ...over,
});

const seenIds = new Set<string>();
const board = (over: Partial<JobReceiver> = {}): JobReceiver => ({ fleet: 'greenhouse', board: '10000000abcdef01', groups: ['west'], trusted: [trustedKey(fleetKey)], seen: (id) => seenIds.has(id), now: T0 + 60_000, ...over });

describe('fleet jobs: signing and verification', () => {
  it('a job signed with the fleet key is accepted as signed, fields and all', () => {
    const j = acceptJob(encodeJob(signJob(job(), fleetKey)), board());
    assert.deepEqual(j, job());
  });

  it('a job signed by another key is refused (EFLEET_JOB_SIGNATURE), naming both keys', () => {
    const e = errorCode(() => acceptJob(encodeJob(signJob(job(), otherKey)), board()));
    assert.equal(e.code, 'EFLEET_JOB_SIGNATURE');
    assert.match(e.message, new RegExp(trustedKey(otherKey).id.replace(/[+/]/g, '.')));
    assert.match(e.message, /it trusts SHA256:/);
  });

  it('changing one byte of a signed job breaks its signature', () => {
    const s = signJob(job(), fleetKey);
    const tampered = { ...s, job: s.job.replace('b2.nodeos-update', 'b3.nodeos-update') };
    assert.equal(errorCode(() => acceptJob(encodeJob(tampered), board())).code, 'EFLEET_JOB_SIGNATURE');
  });

  it('a signature over the job without the format prefix (another use of the same key) does not verify', () => {
    const s = signJob(job(), fleetKey);
    const bare = { ...s, signature: sign(null, Buffer.from(s.job), fleetKey).toString('base64') };
    assert.equal(errorCode(() => acceptJob(encodeJob(bare), board())).code, 'EFLEET_JOB_SIGNATURE');
  });

  it('a board trusting no fleet key refuses every job', () => {
    assert.match(errorCode(() => acceptJob(encodeJob(signJob(job(), fleetKey)), board({ trusted: [] }))).message, /trusts no fleet key/);
  });

  it('jobs for another fleet, board or group are refused (EFLEET_JOB_TARGET)', () => {
    for (const j of [job({ fleet: 'barn' }), job({ target: { group: 'east' } }), job({ target: { board: '10000000ffffffff' } })]) {
      assert.equal(errorCode(() => acceptJob(encodeJob(signJob(j, fleetKey)), board())).code, 'EFLEET_JOB_TARGET', JSON.stringify(j.target));
    }
    assert.ok(acceptJob(encodeJob(signJob(job({ target: { board: '10000000abcdef01' } }), fleetKey)), board()));
  });

  it('an expired job, or one issued in the future, is refused on a synchronised clock; without one only the seen-list judges', () => {
    const old = encodeJob(signJob(job({ issuedAt: T0 - 7200_000, expiresAt: T0 - 3600_000 }), fleetKey));
    assert.equal(errorCode(() => acceptJob(old, board())).code, 'EFLEET_JOB_EXPIRED');
    const future = encodeJob(signJob(job({ issuedAt: T0 + 3600_000, expiresAt: T0 + 7200_000 }), fleetKey));
    assert.match(errorCode(() => acceptJob(future, board())).message, /in this board's future/);
    assert.ok(acceptJob(old, board({ now: undefined })), 'a board without time cannot judge expiry');
  });

  it('a job id seen before is refused (EFLEET_JOB_REPLAY)', () => {
    const wire = encodeJob(signJob(job({ id: 'once' }), fleetKey));
    acceptJob(wire, board());
    seenIds.add('once');
    assert.equal(errorCode(() => acceptJob(wire, board())).code, 'EFLEET_JOB_REPLAY');
  });

  it('malformed payloads are refused with EFLEET_JOB, before and after the signature', () => {
    const bad: [string, Buffer][] = [
      ['not JSON', Buffer.from('{nope')],
      ['not signed', Buffer.from(JSON.stringify({ job: '{}' }))],
      ['too large', Buffer.alloc(MAX_JOB_BYTES + 1, 0x20)],
    ];
    for (const [what, payload] of bad) assert.equal(errorCode(() => acceptJob(payload, board())).code, 'EFLEET_JOB', what);
  });

  it('signJob refuses what a board would refuse: names that reach topics and paths, URLs, hashes, lifetimes', () => {
    const cases: [string, Partial<Job>, RegExp][] = [
      ['a topic wildcard in the id', { id: 'a/#' }, /job's id "a\/#" is not valid/],
      ['a path in the group', { target: { group: '../etc' } }, /group/],
      ['a file: URL', { action: { type: 'update', url: 'file:///etc/shadow', sha256: 'a'.repeat(64), version: '2' } }, /scheme "file:" is not http or https/],
      ['credentials in the URL', { action: { type: 'update', url: 'https://u:p@host.test/x', sha256: 'a'.repeat(64), version: '2' } }, /credentials/],
      ['a short hash', { action: { type: 'update', url: 'https://host.test/x', sha256: 'abc', version: '2' } }, /sha256/],
      ['an unknown action', { action: { type: 'format-disk' } as never }, /unknown job action "format-disk"/],
      ['an app name with a slash', { action: { type: 'app-restart', app: 'a/b' } }, /job's app "a\/b"/],
      ['a 90-day job', { expiresAt: T0 + 90 * 24 * 3600_000 }, /within 30 days/],
      ['expiry before issue', { expiresAt: T0 - 1 }, /expire after it is issued/],
    ];
    for (const [what, over, re] of cases) {
      const e = errorCode(() => signJob(job(over), fleetKey));
      assert.equal(e.code, 'EFLEET_JOB', what);
      assert.match(e.message, re, what);
    }
  });

  it('a signed document with extra fields is accepted with only the format\'s fields (nothing unknown reaches the agent)', () => {
    const s = signJob(job(), fleetKey);
    const doc = { ...JSON.parse(s.job), command: 'rm -rf /' };
    const text = JSON.stringify(doc);
    const resigned = { job: text, keyId: s.keyId, signature: sign(null, Buffer.from(`${JOB_FORMAT}\n${text}`), fleetKey).toString('base64') };
    const j = acceptJob(encodeJob(resigned), board());
    assert.equal((j as unknown as Record<string, unknown>).command, undefined);
  });
});
