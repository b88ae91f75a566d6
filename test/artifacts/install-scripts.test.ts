/**
 * Install scripts are opt-in from npm 12 on (npm's allowScripts): the kit's own install (the
 * host) and the board's packages (target-modules, whose addons the kit rebuilds for the board)
 * declare every dependency whose install script they need, so a future npm that blocks
 * unreviewed scripts still installs both. A lock change that brings a new install script
 * fails here until it is reviewed (npm install-scripts approve/deny).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/index.js';

function withScripts(dir: string): string[] {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
  return [...new Set(Object.entries(lock.packages).filter(([path, p]) => path && p.hasInstallScript).map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)))].sort();
}

describe('install scripts (npm allowScripts)', () => {
  for (const [what, dir] of [
    ['the kit (host)', packageRoot()],
    ["the board's packages (target-modules)", join(packageRoot(), 'target-modules')],
  ] as const) {
    it(`${what}: every dependency with an install script is reviewed in allowScripts, and no entry is stale`, () => {
      const allow = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};
      const need = withScripts(dir);
      assert.ok(need.length > 0, 'the lock has packages with install scripts');
      assert.deepEqual(need.filter((n) => typeof allow[n] !== 'boolean'), [], 'not reviewed: run npm install-scripts approve (or deny) <pkg>');
      assert.deepEqual(Object.keys(allow).filter((k) => !need.includes(k)), [], 'entries for packages no longer in the lock');
      assert.ok(Object.values(allow).every((v) => typeof v === 'boolean'));
    });
  }

  it("the board's native addons may run their scripts: the kit rebuilds them for the board", () => {
    const allow = (JSON.parse(readFileSync(join(packageRoot(), 'target-modules/package.json'), 'utf8')) as { allowScripts: Record<string, boolean> }).allowScripts;
    for (const addon of ['@serialport/bindings-cpp', 'epoll', 'i2c-bus']) assert.equal(allow[addon], true, addon);
  });

  it("npm itself (11.16 and later) finds nothing unreviewed in the kit's install", function () {
    const r = spawnSync('npm', ['install-scripts', 'ls'], { cwd: packageRoot(), encoding: 'utf8' });
    if (r.status !== 0 && /Unknown command/i.test(`${r.stdout}${r.stderr}`)) this.skip(); // an npm before allowScripts
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /No packages with unreviewed install scripts/);
  });
});
