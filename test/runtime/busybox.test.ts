import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { insmodAll } from '../../src/runtime/busybox.js';

describe('insmodAll (one shell loads the modules in order)', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodeos-insmod-'));
    // A fake insmod with busybox's messages: logs each call, fails as the module's name says.
    writeFileSync(join(dir, 'insmod'), `#!/bin/sh
echo "$1" >> "${dir}/calls"
case "$1" in
  *loaded.ko) echo "insmod: can't insert '$1': File exists" >&2; exit 1 ;;
  *broken.ko) echo "insmod: can't insert '$1': Invalid module format" >&2; exit 1 ;;
esac
`);
    chmodSync(join(dir, 'insmod'), 0o755);
    env = { PATH: `${dir}:/usr/bin:/bin` };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads every module in order and reports only real failures, by name', () => {
    const mods = ['a', 'loaded', 'broken', 'b'].map((n) => ({ name: n, path: `/lib/modules/x/${n}.ko` }));
    const failed = insmodAll(mods, ['/bin/sh'], env);
    assert.deepEqual(readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n'), mods.map((m) => m.path));
    assert.deepEqual(failed, ["broken (insmod: can't insert '/lib/modules/x/broken.ko': Invalid module format)"]);
  });

  it('says so when the shell itself cannot run', () => {
    const failed = insmodAll([{ name: 'a', path: '/a.ko' }], [join(dir, 'no-such-shell')], env);
    assert.equal(failed.length, 1);
    assert.match(failed[0]!, /^all \(.*ENOENT/);
  });

  it('does nothing for no modules', () => assert.deepEqual(insmodAll([], ['/bin/false']), []));
});
