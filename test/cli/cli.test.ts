import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { defaultBoardsDir, getBoard, layoutFor, packageRoot, ubootEnvironment } from '../../src/index.js';
import { closest } from '../../src/cli/index.js';
import { progressPrinter } from '../../src/cli/flash.js';
import { userKey } from '../helpers/ssh.js';
import { runCli } from '../helpers/cli.js';
import { cleanupTemp, copyDir, tempDir } from '../helpers/tmp.js';

const DEBIAN = join(import.meta.dirname, '../fixtures/config-6.12.117+deb13-arm64');

describe('cli', () => {
  after(cleanupTemp);

  it('boards list --json lists the boards', async () => {
    const r = await runCli('boards', 'list', '--json');
    assert.equal(r.code, 0);
    const list = JSON.parse(r.out) as { id: string; status: string }[];
    assert.ok(list.some((b) => b.id === 'rpi3b' && b.status === 'supported'));
    assert.ok(!list.some((b) => b.id === 'bcm2837'), 'SoC profiles are not boards');
  });

  it('boards check passes on the shipped profiles and exits 1 with codes on broken ones', async () => {
    const ok = await runCli('boards', 'check');
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^ok: 12 board\(s\) checked/);
    const dir = copyDir(defaultBoardsDir());
    const p = join(dir, 'rpi3b.yaml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(p, readFileSync(p, 'utf8').replace('extends: bcm2837', 'extends: bcm2838'));
    const bad = await runCli('boards', 'check', '--boards-dir', dir);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^rpi3b\.yaml \/extends: extends "bcm2838", which no profile declares.* \[EPROFILE_EXTENDS_UNKNOWN\]$/m);
    assert.doesNotMatch(bad.err, /\n\s+at /, 'no stack trace');
    const json = await runCli('boards', 'check', '--boards-dir', dir, '--json');
    const parsed = JSON.parse(json.out) as { ok: boolean; findings: { code: string }[] };
    assert.equal(parsed.ok, false);
    assert.equal(parsed.findings[0]?.code, 'EPROFILE_EXTENDS_UNKNOWN');
  });

  it('an unknown board is one line with its code, exit 1', async () => {
    const r = await runCli('pinout', '--board', 'rpi9');
    assert.equal(r.code, 1);
    assert.equal(r.err.trim().split('\n').length, 1);
    assert.match(r.err, /unknown board "rpi9".*\[EBOARD_UNKNOWN\]/);
  });

  it('pinout --board rpi3b prints the summary and header; --json gives pins', async () => {
    const r = await runCli('pinout', '--board', 'rpi3b');
    assert.equal(r.code, 0);
    assert.match(r.out, /GPIO17 \(11\) \(12\) GPIO18/);
    assert.ok(!r.out.includes('\x1b['), 'no colour when not a TTY');
    const j = JSON.parse((await runCli('pinout', '--board', 'rpi3b', '--json')).out) as { pins: { pin: number; names: string[] }[] };
    assert.equal(j.pins.length, 40);
    assert.deepEqual(j.pins[10]?.names, ['GPIO17', 'BCM17', 'BOARD11', 'J8:11']);
  });

  it('kernel check: exit 0 on the Debian config, 1 naming the unmet symbols otherwise', async () => {
    const ok = await runCli('kernel', 'check', '--board', 'rpi3b', '--config', DEBIAN);
    assert.equal(ok.code, 0, ok.err);
    const bad = await runCli('kernel', 'check', '--board', 'rpi5b', '--config', DEBIAN);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^CONFIG_PINCTRL_RP1: want y, have absent \(kernel-configs\/soc\/bcm2712\.config:\d+/m);
    // --out and --lock only say where --package's lock is: without it they are refused, not ignored.
    for (const extra of [['--out', 'elsewhere'], ['--lock', 'x.lock.json']]) {
      const r = await runCli('kernel', 'check', '--board', 'rpi3b', '--config', DEBIAN, ...extra);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /add --package, or drop them \[EUSAGE\]/);
    }
  });

  it('kernel config writes the merged config and reports overrides', async () => {
    const out = join(tempDir(), '.config');
    const r = await runCli('kernel', 'config', '--board', 'rpi3b', '--base', DEBIAN, '-o', out);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /Value of CONFIG_EXT4_FS is redefined/);
    assert.match(readFileSync(out, 'utf8'), /^CONFIG_EXT4_FS=y$/m);
  });

  it('boards new scaffolds a profile that passes check, and refuses to overwrite', async () => {
    const dir = copyDir(defaultBoardsDir());
    const r = await runCli('boards', 'new', 'mypi', '--from', 'rpi3b', '--name', 'My Pi', '--boards-dir', dir);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(join(dir, 'mypi.yaml')));
    const check = await runCli('boards', 'check', 'mypi', '--boards-dir', dir, '--json');
    assert.equal(check.code, 0, check.out);
    const show = JSON.parse((await runCli('boards', 'show', 'mypi', '--boards-dir', dir, '--json')).out) as { name: string; extends: string; status: string };
    assert.deepEqual([show.name, show.extends, show.status], ['My Pi', 'bcm2837', 'wip']);
    const again = await runCli('boards', 'new', 'mypi', '--from', 'rpi3b', '--boards-dir', dir);
    assert.equal(again.code, 1);
    assert.match(again.err, /\[EEXIST\]/);
  });

  it('build and flash check --ssh-key files before doing anything, and never print the key', async () => {
    const dir = tempDir();
    const k = userKey(dir, 'id');
    const priv = readFileSync(k.file, 'utf8');
    const out = join(dir, 'out');
    const b = await runCli('build', '--board', 'rpi3b', '--out', out, '--offline', '--ssh-key', k.file);
    assert.equal(b.code, 1);
    assert.match(b.err, /id line 1: this is a private key: give the public key \(the \.pub file next to it\) \[ESSH_KEY\]/);
    assert.ok(!b.err.includes(priv.split('\n')[1]!.slice(0, 16)), 'no key material in the message');
    assert.equal(existsSync(out), false, 'nothing built');
    const f = await runCli('flash', join(dir, 'none.img'), '--device', join(dir, 'card'), '--force-file', '--yes', '--ssh-key', join(dir, 'missing.pub'));
    assert.equal(f.code, 1);
    assert.match(f.err, /cannot read the SSH key file .*missing\.pub: ENOENT \[ESSH_KEY\]/);
    assert.equal(existsSync(join(dir, 'card')), false);
  });

  it('build --ssh-key puts the keys into the image\'s uboot.env (nodeos_ssh_keys)', () => {
    const dir = tempDir();
    const [a, b] = [userKey(dir, 'a').pub.trim(), userKey(dir, 'b').pub.trim()];
    const profile = getBoard('rpi3b').profile;
    const layout = layoutFor(profile, 0x12345678);
    const vars = new Map(ubootEnvironment(profile, 'test', layout, { nodeos_ssh_keys: [a, b].join('\n') }));
    assert.deepEqual(vars.get('nodeos_ssh_keys')!.split('\n'), [a, b]);
    assert.equal(new Map(ubootEnvironment(profile, 'test', layout)).has('nodeos_ssh_keys'), false);
  });

  it('every command has --help with examples', async () => {
    const commands = [
      [], ['boards'], ['boards', 'list'], ['boards', 'show'], ['boards', 'check'], ['boards', 'new'], ['boards', 'schema'], ['pinout'],
      ['kernel'], ['kernel', 'check'], ['kernel', 'config'], ['docs'], ['env'], ['env', 'print'], ['env', 'set'], ['env', 'create'],
      ['build'], ['fetch'], ['emulate'], ['drives'], ['flash'], ['repl'], ['update'], ['keys'], ['keys', 'create'], ['deploy'], ['settings'], ['settings', 'show'], ['completion'],
      ['fleet'], ['fleet', 'status'], ['fleet', 'update'], ['fleet', 'rollouts'], ['fleet', 'reboot'], ['fleet', 'restart-app'], ['fleet', 'broker-config'],
    ];
    for (const c of commands) {
      const r = await runCli(...c, '--help');
      assert.equal(r.code, 0, c.join(' '));
      assert.match(r.out, /Examples:\n\s+\$ nodeos-bsp/, c.join(' '));
    }
  });

  it('keys create --name names the pair (nodeos-fleet for fleet jobs) and refuses a name that is not a file name', async () => {
    const dir = tempDir();
    const r = await runCli('keys', 'create', '--name', 'nodeos-fleet', '--out', dir, '--json');
    assert.equal(r.code, 0, r.err);
    const k = JSON.parse(r.out) as { privateKey: string; publicKey: string };
    assert.deepEqual([k.privateKey, k.publicKey], [join(dir, 'nodeos-fleet.key'), join(dir, 'nodeos-fleet.pub')]);
    assert.equal(statSync(k.privateKey).mode & 0o777, 0o600);
    assert.match((await runCli('keys', 'create', '--name', '../x', '--out', dir)).err, /--name "\.\.\/x": use letters, digits/);
  });

  it('bad usage exits 2', async () => {
    const r = await runCli('kernel', 'check');
    assert.equal(r.code, 2);
    assert.match(r.err, /required option '-b, --board <id>'/);
  });

  it('an unknown command says so with a "did you mean", exits 2, also with --help; bad usage a command finds is 2 too', async () => {
    const u = await runCli('frobnicate', '--help');
    assert.deepEqual([u.code, u.out], [2, '']);
    assert.match(u.err, /unknown command "frobnicate"; nodeos-bsp --help lists the commands/);
    const t = await runCli('bords', 'list');
    assert.equal(t.code, 2);
    assert.match(t.err, /unknown command "bords" \(did you mean "boards"\?\)/);
    assert.equal(closest('flsh', ['flash', 'fetch', 'boards']), 'flash');
    assert.equal(closest('xyzzy', ['flash', 'fetch', 'boards']), undefined);
    const e = await runCli('emulate', 'x.img', '--board', 'qemu-virt', '--no-net', '--ssh');
    assert.equal(e.code, 2);
    assert.match(e.err, /need the network: drop --no-net \[EUSAGE\]/);
    assert.equal((await runCli('help', 'boards')).code, 0);
  });

  it('a closed pipe ends the command quietly (nodeos-bsp boards schema | head -c1)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot(), 'src/cli/main.ts'), 'boards', 'schema'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(err, '', 'no stack trace');
    assert.equal(code, 141, 'the status a shell gives a command ended by SIGPIPE');
  });

  it('flash progress ends with what was written, the average speed and the time taken', () => {
    let t = 0;
    let text = '';
    const print = progressPrinter({ out: () => undefined, err: (s) => (text += s), color: true }, false, true, () => t);
    print({ phase: 'flashing', done: 0, total: 100e6, bytesPerSecond: 0, etaSeconds: null });
    t = 4000;
    print({ phase: 'flashing', done: 100e6, total: 100e6, bytesPerSecond: 30e6, etaSeconds: 0 });
    t = 6000;
    print({ phase: 'finished', done: 100e6, total: 100e6, bytesPerSecond: 0, etaSeconds: 0 });
    const last = text.split('\r').at(-1)!;
    assert.match(last, /finished .* 100% {2}100 MB written at 25\.0 MB\/s average, 6\.0 s in all/);
    assert.doesNotMatch(last, /0\.0 MB\/s|ETA/);
  });

  it('the README boards table and the JSON Schema file are up to date (npm run docs)', async () => {
    const r = await runCli('docs');
    assert.equal(r.code, 0, r.err);
  });
});
