/**
 * Fleet jobs: what the controller asks boards to do, signed with the fleet's Ed25519 key.
 * The broker only carries them; a board runs a job only when its signature verifies with a
 * key the board was built or flashed to trust, it is addressed to this board (or one of its
 * groups), it has not expired, and the board has not run it before. Every field is checked
 * before it reaches a timer, a file, a path or a log.
 *
 * On the wire (UTF-8 JSON, at most {@link MAX_JOB_BYTES}):
 *   { "job": "<the job document, as a JSON string>", "keyId": "SHA256:...", "signature": "<base64>" }
 * The signature covers {@link JOB_FORMAT}, a newline, then the `job` string's bytes: a job is
 * never mistaken for anything else the same key signs (an update bundle's header).
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { BspError } from '../errors.js';
import { keyId, type TrustedKey } from '../update/index.js';
import { NAME_RULE, nameProblem, type NameKind } from './topics.js';

export const JOB_FORMAT = 'nodeos-fleet-job/1';
/** A job larger than this is refused unread. */
export const MAX_JOB_BYTES = 16 * 1024;
/** How far in the future a job's issue time may be on a synchronised clock (the controller's clock may be ahead). */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** The longest a job may be valid for. */
export const MAX_JOB_LIFETIME_MS = 30 * 24 * 3600_000;

/** What a job asks for. */
export type JobAction =
  /** Download the bundle (resumed on failure), check its SHA-256, then the signed A/B install; succeeded once the new system confirms. */
  | { type: 'update'; url: string; sha256: string; version: string; size?: number }
  | { type: 'reboot' }
  | { type: 'app-restart'; app: string };

/** A job document, as signed. */
export interface Job {
  format: typeof JOB_FORMAT;
  /** Unique per job; a board runs an id once. */
  id: string;
  fleet: string;
  /** One board, or a group of boards. */
  target: { board: string } | { group: string };
  /** Milliseconds since the epoch. */
  issuedAt: number;
  expiresAt: number;
  /** The rollout it is part of, if any. */
  rollout?: string;
  action: JobAction;
}

/** A signed job as published. */
export interface SignedJob {
  job: string;
  keyId: string;
  signature: string;
}

const signedBytes = (job: string): Buffer => Buffer.from(`${JOB_FORMAT}\n${job}`, 'utf8');

/** Sign a job with the fleet's private key; the job is checked first (what a board would refuse is never published). */
export function signJob(job: Job, key: KeyObject): SignedJob {
  const text = JSON.stringify(checkJob(job));
  const signed: SignedJob = { job: text, keyId: keyId(key), signature: sign(null, signedBytes(text), key).toString('base64') };
  if (Buffer.byteLength(JSON.stringify(signed)) > MAX_JOB_BYTES) throw new BspError('EFLEET_JOB', `job ${job.id} is larger than ${MAX_JOB_BYTES} bytes signed: shorten its URL`);
  return signed;
}

/** The wire form of a signed job. */
export const encodeJob = (s: SignedJob): Buffer => Buffer.from(JSON.stringify(s), 'utf8');

const fail = (code: string, message: string): never => {
  throw new BspError(code, message);
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** Check an update's bundle address: http or https, no credentials in it, at most 2048 characters. */
export function bundleUrlProblem(url: unknown): string | undefined {
  if (typeof url !== 'string' || url.length === 0 || url.length > 2048) return 'the bundle URL must be a string of 1-2048 characters';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'the bundle URL is not a URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `the bundle URL's scheme ${JSON.stringify(u.protocol.slice(0, 16))} is not http or https`;
  if (u.username || u.password) return 'the bundle URL carries credentials; boards must not be given them in a job';
  if (/[\s\0]/.test(url)) return 'the bundle URL has white space or NUL in it';
  return undefined;
}

function checkAction(a: unknown): JobAction {
  if (!isObject(a)) return fail('EFLEET_JOB', 'the job has no action');
  switch (a.type) {
    case 'update': {
      const p = bundleUrlProblem(a.url);
      if (p) fail('EFLEET_JOB', p);
      if (typeof a.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(a.sha256)) fail('EFLEET_JOB', "the update's sha256 must be 64 lower-case hex digits");
      checkJobName("update's version", 'rollout', a.version);
      if (a.size !== undefined && !(Number.isSafeInteger(a.size) && (a.size as number) > 0)) fail('EFLEET_JOB', "the update's size must be a positive integer");
      return { type: 'update', url: a.url as string, sha256: a.sha256 as string, version: a.version as string, ...(a.size !== undefined ? { size: a.size as number } : {}) };
    }
    case 'reboot':
      return { type: 'reboot' };
    case 'app-restart': {
      checkJobName('app', 'group', a.app);
      return { type: 'app-restart', app: a.app as string };
    }
    default:
      return fail('EFLEET_JOB', `unknown job action ${JSON.stringify(String(a.type).slice(0, 32))}: this board knows update, reboot and app-restart`);
  }
}

/** A job document checked field by field (EFLEET_JOB), with only the fields the format has. */
export function checkJob(v: unknown): Job {
  if (!isObject(v)) return fail('EFLEET_JOB', 'the job is not a JSON object');
  if (v.format !== JOB_FORMAT) fail('EFLEET_JOB', `the job's format is not ${JOB_FORMAT}: update the board or the controller`);
  const id = checkJobName('id', 'rollout', v.id);
  const fleet = checkJobName('fleet', 'fleet', v.fleet);
  const t = v.target;
  let target: Job['target'];
  if (isObject(t) && typeof t.board === 'string' && t.group === undefined) target = { board: checkJobName('board', 'board', t.board) };
  else if (isObject(t) && typeof t.group === 'string' && t.board === undefined) target = { group: checkJobName('group', 'group', t.group) };
  else return fail('EFLEET_JOB', 'the job must target one board or one group');
  if (!isTime(v.issuedAt) || !isTime(v.expiresAt)) return fail('EFLEET_JOB', "the job's issuedAt and expiresAt must be times in milliseconds");
  if (v.expiresAt <= v.issuedAt || v.expiresAt - v.issuedAt > MAX_JOB_LIFETIME_MS) fail('EFLEET_JOB', 'the job must expire after it is issued, and within 30 days');
  const rollout = v.rollout === undefined ? undefined : checkJobName('rollout', 'rollout', v.rollout);
  return { format: JOB_FORMAT, id, fleet, target, issuedAt: v.issuedAt, expiresAt: v.expiresAt, ...(rollout ? { rollout } : {}), action: checkAction(v.action) };
}

function checkJobName(what: string, kind: NameKind, v: unknown): string {
  if (nameProblem(kind, v)) fail('EFLEET_JOB', `the job's ${what} ${JSON.stringify(String(v).slice(0, 80))} is not valid: use ${NAME_RULE}`);
  return v as string;
}

/** Who the board is, for {@link acceptJob}. */
export interface JobReceiver {
  fleet: string;
  board: string;
  groups: readonly string[];
  /** The fleet keys this board trusts. */
  trusted: readonly TrustedKey[];
  /** Ids of jobs already run or refused (a replayed job is refused again). */
  seen: (id: string) => boolean;
  /** Now, when the board's clock is synchronised; undefined when it is not (then expiry cannot be judged, the seen-list still holds). */
  now?: number;
}

/**
 * The job a board received, verified and checked, or a BspError saying why it is refused:
 * EFLEET_JOB (malformed), EFLEET_JOB_SIGNATURE (no trusted key signed it), EFLEET_JOB_TARGET
 * (another fleet, board or group), EFLEET_JOB_EXPIRED, EFLEET_JOB_REPLAY.
 */
export function acceptJob(payload: Buffer, r: JobReceiver): Job {
  if (payload.length > MAX_JOB_BYTES) fail('EFLEET_JOB', `the job is ${payload.length} bytes, more than ${MAX_JOB_BYTES}`);
  let env: unknown;
  try {
    env = JSON.parse(payload.toString('utf8'));
  } catch {
    return fail('EFLEET_JOB', 'the job is not JSON');
  }
  if (!isObject(env) || typeof env.job !== 'string' || typeof env.signature !== 'string') return fail('EFLEET_JOB', 'the job is not a signed job ({ job, keyId, signature })');
  const sig = Buffer.from(env.signature, 'base64');
  const good = sig.length === 64 && r.trusted.some((k) => verify(null, signedBytes(env.job as string), createPublicKey(k.pem), sig));
  if (!good) {
    const by = typeof env.keyId === 'string' && /^SHA256:[A-Za-z0-9+/]{43}$/.test(env.keyId) ? env.keyId : 'an unknown key';
    fail('EFLEET_JOB_SIGNATURE', `the job is signed by ${by}, which this board does not trust (it trusts ${r.trusted.map((k) => k.id).join(', ') || 'no fleet key'}): sign jobs with the fleet key the board was built with`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(env.job);
  } catch {
    return fail('EFLEET_JOB', 'the signed job is not JSON');
  }
  const job = checkJob(doc);
  if (job.fleet !== r.fleet) fail('EFLEET_JOB_TARGET', `job ${job.id} is for fleet ${job.fleet}; this board is in ${r.fleet}`);
  if ('board' in job.target ? job.target.board !== r.board : !r.groups.includes(job.target.group)) {
    fail('EFLEET_JOB_TARGET', `job ${job.id} is for ${'board' in job.target ? `board ${job.target.board}` : `group ${job.target.group}`}, not this board (${r.board}${r.groups.length ? `, groups ${r.groups.join(', ')}` : ''})`);
  }
  if (r.seen(job.id)) fail('EFLEET_JOB_REPLAY', `job ${job.id} was received before: a job runs once`);
  if (r.now !== undefined) {
    if (job.expiresAt <= r.now) fail('EFLEET_JOB_EXPIRED', `job ${job.id} expired at ${new Date(job.expiresAt).toISOString()}`);
    if (job.issuedAt > r.now + CLOCK_SKEW_MS) fail('EFLEET_JOB_EXPIRED', `job ${job.id} is issued at ${new Date(job.issuedAt).toISOString()}, in this board's future: check the controller's clock`);
  }
  return job;
}
