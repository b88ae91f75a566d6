/**
 * Verified downloads against a fake Debian mirror and npm registry on localhost, signed
 * with a throw-away key (needs gpg, gpgv, xz): each failure stops with its own code and
 * leaves the cache clean.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ArtifactError, Cache } from '../../src/index.js';
import { fetchDeb, fetchPackages, fetchRelease, type DebianOptions } from '../../src/artifacts/debian.js';
import { fetchNpm, unpackTgz } from '../../src/artifacts/npm.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Files the fake server serves; a handler may override a path (to truncate, say). */
let files = new Map<string, Buffer>();
let override: ((path: string) => Buffer | undefined) | undefined;

describe('artifact verification (fake mirror; needs gpg, gpgv, xz)', () => {
  let server: Server;
  let base: string;
  let gnupg: string;
  let keyring: string;
  const deb = randomBytes(5000);
  const tgz = randomBytes(3000);

  before(async () => {
    server = createServer((req, res) => {
      const path = decodeURIComponent(req.url ?? '/');
      const body = override?.(path) ?? files.get(path);
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    gnupg = tempDir();
    execFileSync('gpg', ['--homedir', gnupg, '--batch', '--passphrase', '', '--quick-gen-key', 'nodeos-bsp test <test@nodeos-bsp.invalid>', 'ed25519', 'sign', '1d'], { stdio: 'ignore' });
    keyring = join(gnupg, 'test.gpg');
    writeFileSync(keyring, execFileSync('gpg', ['--homedir', gnupg, '--export']));
  });
  after(() => {
    server.close();
    cleanupTemp();
  });

  function publish(): void {
    files = new Map();
    override = undefined;
    const packages = `Package: demo\nVersion: 1.0-1\nArchitecture: arm64\nFilename: pool/main/d/demo_1.0-1_arm64.deb\nSize: ${deb.length}\nSHA256: ${sha(deb)}\nDepends: libc6\n\n`;
    const xz = execFileSync('xz', ['-c'], { input: packages });
    const release = `Origin: Test\nSuite: testing\nSHA256:\n ${sha(xz)} ${xz.length} main/binary-arm64/Packages.xz\n`;
    const inRelease = execFileSync('gpg', ['--homedir', gnupg, '--batch', '--clearsign', '--output', '-'], { input: release });
    files.set('/dists/testing/InRelease', inRelease);
    files.set('/dists/testing/main/binary-arm64/Packages.xz', xz);
    files.set('/pool/main/d/demo_1.0-1_arm64.deb', deb);
    files.set('/demo/-/demo-1.0.0.tgz', tgz);
  }

  const opts = (cache: Cache, offline = false): DebianOptions => ({ mirror: base, suite: 'testing', arch: 'arm64', keyring, cache, offline });
  const code = (c: string) => (e: unknown) => e instanceof ArtifactError && e.code === c;
  /** Nothing unverified may stay behind: no temp files, no blobs beyond `allowed`. */
  function assertClean(cache: Cache, allowed: string[] = []): void {
    const tmp = join(cache.root, 'tmp');
    assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], [], 'no temporary files left');
    const blobs = join(cache.root, 'blobs/sha256');
    assert.deepEqual((existsSync(blobs) ? readdirSync(blobs) : []).sort(), [...allowed].sort());
  }

  it('accepts a correctly signed and hashed chain: InRelease -> Packages -> .deb', async () => {
    publish();
    const cache = new Cache(tempDir());
    const release = await fetchRelease(opts(cache));
    const index = await fetchPackages(opts(cache), release, 'main');
    assert.equal(index[0]?.name, 'demo');
    const path = await fetchDeb(opts(cache), index[0]!);
    assert.equal(path, cache.blobPath(sha(deb)));
    // A second run needs no network at all.
    files.clear();
    const again = await fetchDeb(opts(cache, true), index[0]!);
    assert.equal(again, path);
    assert.equal((await fetchRelease(opts(cache, true))).includes('Packages.xz'), true);
  });

  it('ESIGNATURE: a tampered InRelease is refused and not cached', async () => {
    publish();
    const ir = files.get('/dists/testing/InRelease')!.toString().replace('Origin: Test', 'Origin: Evil');
    files.set('/dists/testing/InRelease', Buffer.from(ir));
    const cache = new Cache(tempDir());
    await assert.rejects(fetchRelease(opts(cache)), code('ESIGNATURE'));
    assert.equal(existsSync(cache.namedPath('debian', 'testing', 'InRelease')), false);
    assertClean(cache);
  });

  it('ESIGNATURE: a release signed by a key outside the keyring is refused', async () => {
    publish();
    const cache = new Cache(tempDir());
    const other = join(tempDir(), 'empty.gpg');
    writeFileSync(other, '');
    await assert.rejects(fetchRelease({ ...opts(cache), keyring: other }), code('ESIGNATURE'));
    assertClean(cache);
  });

  it('ECHECKSUM: a .deb whose bytes differ from the index is discarded', async () => {
    publish();
    const cache = new Cache(tempDir());
    const release = await fetchRelease(opts(cache));
    const index = await fetchPackages(opts(cache), release, 'main');
    const bad = Buffer.from(deb);
    bad[100]! ^= 1;
    files.set('/pool/main/d/demo_1.0-1_arm64.deb', bad);
    await assert.rejects(fetchDeb(opts(cache), index[0]!), code('ECHECKSUM'));
    assertClean(cache, [sha(files.get('/dists/testing/main/binary-arm64/Packages.xz')!)]);
  });

  it('ECHECKSUM: a Packages index that does not match InRelease is discarded', async () => {
    publish();
    const cache = new Cache(tempDir());
    const release = await fetchRelease(opts(cache));
    const tampered = Buffer.from(files.get('/dists/testing/main/binary-arm64/Packages.xz')!);
    tampered[tampered.length - 20]! ^= 0xff;
    files.set('/dists/testing/main/binary-arm64/Packages.xz', tampered);
    await assert.rejects(fetchPackages(opts(cache), release, 'main'), code('ECHECKSUM'));
    assertClean(cache);
  });

  it('ETRUNCATED: a short download is discarded', async () => {
    publish();
    const cache = new Cache(tempDir());
    const release = await fetchRelease(opts(cache));
    const index = await fetchPackages(opts(cache), release, 'main');
    override = (p) => (p.endsWith('.deb') ? deb.subarray(0, 4000) : undefined);
    await assert.rejects(fetchDeb(opts(cache), index[0]!), code('ETRUNCATED'));
    assertClean(cache, [sha(files.get('/dists/testing/main/binary-arm64/Packages.xz')!)]);
  });

  it('a corrupted cache entry is caught when it is used, not trusted', async () => {
    publish();
    const cache = new Cache(tempDir());
    const p = { name: 'demo', filename: 'pool/main/d/demo_1.0-1_arm64.deb', sha256: sha(deb), size: deb.length };
    await fetchDeb(opts(cache), p);
    writeFileSync(cache.blobPath(sha(deb)), randomBytes(deb.length));
    cache.onRebuild = () => undefined;
    await assert.rejects(fetchDeb(opts(cache, true), p), code('ECHECKSUM'));
    assert.equal(existsSync(cache.blobPath(sha(deb))), false, 'the bad blob is removed, as the message says');
    // Online, a bad blob is removed and fetched again.
    await fetchDeb(opts(cache), p);
    writeFileSync(cache.blobPath(sha(deb)), randomBytes(deb.length));
    const again = await fetchDeb(opts(cache), p);
    assert.equal(sha(readFileSync(again)), sha(deb));
  });

  it('EOFFLINE: offline with an empty cache says what to run', async () => {
    publish();
    const cache = new Cache(tempDir());
    await assert.rejects(fetchRelease(opts(cache, true)), (e: unknown) => e instanceof ArtifactError && e.code === 'EOFFLINE' && /nodeos-bsp fetch/.test(e.message));
    await assert.rejects(fetchDeb(opts(cache, true), { name: 'demo', filename: 'x', sha256: sha(deb), size: 1 }), code('EOFFLINE'));
  });

  it('a verified tarball is unpacked once; a broken one leaves no tree behind', () => {
    const cache = new Cache(tempDir());
    const src = tempDir();
    writeFileSync(join(src, 'hello.txt'), 'hi');
    const tgz = join(tempDir(), 'p.tgz');
    execFileSync('tar', ['-czf', tgz, '-C', src, 'hello.txt']);
    const dir = unpackTgz(cache, tgz, 'a'.repeat(64));
    assert.equal(readFileSync(join(dir, 'hello.txt'), 'utf8'), 'hi');
    assert.equal(unpackTgz(cache, '/nonexistent.tgz', 'a'.repeat(64)), dir, 'second call reuses the tree');
    // A later build (a new process: a new Cache) checks the tree against its manifest first:
    // a tampered file, or an added one, is never used; the tree is made again from the blob.
    const seen: string[] = [];
    for (const tamper of [() => writeFileSync(join(dir, 'hello.txt'), 'evil'), () => writeFileSync(join(dir, 'extra'), 'x')]) {
      tamper();
      const later = new Cache(cache.root);
      later.onRebuild = (what, why) => seen.push(why);
      assert.throws(() => unpackTgz(later, '/nonexistent.tgz', 'a'.repeat(64)), code('EARTIFACT'), 'not used as it is');
      assert.equal(readFileSync(join(unpackTgz(later, tgz, 'a'.repeat(64)), 'hello.txt'), 'utf8'), 'hi');
      assert.equal(existsSync(join(dir, 'extra')), false);
    }
    assert.deepEqual(seen.map((w) => w.split(' ')[2]), ['changed', 'added']);
    const bad = join(tempDir(), 'bad.tgz');
    writeFileSync(bad, 'not a tarball');
    assert.throws(() => unpackTgz(cache, bad, 'b'.repeat(64)), code('EARTIFACT'));
    assert.equal(existsSync(cache.unpackedPath('b'.repeat(64))), false);
    assertClean(cache);
  });

  it('two builders making the same tree at once: the second keeps the first\'s, never removes it under its reader', () => {
    const root = tempDir();
    const a = new Cache(root);
    const b = new Cache(root);
    const dest = a.namedPath('derived', 'race');
    let inner = '';
    const made = a.tree(dest, 'race', (tmpA) => {
      writeFileSync(join(tmpA, 'f'), 'from a');
      // Meanwhile another process makes and finishes the same tree.
      inner = b.tree(dest, 'race', (tmpB) => writeFileSync(join(tmpB, 'f'), 'from b'));
    });
    assert.equal(made, inner);
    assert.equal(readFileSync(join(dest, 'f'), 'utf8'), 'from b', 'the finished tree was kept');
    assertClean(a);
  });

  it('a derived file that no longer matches its input is made again, never used', () => {
    const cache = new Cache(tempDir());
    cache.onRebuild = () => undefined;
    let made = 0;
    const make = (): Buffer => (made++, Buffer.from('derived'));
    assert.equal(cache.derivedFile('x.bin', make).toString(), 'derived');
    assert.equal(new Cache(cache.root).derivedFile('x.bin', make).toString(), 'derived');
    assert.equal(made, 1, 'reused while it checks');
    // Same size, and the modification time put back: the change time still tells.
    const file = join(cache.namedPath('derived', 'x.bin'), 'data');
    const { atime, mtime } = statSync(file);
    writeFileSync(file, 'tampere');
    utimesSync(file, atime, mtime);
    const later = new Cache(cache.root);
    later.onRebuild = () => undefined;
    assert.equal(later.derivedFile('x.bin', make).toString(), 'derived');
    assert.equal(made, 2);
  });

  it('npm: integrity mismatch is ECHECKSUM, a good tarball is cached by SHA-256', async () => {
    publish();
    const cache = new Cache(tempDir());
    const good = `sha512-${createHash('sha512').update(tgz).digest('base64')}`;
    const t = { name: 'demo', version: '1.0.0', tarball: 'demo/-/demo-1.0.0.tgz' };
    await assert.rejects(fetchNpm(base, { ...t, integrity: `sha512-${createHash('sha512').update('other').digest('base64')}` }, cache, false), code('ECHECKSUM'));
    assertClean(cache);
    const r = await fetchNpm(base, { ...t, integrity: good }, cache, false);
    assert.equal(r.sha256, sha(tgz));
    assertClean(cache, [sha(tgz)]);
  });
});
