import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArtifactError, compareVersions, debianMirror, parseStanzas, releaseHashes } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe('Debian sources and indexes', () => {
  after(cleanupTemp);
  const saved = process.env.NODEOS_BSP_DEBIAN_MIRROR;
  beforeEach(() => delete process.env.NODEOS_BSP_DEBIAN_MIRROR);
  afterEach(() => (saved === undefined ? delete process.env.NODEOS_BSP_DEBIAN_MIRROR : (process.env.NODEOS_BSP_DEBIAN_MIRROR = saved)));

  function aptDir(sources: string, list = ''): string {
    const d = tempDir();
    mkdirSync(join(d, 'sources.list.d'));
    writeFileSync(join(d, 'sources.list.d', 'debian.sources'), sources);
    writeFileSync(join(d, 'sources.list'), list);
    return d;
  }

  it("reads the main archive from deb822 sources, skipping the security archive", () => {
    const d = aptDir(
      'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n' +
        'Types: deb\nURIs: http://archive.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n',
    );
    assert.equal(debianMirror(undefined, d), 'http://archive.example/debian');
  });

  it('falls back to sources.list; an option or the environment wins', () => {
    const d = aptDir('', '# comment\ndeb [arch=amd64] http://list.example/debian bookworm main\n');
    assert.equal(debianMirror(undefined, d), 'http://list.example/debian');
    assert.equal(debianMirror('http://option.example/debian/', d), 'http://option.example/debian');
    process.env.NODEOS_BSP_DEBIAN_MIRROR = 'http://env.example/debian';
    assert.equal(debianMirror(undefined, d), 'http://env.example/debian');
  });

  it('no mirror at all is a clear error', () => {
    assert.throws(() => debianMirror(undefined, aptDir('')), (e: unknown) => e instanceof ArtifactError && /--debian-mirror/.test(e.message));
  });

  it("orders versions like dpkg", () => {
    const sorted = ['1.0-1', '1.0~rc1-1', '1:0.1-1', '1.0-1+deb13u1', '1.0a-1', '1.0-10', '1.0-2'].sort(compareVersions);
    assert.deepEqual(sorted, ['1.0~rc1-1', '1.0-1', '1.0-1+deb13u1', '1.0-2', '1.0-10', '1.0a-1', '1:0.1-1']);
    assert.ok(compareVersions('6.12.117-1', '6.12.107-1') > 0);
  });

  it('parses Packages stanzas and Release SHA256 lines', () => {
    const [p] = parseStanzas('Package: a\nDescription: x\n more\nSHA256: ff\n\n');
    assert.equal(p?.get('Description'), 'x\nmore');
    const r = releaseHashes('Origin: Debian\nSHA256:\n aa 12 main/binary-arm64/Packages.xz\n bb 3 main/i18n/Index\nAcquire-By-Hash: yes\n');
    assert.deepEqual(r.get('main/binary-arm64/Packages.xz'), { sha256: 'aa', size: 12 });
    assert.equal(r.size, 2);
  });
});
