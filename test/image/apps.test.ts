import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/image/apps.js';
import { appName, appSettings } from '../../src/apps/manifest.js';
import { Cache } from '../../src/artifacts/index.js';
import { packageRoot } from '../../src/paths.js';
import { thrownCode as code } from '../helpers/error-code.js';


describe('apps in the image (build --app)', () => {
  let tmp: string;
  before(() => (tmp = mkdtempSync(join(tmpdir(), 'nodeos-apps-'))));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const cache = (): Cache => new Cache(join(tmp, 'cache'));

  it('names an app by its package name without the scope, and refuses names npm would refuse', () => {
    assert.equal(appName('thermometer', 'd'), 'thermometer');
    assert.equal(appName('@acme/door-opener', 'd'), 'door-opener');
    for (const bad of ['Thermo', '../x', '', 42, '@acme/']) assert.equal(code(() => appName(bad, 'd')), 'EAPP', String(bad));
  });

  it('reads how the app runs from package.json: nodeos.main, else its bin, else main, else index.js', () => {
    assert.equal(appSettings({ name: 'a', main: 'lib.js', bin: 'cli.js' }, 'd').main, 'cli.js');
    assert.equal(appSettings({ name: '@x/a', main: 'lib.js', bin: { other: 'o.js', a: 'a.js' } }, 'd').main, 'a.js');
    assert.equal(appSettings({ name: 'a', main: 'lib.js', bin: { other: 'o.js', more: 'm.js' } }, 'd').main, 'lib.js', 'no bin that is clearly the program');
    assert.deepEqual(appSettings({ name: 'a', version: '1.2.3', main: 'lib/a.js', nodeos: { network: true } }, 'd'), { name: 'a', version: '1.2.3', main: 'lib/a.js', network: true, root: false });
    assert.equal(appSettings({ name: 'a', main: 'lib/a.js', nodeos: { main: 'srv.js' } }, 'd').main, 'srv.js');
    assert.equal(appSettings({ name: 'a' }, 'd').main, 'index.js');
    assert.equal(code(() => appSettings({ name: 'a', nodeos: { mian: 'x' } as never }, 'd')), 'EAPP');
    assert.equal(code(() => appSettings({ name: 'a', nodeos: { network: 'yes' } }, 'd')), 'EAPP');
    assert.equal(code(() => appSettings({ name: 'a', main: '../etc/passwd' }, 'd')), 'EAPP');
  });

  it('takes examples/thermometer: the files npm would publish, placed under /usr/lib/nodeos/apps', () => {
    const app = buildApp(join(packageRoot(), 'examples/thermometer'), '/nonexistent-node', '24.0.0', 'arm64', cache(), false);
    assert.equal(app.name, 'thermometer');
    assert.equal(app.dir, '/usr/lib/nodeos/apps/thermometer');
    assert.equal(app.main, 'server.js');
    assert.deepEqual(app.files.map((f) => f.rel), ['package.json', 'server.js', 'tmp105.js']);
    assert.deepEqual(app.packages, []);
    // The same inputs, the same hash (it goes into the build id).
    assert.equal(buildApp(join(packageRoot(), 'examples/thermometer'), '/x', '24.0.0', 'arm64', cache(), false).hash, app.hash);
  });

  it('refuses an app without a lock file, or whose main file would not be published', () => {
    const dir = join(tmp, 'nolock');
    cpSync(join(packageRoot(), 'examples/thermometer'), dir, { recursive: true });
    rmSync(join(dir, 'package-lock.json'));
    assert.equal(code(() => buildApp(dir, '/x', '24.0.0', 'arm64', cache(), false)), 'EAPP_LOCK');
    const dir2 = join(tmp, 'nomain');
    cpSync(join(packageRoot(), 'examples/thermometer'), dir2, { recursive: true });
    writeFileSync(join(dir2, 'package.json'), JSON.stringify({ name: 'nomain', version: '1.0.0', main: 'srv.js', files: ['tmp105.js'] }));
    assert.equal(code(() => buildApp(dir2, '/x', '24.0.0', 'arm64', cache(), false)), 'EAPP');
    assert.equal(code(() => buildApp(join(tmp, 'missing'), '/x', '24.0.0', 'arm64', cache(), false)), 'EAPP');
  });
});
