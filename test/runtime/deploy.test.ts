/**
 * Deployed apps on the board (src/runtime/deploy.ts): the upload is checked whole before
 * anything is written, a release is written whole, `current` only ever points at a release
 * that settled, and a deployed copy of an image app runs only on the system it was made for.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { DEPLOY_MAX_BYTES, parseDeployHeader, type DeployHeader } from '../../src/apps/deploy-wire.js';
import { writeCpio, type CpioEntry } from '../../src/cpio/index.js';
import { commitRelease, deployedSpecs, discardRelease, linkedRelease, readUpload, receiveDeploy, releaseSpec, stageRelease, type Upload } from '../../src/runtime/deploy.js';
import type { AppStatus } from '../../src/runtime/apps.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const R1 = '1111111111111111';
const R2 = '2222222222222222';
const R3 = '3333333333333333';

function app(version: string, extra: CpioEntry[] = [], pkg: object = {}): CpioEntry[] {
  return [
    { path: 'package.json', type: 'file', data: Buffer.from(JSON.stringify({ name: 'thermo', version, main: 'server.js', ...pkg })) },
    { path: 'server.js', type: 'file', data: Buffer.from(`console.log(${JSON.stringify(version)})\n`), mode: 0o755 },
    { path: 'node_modules/dep/index.js', type: 'file', data: Buffer.from('module.exports = 1\n') },
    ...extra,
  ];
}

/** The bytes deploy sends: a header line, then the archive; `chunk` splits them as a network would. */
function wire(entries: CpioEntry[], h: Partial<DeployHeader> = {}, tamper?: (b: Buffer) => void): { stream: () => Readable; bytes: Buffer } {
  const payload = writeCpio(entries, 0);
  const header = { name: 'thermo', version: '1.0.0', release: R1, size: payload.length, sha256: createHash('sha256').update(payload).digest('hex'), settleMs: 10_000, ...h };
  const bytes = Buffer.concat([Buffer.from(JSON.stringify(header) + '\n'), payload]);
  tamper?.(bytes);
  return { bytes, stream: () => Readable.from([...Array(Math.ceil(bytes.length / 7)).keys()].map((i) => bytes.subarray(i * 7, i * 7 + 7))) };
}

const upload = (version: string, release: string, extra: CpioEntry[] = []): Promise<Upload> => readUpload(wire(app(version, extra), { version, release }).stream());

describe('deployed apps on the board', () => {
  after(cleanupTemp);

  it('reads an upload split anywhere; refuses one cut short, too long, damaged or without a header', async () => {
    const u = await readUpload(wire(app('1.0.0')).stream());
    assert.equal(u.header.name, 'thermo');
    assert.deepEqual(u.members.filter((m) => m.type === 'file').map((m) => m.path), ['node_modules/dep/index.js', 'package.json', 'server.js']);
    const w = wire(app('1.0.0'));
    await assert.rejects(readUpload(Readable.from([w.bytes.subarray(0, w.bytes.length - 1)])), { code: 'EDEPLOY_PAYLOAD' });
    await assert.rejects(readUpload(Readable.from([w.bytes.subarray(0, w.bytes.length - 1)])), /ended after \d+ of \d+ bytes; nothing was changed/);
    await assert.rejects(readUpload(Readable.from([w.bytes, Buffer.from('x')])), /longer than its header says/);
    await assert.rejects(readUpload(wire(app('1.0.0'), {}, (b) => b.writeUInt8(b.readUInt8(b.length - 200) ^ 1, b.length - 200)).stream()), /does not match its SHA-256/);
    await assert.rejects(readUpload(Readable.from([Buffer.from('hello\n')])), /does not start with a deploy header/);
    await assert.rejects(readUpload(Readable.from([])), /ended before its header/);
    await assert.rejects(readUpload(Readable.from([Buffer.alloc(5000, 0x41)])), /does not start with a deploy header line/);
    await assert.rejects(readUpload(wire(app('1.0.0'), { size: DEPLOY_MAX_BYTES + 1 }).stream()), { code: 'EDEPLOY_TOO_BIG' });
  });

  it('checks every header field', () => {
    const ok = { name: 'thermo', version: '1', release: R1, size: 10, sha256: 'a'.repeat(64), settleMs: 0 };
    assert.deepEqual(parseDeployHeader(JSON.stringify(ok)), ok);
    for (const [k, v, re] of [['name', '../etc', /not an app name/], ['release', 'xyz', /16 hex digits/], ['size', -1, /size/], ['sha256', 'zz', /sha256/], ['settleMs', 1e9, /settleMs/]] as const) {
      assert.throws(() => parseDeployHeader(JSON.stringify({ ...ok, [k]: v })), (e: Error & { code?: string }) => e.code === 'EDEPLOY_PAYLOAD' && re.test(e.message), k);
    }
  });

  it('writes a release whole, with its modes and what it was deployed on, and refuses an archive that is not an app', async () => {
    const root = tempDir();
    const dir = stageRelease(root, await upload('1.0.0', R1), 'buildA', new Date(0));
    assert.equal(dir, join(root, 'thermo/releases', R1));
    assert.equal(readFileSync(join(dir, 'server.js'), 'utf8'), 'console.log("1.0.0")\n');
    assert.equal(statSync(join(dir, 'server.js')).mode & 0o777, 0o755);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, '.nodeos-release.json'), 'utf8')), { name: 'thermo', version: '1.0.0', release: R1, system: 'buildA', deployedAt: '1970-01-01T00:00:00.000Z' });
    assert.deepEqual(releaseSpec(root, 'thermo', R1), { name: 'thermo', version: '1.0.0', dir, main: 'server.js', network: false, root: false, source: 'deployed', release: R1 });
    const refused = async (entries: CpioEntry[], re: RegExp, h: Partial<DeployHeader> = {}): Promise<void> => {
      const u = await readUpload(wire(entries, { release: R2, ...h }).stream());
      assert.throws(() => stageRelease(root, u, 'buildA'), (e: Error & { code?: string }) => e.code === 'EDEPLOY_PAYLOAD' && re.test(e.message), re.source);
    };
    await refused(app('2', [{ path: 'x/../../../etc/passwd', type: 'file', data: Buffer.from('') }]), /not a path inside the app/);
    await refused(app('2', [{ path: 'lib', type: 'symlink', target: '/etc' }]), /symlink/);
    await refused(app('2').filter((e) => e.path !== 'server.js'), /main file server\.js is not in its archive/);
    await refused(app('2').filter((e) => e.path !== 'package.json'), /no package\.json/);
    await refused(app('2'), /header names door but the app's package\.json names thermo/, { name: 'door' });
    await refused(app('2', [{ path: '.nodeos-release.json', type: 'file', data: Buffer.from('{}') }]), /not a path inside the app/);
    assert.deepEqual(readdirSync(join(root, 'thermo/releases')), [R1], 'a refused upload leaves nothing behind');
  });

  it('current moves only on commit; previous is kept, older releases go; a discarded release leaves no trace', async () => {
    const root = tempDir();
    stageRelease(root, await upload('1.0.0', R1), 'b');
    assert.equal(linkedRelease(root, 'thermo', 'current'), undefined, 'staged is not current');
    assert.deepEqual(commitRelease(root, 'thermo', R1), {});
    assert.equal(readlinkSync(join(root, 'thermo/current')), `releases/${R1}`);
    assert.equal(existsSync(join(root, 'thermo/previous')), false);
    stageRelease(root, await upload('2.0.0', R2), 'b');
    assert.deepEqual(commitRelease(root, 'thermo', R2), { previous: R1 });
    stageRelease(root, await upload('3.0.0', R3), 'b');
    discardRelease(root, 'thermo', R3);
    assert.deepEqual(readdirSync(join(root, 'thermo/releases')).sort(), [R1, R2]);
    discardRelease(root, 'thermo', R1);
    assert.ok(existsSync(join(root, 'thermo/releases', R1)), 'never the previous one');
    stageRelease(root, await upload('3.0.0', R3), 'b');
    assert.deepEqual(commitRelease(root, 'thermo', R3), { previous: R2 });
    assert.deepEqual(readdirSync(join(root, 'thermo/releases')).sort(), [R2, R3]);
    assert.ok(lstatSync(join(root, 'thermo/previous')).isSymbolicLink());
    assert.deepEqual(readdirSync(join(root, 'thermo')).sort(), ['current', 'previous', 'releases'], 'no temporary links left');
    // A first deploy that did not settle: nothing is left under its name.
    const other = tempDir();
    stageRelease(other, await upload('1.0.0', R1), 'b');
    discardRelease(other, 'thermo', R1);
    assert.deepEqual(readdirSync(other), []);
  });

  it('at boot: a deployed copy of an image app runs on the system it was deployed to; one of its own on any', async () => {
    const root = tempDir();
    stageRelease(root, await upload('2.0.0', R2), 'systemA');
    commitRelease(root, 'thermo', R2);
    const said: string[] = [];
    assert.deepEqual(deployedSpecs(root, 'systemA', ['thermo'], (m) => said.push(m)).map((s) => [s.name, s.version]), [['thermo', '2.0.0']]);
    assert.deepEqual(deployedSpecs(root, 'systemB', ['thermo'], (m) => said.push(m)), []);
    assert.match(said.join('\n'), /deployed on system systemA; this system \(systemB\) brings its own thermo, which runs/);
    assert.deepEqual(deployedSpecs(root, 'systemB', [], () => undefined).map((s) => s.version), ['2.0.0']);
    assert.deepEqual(deployedSpecs(join(root, 'missing'), 'systemA', [], () => undefined), []);
  });

  it('one deploy session: hello first, then the release is staged and init runs it; the same release again changes nothing', async () => {
    const root = tempDir();
    const lines: string[] = [];
    const steps: string[] = [];
    const started: [string, string, number][] = [];
    const ctx = {
      hello: { board: 'rpi3b', build: 'systemA', arch: 'arm64' },
      imageApps: ['thermo'],
      root,
      start: async (name: string, release: string, settleMs: number): Promise<AppStatus> => {
        started.push([name, release, settleMs]);
        commitRelease(root, name, release);
        return { name, source: 'deployed', state: 'running', restarts: 0, pid: 42 };
      },
    };
    const input = new PassThrough();
    const session = receiveDeploy(input, (l) => lines.push(l), (s) => steps.push(s), ctx);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(JSON.parse(lines[0]!), { protocol: 1, board: 'rpi3b', build: 'systemA', arch: 'arm64' }, 'the hello comes before the upload');
    input.end(wire(app('1.0.0')).bytes);
    assert.deepEqual(await session, { name: 'thermo', version: '1.0.0', release: R1, replacesImageApp: true, pid: 42 });
    assert.deepEqual(started, [['thermo', R1, 10_000]]);
    assert.match(steps.join('\n'), /received thermo 1\.0\.0 \(release 1111111111111111, 3 files/);
    const again = await receiveDeploy(wire(app('1.0.0')).stream(), () => undefined, () => undefined, ctx);
    assert.deepEqual(again, { name: 'thermo', version: '1.0.0', release: R1, unchanged: true });
    const next = await receiveDeploy(wire(app('2.0.0'), { version: '2.0.0', release: R2 }).stream(), () => undefined, () => undefined, ctx);
    assert.deepEqual(next.previous, { version: '1.0.0', release: R1 });
    assert.equal(started.length, 2);
  });
});
