import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { noCompilerMessage, npmEnvironment, npmRegistry } from '../../src/runtime/npm.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe('npm on the board', () => {
  after(cleanupTemp);

  it('installs onto the users partition, finds global packages', () => {
    const e = npmEnvironment(true);
    assert.equal(e.NPM_CONFIG_PREFIX, '/home/.npm-global');
    assert.equal(e.NODE_PATH, '/home/.npm-global/lib/node_modules');
    assert.equal(e.npm_config_cache, '/home/.npm');
    assert.match(e.PATH!, /^\/home\/\.npm-global\/bin:/);
    // Without a users partition nothing points there.
    assert.doesNotMatch(JSON.stringify(npmEnvironment(false)), /\/home/);
  });

  it('takes the registry from the environment, ~/.npmrc, npm\'s builtin npmrc, then npm itself', () => {
    const home = tempDir();
    const npmRoot = tempDir();
    assert.equal(npmRegistry(home, { npm_config_registry: 'http://10.0.2.100/' }, npmRoot), 'http://10.0.2.100/');
    writeFileSync(join(npmRoot, 'npmrc'), 'registry = http://builtin.test/\n');
    assert.equal(npmRegistry(home, {}, npmRoot), 'http://builtin.test/');
    writeFileSync(join(home, '.npmrc'), 'fund=false\nregistry=http://mine.test/\n');
    assert.equal(npmRegistry(home, {}, npmRoot), 'http://mine.test/');
    // npm's own default, read from an npm (here the host's), never written into the kit.
    const hostNpm = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout.trim();
    const fresh = tempDir();
    assert.equal(npmRegistry(fresh, {}, join(hostNpm, 'npm')), spawnSync('npm', ['config', 'get', 'registry', '--userconfig', '/dev/null'], { encoding: 'utf8', env: { ...process.env, npm_config_registry: '' } }).stdout.trim());
  });

  it('a package that must compile gets a message that says why and what to do', () => {
    const m = noCompilerMessage('bcrypt', '5.1.1');
    assert.match(m, /bcrypt@5\.1\.1 has a native addon with no prebuilt binary/);
    assert.match(m, /no C\/C\+\+ compiler/);
    assert.match(m, /nodeos-bsp/);
  });
});
