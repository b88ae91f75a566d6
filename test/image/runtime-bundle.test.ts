import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUNTIME_ENTRIES, runtimeFiles } from '../../src/image/initramfs.js';
import { hostCodeInBundles, META_FILES, stampRuntimeBundle } from '../../src/image/runtime-stamp.js';
import { packageRoot } from '../../src/paths.js';
import { thrownCode as code } from '../helpers/error-code.js';

/** A package root with dist/board bundles made (and stamped) from one input. */
function fakeRoot(bundle: string): string {
  const root = mkdtempSync(join(tmpdir(), 'nodeos-bundle-'));
  mkdirSync(join(root, 'dist/src/runtime'), { recursive: true });
  mkdirSync(join(root, 'dist/board/runtime'), { recursive: true });
  writeFileSync(join(root, 'dist/src/runtime/init.js'), 'export {};\n');
  writeFileSync(join(root, 'dist/board/meta.json'), JSON.stringify({ inputs: { 'dist/src/runtime/init.js': {} } }));
  writeFileSync(join(root, 'dist/board/meta-fleet.json'), JSON.stringify({ inputs: { 'dist/src/runtime/init.js': {} } }));
  for (const rel of RUNTIME_ENTRIES) writeFileSync(join(root, 'dist/board', rel), bundle);
  stampRuntimeBundle(root);
  return root;
}


describe('runtime bundle (dist/board)', () => {
  const roots: string[] = [];
  after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

  it('the kit\'s own bundles exist, are current and import only what the image ships', () => {
    const files = runtimeFiles();
    assert.deepEqual(files.map((f) => f.rel), RUNTIME_ENTRIES);
    // One file per entry: no relative import is left to resolve on the board.
    for (const f of files) assert.doesNotMatch(f.data.toString(), /from\s*["']\.\.?\//, f.rel);
    // The fleet agent carries mqtt: the stamp covers the package's files, so another mqtt version makes the bundle stale.
    const inputs = Object.keys((JSON.parse(readFileSync(join(packageRoot(), 'dist/board/inputs.json'), 'utf8')) as { inputs: object }).inputs);
    assert.ok(inputs.some((i) => i.startsWith('node_modules/mqtt/')), 'mqtt is among the stamped inputs');
    const main = JSON.parse(readFileSync(join(packageRoot(), 'dist/board/meta.json'), 'utf8')) as { inputs: object };
    assert.ok(!Object.keys(main.inputs).some((i) => i.includes('node_modules/')), 'init, the REPL and the SSH server carry no package');
  });

  it('no device bundle carries the mock backends; npm run build refuses one that would', () => {
    for (const f of META_FILES) {
      const meta = JSON.parse(readFileSync(join(packageRoot(), 'dist/board', f), 'utf8')) as Parameters<typeof hostCodeInBundles>[0];
      assert.deepEqual(hostCodeInBundles(meta), [], f);
      assert.ok(Object.keys(meta.inputs).length > 10, `${f} lists the inputs`);
    }
    const root = fakeRoot('export {};\n');
    roots.push(root);
    writeFileSync(join(root, 'dist/board/meta.json'), JSON.stringify({ inputs: {}, outputs: { 'dist/board/runtime/repl.js': { inputs: { 'dist/src/runtime/board/mock.js': { bytesInOutput: 120 }, 'dist/src/runtime/repl.js': { bytesInOutput: 80 } } } } }));
    assert.throws(() => stampRuntimeBundle(root), /host-only code \(the mock backends\): dist\/board\/runtime\/repl\.js: dist\/src\/runtime\/board\/mock\.js/);
  });

  it('takes bundles made from the inputs as they are, whatever the files\' times (a copied kit)', () => {
    const root = fakeRoot('import { readFileSync } from "node:fs";\nimport { Gpio } from "onoff";\n');
    roots.push(root);
    utimesSync(join(root, 'dist/src/runtime/init.js'), 4e9, 4e9);
    assert.equal(runtimeFiles(root).length, RUNTIME_ENTRIES.length);
  });

  it('refuses a bundle whose input changed since, or without its stamp (ETOOL: run npm run build)', () => {
    const root = fakeRoot('export {};\n');
    roots.push(root);
    writeFileSync(join(root, 'dist/src/runtime/init.js'), 'export const changed = 1;\n');
    assert.equal(code(() => runtimeFiles(root)), 'ETOOL');
    const root2 = fakeRoot('export {};\n');
    roots.push(root2);
    rmSync(join(root2, 'dist/board/inputs.json'));
    assert.equal(code(() => runtimeFiles(root2)), 'ETOOL');
  });

  it('refuses a missing bundle', () => {
    const root = fakeRoot('export {};\n');
    roots.push(root);
    rmSync(join(root, 'dist/board/runtime/repl.js'));
    assert.equal(code(() => runtimeFiles(root)), 'ETOOL');
  });

  it('refuses a bundle importing a package the image does not ship (ERUNTIME_DEPS)', () => {
    const root = fakeRoot('import {\n  parse\n} from "yaml";\n');
    roots.push(root);
    assert.equal(code(() => runtimeFiles(root)), 'ERUNTIME_DEPS');
  });
});
