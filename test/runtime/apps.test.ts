import { strict as assert } from 'node:assert';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { controlApp, readAppsState, serveAppControl, writeAppsState } from '../../src/runtime/app-control.js';
import { appStarter, openHardwareToApps, writeUsers } from '../../src/runtime/app-runner.js';
import { appsView } from '../../src/runtime/board/apps.js';
import { readEnabled, userAppSpec, writeEnabled } from '../../src/runtime/user-apps.js';
import type { AppsBackend } from '../../src/runtime/board/backend.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppLog, tailAppLog } from '../../src/runtime/app-log.js';
import { AppSupervisor, appsHealth, type AppProcess, type AppSpec, type AppStatus } from '../../src/runtime/apps.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { thrownCode as code } from '../helpers/error-code.js';

/** A process the test ends: exit(code) or a signal through kill(). */
class FakeProc implements AppProcess {
  private fn?: (code: number | null, signal: string | null) => void;
  readonly signals: string[] = [];
  constructor(readonly pid: number, private readonly obeys = true) {}
  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
    if (this.obeys || signal === 'SIGKILL') this.exit(null, signal);
  }
  onExit(fn: (code: number | null, signal: string | null) => void): void {
    this.fn = fn;
  }
  exit(code: number | null, signal: string | null = null): void {
    const fn = this.fn;
    this.fn = undefined;
    fn?.(code, signal);
  }
}

const spec: AppSpec = { name: 'thermo', version: '1.0.0', dir: '/usr/lib/nodeos/apps/thermo', main: 'server.js', source: 'image' };

function setup(obeys = true) {
  const clock = new FakeClock();
  const procs: FakeProc[] = [];
  const logs: string[] = [];
  let last: AppStatus[] = [];
  const sup = new AppSupervisor({
    clock,
    log: (m) => logs.push(m),
    start: () => {
      const p = new FakeProc(100 + procs.length, obeys);
      procs.push(p);
      return p;
    },
    onChange: (a) => (last = a),
  });
  sup.add(spec);
  return { clock, procs, logs, sup, state: () => last[0]! };
}

describe('app supervisor', () => {
  it('waits until started, then runs the app and reports pid and uptime start', () => {
    const { sup, procs, state, clock } = setup();
    assert.equal(state().state, 'waiting');
    assert.equal(procs.length, 0);
    clock.advance(500);
    sup.start('thermo');
    assert.equal(procs.length, 1);
    assert.deepEqual({ state: state().state, pid: state().pid, since: state().since, restarts: state().restarts }, { state: 'running', pid: 100, since: 500, restarts: 0 });
  });

  it('restarts after an exit with exponential backoff: 1, 2, 4 s', () => {
    const { sup, procs, state, clock, logs } = setup();
    sup.start('thermo');
    for (const [i, delay] of [1000, 2000, 4000].entries()) {
      procs[i]!.exit(1);
      assert.equal(state().state, 'backoff');
      assert.equal(clock.nextIn(), delay);
      clock.advance(delay - 1);
      assert.equal(procs.length, i + 1, 'not before the delay');
      clock.advance(1);
      assert.equal(procs.length, i + 2);
      assert.equal(state().restarts, i + 1);
    }
    assert.match(logs[0]!, /app thermo: exit 1; starting again in 1 s/);
  });

  it('an app that ran long enough before exiting starts again at the first delay', () => {
    const { sup, procs, clock } = setup();
    sup.start('thermo');
    procs[0]!.exit(1);
    clock.advance(1000);
    procs[1]!.exit(1);
    clock.advance(2000);
    clock.advance(60_000);
    procs[2]!.exit(null, 'SIGSEGV');
    assert.equal(clock.nextIn(), 1000);
  });

  it('five quick exits in a minute are a crash loop, said once; retries go on at the longest backoff', () => {
    const { sup, procs, state, clock, logs } = setup();
    sup.start('thermo');
    for (let i = 0; i < 5; i++) {
      procs[i]!.exit(1);
      clock.advance(clock.nextIn()!);
    }
    assert.equal(procs.length, 6);
    procs[5]!.exit(1);
    assert.equal(state().state, 'crash-loop');
    const said = logs.filter((l) => /crash loop/.test(l));
    assert.equal(said.length, 1, logs.join('\n'));
    assert.match(said[0]!, /5 exits in 60 s, last: exit 1.*\.logs thermo/);
    for (let i = 0; i < 3; i++) {
      clock.advance(clock.nextIn()!);
      procs.at(-1)!.exit(1);
    }
    assert.equal(clock.nextIn(), 60_000);
    assert.equal(logs.filter((l) => /crash loop/.test(l)).length, 1);
  });

  it('stop terminates the app and keeps it stopped; start runs it again without counting a restart', async () => {
    const { sup, procs, state, clock } = setup();
    sup.start('thermo');
    const s = await sup.stop('thermo');
    assert.equal(s.state, 'stopped');
    assert.deepEqual(procs[0]!.signals, ['SIGTERM']);
    clock.advance(120_000);
    assert.equal(procs.length, 1, 'a stopped app is not restarted');
    sup.start('thermo');
    assert.equal(procs.length, 2);
    assert.equal(state().restarts, 0);
  });

  it('stop kills an app that ignores SIGTERM after the grace time', async () => {
    const { sup, procs, clock } = setup(false);
    sup.start('thermo');
    const stopping = sup.stop('thermo');
    assert.deepEqual(procs[0]!.signals, ['SIGTERM']);
    clock.advance(5000);
    assert.equal((await stopping).state, 'stopped');
    assert.deepEqual(procs[0]!.signals, ['SIGTERM', 'SIGKILL']);
  });

  it('restart in backoff starts at once and forgets the backoff', async () => {
    const { sup, procs, clock, state } = setup();
    sup.start('thermo');
    procs[0]!.exit(1);
    await sup.restart('thermo');
    assert.equal(procs.length, 2);
    assert.equal(state().state, 'running');
    clock.advance(10_000);
    assert.equal(procs.length, 2, 'the old backoff timer is gone');
  });

  it('a start that throws counts as an exit (backoff), and unknown names are refused with a code', () => {
    const clock = new FakeClock();
    const logs: string[] = [];
    const sup = new AppSupervisor({ clock, log: (m) => logs.push(m), start: () => { throw new Error('ENOENT: server.js'); } });
    sup.add(spec);
    sup.start('thermo');
    assert.equal(sup.list()[0]!.state, 'backoff');
    assert.match(logs[0]!, /cannot start: ENOENT/);
    assert.throws(() => sup.start('nope'), (e: Error & { code?: string }) => e.code === 'EAPP_UNKNOWN' && /thermo/.test(e.message));
  });
});

describe('app log (size-bounded, one old file)', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'nodeos-applog-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('appends, moves the file to .log.1 past the limit, and never keeps more than twice the limit', () => {
    const log = new AppLog(dir, 'thermo', 100);
    for (let i = 0; i < 30; i++) log.write(`line ${String(i).padStart(2, '0')}\n`);
    log.close();
    const live = readFileSync(join(dir, 'thermo.log'), 'utf8');
    const old = readFileSync(join(dir, 'thermo.log.1'), 'utf8');
    assert.ok(live.length <= 100 && old.length <= 100, `${live.length} ${old.length}`);
    assert.match(live, /line 29\n$/);
    assert.equal(tailAppLog(dir, 'thermo', 3), 'line 27\nline 28\nline 29');
    // The tail runs across both files, in order.
    const tail = tailAppLog(dir, 'thermo', 20).split('\n');
    assert.deepEqual(tail, tail.slice().sort());
  });

  it('keeps going after a reopen (a reboot), and keeps the end of an oversized write', () => {
    const log = new AppLog(dir, 'big', 50);
    log.mark('started, pid 7', new Date(0));
    log.close();
    const again = new AppLog(dir, 'big', 50);
    again.write('x'.repeat(80) + 'END\n');
    again.close();
    assert.match(readFileSync(join(dir, 'big.log.1'), 'utf8'), /^--- 1970-01-01T00:00:00.000Z started, pid 7 ---\n$/);
    assert.match(readFileSync(join(dir, 'big.log'), 'utf8'), /^x+END\n$/);
    assert.equal(readFileSync(join(dir, 'big.log'), 'utf8').length, 50);
  });

  it('a log it cannot write is dropped, said once (the app and init go on)', () => {
    const said: string[] = [];
    const log = new AppLog(join(dir, 'thermo.log', 'not-a-dir'), 'x', 100, (err) => said.push(err.message));
    assert.doesNotThrow(() => log.write('hello\n'));
    assert.doesNotThrow(() => log.write('again\n'));
    assert.equal(said.length, 1);
    assert.match(said[0]!, /ENOTDIR|EEXIST/);
  });
});

describe('app control (init\'s Unix socket, board.apps)', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'nodeos-appctl-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('start, stop and restart reach the supervisor; unknown apps and requests are refused with codes', async () => {
    const { sup, procs } = setup();
    const sock = join(dir, 'apps.sock');
    const server = await serveAppControl(sup, sock);
    try {
      assert.equal((statSync(sock).mode & 0o777).toString(8), '600', 'root only');
      assert.equal((await controlApp('start', 'thermo', sock)).state, 'running');
      assert.equal(procs.length, 1);
      assert.equal((await controlApp('restart', 'thermo', sock)).pid, 101);
      assert.deepEqual(procs[0]!.signals, ['SIGTERM']);
      assert.equal((await controlApp('stop', 'thermo', sock)).state, 'stopped');
      await assert.rejects(controlApp('start', 'nope', sock), (e: Error & { code?: string }) => e.code === 'EAPP_UNKNOWN');
      await assert.rejects(controlApp('start', 'thermo', join(dir, 'none.sock')), (e: Error & { code?: string }) => e.code === 'EAPP_SUPERVISOR');
    } finally {
      server.close();
    }
  });

  it('the state file is written whole and read back', () => {
    const file = join(dir, 'apps.json');
    writeAppsState({ logDir: '/home/.local/state/nodeos/logs', apps: [{ name: 'thermo', source: 'image', state: 'running', pid: 42, restarts: 2, since: 1000 }] }, file);
    assert.equal(readAppsState(file)?.apps[0]?.pid, 42);
    assert.equal(readAppsState(join(dir, 'missing.json')), undefined);
  });

  it('board.apps: one property per app, uptime from its start, a table in the REPL, and the actions', async () => {
    const calls: string[] = [];
    const backend: AppsBackend = {
      list: () => [
        { name: 'thermo', version: '1.0.0', source: 'image', state: 'running', pid: 42, restarts: 1, since: 10_000 },
        { name: 'door', source: 'image', state: 'crash-loop', restarts: 7, lastExit: { code: 1, signal: null, at: 1 } },
      ],
      control: async (op, name) => (calls.push(`${op} ${name}`), { name, source: 'image', state: op === 'stop' ? 'stopped' : 'running', restarts: 0 }),
      logs: (name, lines) => `${name} ${lines}`,
    };
    const apps = appsView(backend, 52_000);
    assert.deepEqual(Object.keys(apps), ['thermo', 'door']);
    assert.equal(apps.thermo!.uptime, 42);
    assert.equal(apps.door!.uptime, undefined);
    assert.equal(inspect(apps), 'app     state       pid  restarts  uptime  version\nthermo  running     42   1         42 s    1.0.0\ndoor    crash-loop  -    7         -       -');
    assert.equal((await apps.door!.stop()).state, 'stopped');
    await apps.thermo!.restart();
    assert.deepEqual(calls, ['stop door', 'restart thermo']);
    assert.equal(apps.thermo!.logs(5), 'thermo 5');
    assert.deepEqual(Object.keys(apps.thermo!), ['name', 'version', 'source', 'state', 'pid', 'restarts', 'uptime'], 'methods are not listed as data');
    assert.equal(inspect(appsView({ ...backend, list: () => [] })), 'no apps (build with --app DIR; see docs/apps.md)');
  });
});

describe('the app user\'s hardware (device nodes opened to group app)', () => {
  it('gives GPIO chips, I2C buses and serial ports other than the console to gid 1000, 0660 (root)', function () {
    if (process.getuid?.() !== 0) this.skip();
    const root = mkdtempSync(join(tmpdir(), 'nodeos-dev-'));
    try {
      const dev = join(root, 'dev');
      mkdirSync(join(root, 'sys/class/tty/console'), { recursive: true });
      writeFileSync(join(root, 'sys/class/tty/console/active'), 'ttyS1\n');
      mkdirSync(dev);
      for (const n of ['gpiochip0', 'i2c-1', 'ttyS1', 'ttyAMA0', 'mmcblk0', 'mem']) writeFileSync(join(dev, n), '');
      for (const n of ['gpiochip0', 'i2c-1', 'ttyS1', 'ttyAMA0', 'mmcblk0', 'mem']) chmodSync(join(dev, n), 0o600);
      assert.deepEqual(openHardwareToApps(dev, join(root, 'sys')).sort(), ['gpiochip0', 'i2c-1', 'ttyAMA0']);
      assert.equal(statSync(join(dev, 'i2c-1')).gid, 1000);
      assert.equal((statSync(join(dev, 'i2c-1')).mode & 0o777).toString(8), '660');
      assert.equal((statSync(join(dev, 'ttyS1')).mode & 0o777).toString(8), '600', 'the console stays the REPL\'s');
      assert.equal((statSync(join(dev, 'mmcblk0')).mode & 0o777).toString(8), '600');
      writeUsers(root);
      assert.match(readFileSync(join(root, 'passwd'), 'utf8'), /^app:x:1000:1000:/m);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('app runner (real processes on this machine)', () => {
  it('runs node <main> in the app\'s directory with its own HOME, logs its output between the supervisor\'s lines, and reports the exit', async () => {
    const root = mkdtempSync(join(tmpdir(), 'nodeos-runner-'));
    try {
      mkdirSync(join(root, 'app'));
      writeFileSync(join(root, 'app/main.js'), "console.log('hello from', process.cwd(), process.env.HOME, process.env.NODEOS_APP); console.error('oops'); process.exit(3);\n");
      const runner = appStarter({ logDir: join(root, 'logs'), dataDir: join(root, 'data'), env: { PATH: process.env.PATH } });
      const proc = runner.start({ name: 'hello', version: '0.1.0', dir: join(root, 'app'), main: 'main.js', source: 'image', root: true });
      assert.ok(proc.pid! > 0);
      const [code, signal] = await new Promise<[number | null, string | null]>((r) => proc.onExit((c, s) => r([c, s])));
      assert.deepEqual([code, signal], [3, null]);
      const log = readFileSync(join(root, 'logs/hello.log'), 'utf8');
      assert.match(log, new RegExp(`^--- \\S+ hello 0\\.1\\.0 started, pid ${proc.pid} \\(root\\) ---\\nhello from ${join(root, 'app')} ${join(root, 'data/hello')} hello\\n`));
      assert.match(log, /oops\n--- \S+ exit 3 ---\n$/);
      // A main that cannot start (no node at that path) is an exit too.
      const bad = appStarter({ logDir: join(root, 'logs'), dataDir: join(root, 'data'), env: {}, nodePath: join(root, 'no-node') });
      const p2 = bad.start({ name: 'bad', dir: join(root, 'app'), main: 'main.js', source: 'image', root: true });
      await new Promise<void>((r) => p2.onExit(() => r()));
      assert.match(readFileSync(join(root, 'logs/bad.log'), 'utf8'), /cannot start: spawn .*ENOENT/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('users\' apps (npm install -g, then board.apps.enable)', () => {
  let prefix: string;
  before(() => {
    prefix = mkdtempSync(join(tmpdir(), 'nodeos-prefix-'));
    const pkg = join(prefix, 'lib/node_modules/@acme/ticker');
    mkdirSync(join(pkg, 'bin'), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: '@acme/ticker', version: '2.0.0', main: 'lib.js', bin: { ticker: 'bin/ticker.js' }, nodeos: { network: true } }));
    writeFileSync(join(pkg, 'bin/ticker.js'), '#!/usr/bin/env node\n');
    const broken = join(prefix, 'lib/node_modules/broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'package.json'), JSON.stringify({ name: 'broken', bin: 'gone.js' }));
  });
  after(() => rmSync(prefix, { recursive: true, force: true }));

  it('an installed package becomes an app: its bin is what runs, its settings from package.json', () => {
    assert.deepEqual(userAppSpec('@acme/ticker', prefix), { name: 'ticker', version: '2.0.0', dir: join(prefix, 'lib/node_modules/@acme/ticker'), main: 'bin/ticker.js', network: true, root: false, source: 'user', package: '@acme/ticker' });
  });

  it('refuses what is not installed, has no main file, or is not a package name, with codes', () => {
    assert.equal(code(() => userAppSpec('cowsay', prefix)), 'EAPP_NOT_INSTALLED');
    assert.equal(code(() => userAppSpec('broken', prefix)), 'EAPP');
    assert.equal(code(() => userAppSpec('../../etc', prefix)), 'EAPP');
  });

  it('the enabled list is written whole, sorted, without duplicates; a damaged one reads as empty', () => {
    const file = join(prefix, 'state/apps.json');
    assert.deepEqual(readEnabled(file), []);
    writeEnabled(['b', '@acme/ticker', 'b'], file);
    assert.deepEqual(readEnabled(file), ['@acme/ticker', 'b']);
    writeFileSync(file, '{"enabled": [');
    assert.deepEqual(readEnabled(file), []);
  });

  it('enable and disable reach init\'s hooks over the control socket', async () => {
    const { sup } = setup();
    const sock = join(prefix, 'apps.sock');
    const seen: string[] = [];
    const server = await serveAppControl(sup, sock, {
      enable: (n) => (seen.push(`enable ${n}`), { name: 'ticker', source: 'user', state: 'running', restarts: 0 }),
      disable: async (n) => (seen.push(`disable ${n}`), { name: 'ticker', source: 'user', state: 'stopped', restarts: 0 }),
    });
    try {
      assert.equal((await controlApp('enable', '@acme/ticker', sock)).state, 'running');
      assert.equal((await controlApp('disable', 'ticker', sock)).state, 'stopped');
      assert.deepEqual(seen, ['enable @acme/ticker', 'disable ticker']);
    } finally {
      server.close();
    }
  });

  it('the supervisor forgets a removed app', async () => {
    const { sup } = setup();
    sup.start('thermo');
    assert.equal((await sup.remove('thermo')).state, 'stopped');
    assert.deepEqual(sup.names(), []);
  });
});


describe('apps and a new system (A/B): appsHealth', () => {
  const app = (over: Partial<AppStatus>): AppStatus => ({ name: 'thermo', source: 'image', state: 'running', restarts: 0, since: 0, ...over });
  it('healthy once every image app ran 30 s (or waits for the network); pending before', () => {
    assert.deepEqual(appsHealth([app({ since: 10_000 })], 39_999), { state: 'pending', app: 'thermo' });
    assert.deepEqual(appsHealth([app({ since: 10_000 }), app({ name: 'net', state: 'waiting', since: undefined })], 40_000), { state: 'healthy' });
    assert.deepEqual(appsHealth([app({ state: 'backoff', since: undefined })], 1e9).state, 'pending');
  });
  it('failing as soon as one image app is in a crash loop; users\' apps do not count', () => {
    assert.deepEqual(appsHealth([app({ since: 0 }), app({ name: 'door', state: 'crash-loop' })], 1e9), { state: 'failing', app: 'door' });
    assert.deepEqual(appsHealth([app({ since: 0 }), app({ name: 'mine', source: 'user', state: 'crash-loop' })], 1e9), { state: 'healthy' });
  });
});

describe('app supervisor: replace (a deploy)', () => {
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const v2: AppSpec = { ...spec, version: '2.0.0', dir: '/home/.local/share/nodeos/deployed/thermo/releases/aaaaaaaaaaaaaaaa', source: 'deployed', release: 'aaaaaaaaaaaaaaaa' };

  it('a new version that runs its settle time takes the old one\'s place, with its own counts', async () => {
    const { sup, procs, clock } = setup();
    sup.start('thermo');
    procs[0]!.exit(1);
    clock.advance(1000);
    const p = sup.replace(v2, 10_000);
    await tick();
    assert.equal(procs.length, 3);
    assert.deepEqual(procs[1]!.signals, ['SIGTERM'], 'the old version was stopped first');
    clock.advance(9_999);
    await tick();
    let settled = false;
    void p.then(() => (settled = true));
    await tick();
    assert.equal(settled, false, 'not before its settle time');
    clock.advance(1);
    const r = await p;
    assert.ok(r.ok);
    assert.deepEqual({ v: r.app.version, source: r.app.source, release: r.app.release, state: r.app.state, restarts: r.app.restarts, pid: r.app.pid }, { v: '2.0.0', source: 'deployed', release: v2.release, state: 'running', restarts: 0, pid: 102 });
    assert.equal(sup.spec('thermo')!.dir, v2.dir);
    // From here it is supervised as any app: an exit is restarted with backoff.
    procs[2]!.exit(1);
    clock.advance(1000);
    assert.equal(procs.length, 4);
  });

  it('one that exits within its settle time is stopped; the old version is put back and runs again', async () => {
    const { sup, procs, clock } = setup();
    sup.start('thermo');
    const p = sup.replace(v2, 10_000);
    await tick();
    clock.advance(2000);
    procs[1]!.exit(3);
    const r = await p;
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.deepEqual({ v: r.failed.version, exit: r.failed.lastExit?.code }, { v: '2.0.0', exit: 3 });
    assert.deepEqual({ v: r.app?.version, source: r.app?.source, state: r.app?.state, pid: r.app?.pid }, { v: '1.0.0', source: 'image', state: 'running', pid: 102 });
    assert.equal(sup.spec('thermo')!.dir, spec.dir);
    clock.advance(120_000);
    assert.equal(procs.length, 3, 'the failed version is not restarted behind the old one\'s back');
  });

  it('a stopped old version stays stopped; a new app that fails is forgotten; a start that throws is an exit', async () => {
    const { sup, procs, clock } = setup();
    await sup.stop('thermo');
    const p = sup.replace(v2, 5000);
    await tick();
    procs[0]!.exit(1);
    const r = await p;
    assert.ok(!r.ok);
    assert.equal(r.app?.state, 'stopped');
    assert.equal(procs.length, 1);

    const fresh = { ...v2, name: 'door', dir: '/x/door' };
    const q = sup.replace(fresh, 5000);
    await tick();
    procs[1]!.exit(null, 'SIGSEGV');
    const f = await q;
    assert.ok(!f.ok && f.app === undefined && f.failed.lastExit?.signal === 'SIGSEGV');
    assert.deepEqual(sup.names(), ['thermo']);

    const broken = new AppSupervisor({ clock, log: () => undefined, start: () => { throw new Error('no such file'); } });
    const b = await broken.replace(fresh, 5000);
    assert.ok(!b.ok && b.failed.lastExit?.code === null);
    assert.deepEqual(broken.names(), []);
  });
});
