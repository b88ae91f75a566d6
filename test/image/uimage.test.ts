/** boot.scr: the kit's legacy script image against mkimage and dumpimage (u-boot-tools). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootScript, getBoard, layoutFor, scriptImage, ubootEnvironment } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { run } from '../helpers/tools.js';

const profile = getBoard('qemu-virt').profile;
const layout = layoutFor(profile, 0x4e4f4445);
const kitScript = bootScript(layout, ubootEnvironment(profile, 'test', layout));

describe('boot.scr (U-Boot legacy script image)', () => {
  after(cleanupTemp);

  for (const [label, script] of [
    ['the kit\'s boot script', kitScript],
    ['an odd-length script with UTF-8', 'echo héllo\nsetenv x "${a} ${b}"\n'],
  ] as const) {
    it(`is byte-identical with mkimage -T script: ${label}`, () => {
      const dir = tempDir();
      const src = join(dir, 'boot.cmd');
      writeFileSync(src, script);
      const out = join(dir, 'boot.scr');
      execFileSync('mkimage', ['-A', 'arm64', '-O', 'linux', '-T', 'script', '-C', 'none', '-n', 'nodeos test', '-d', src, out], { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } });
      const ours = scriptImage(script, { name: 'nodeos test', arch: 'arm64', time: 1700000000 });
      assert.deepEqual(ours, readFileSync(out));
    });
  }

  it('dumpimage lists it as an AArch64 script and hands back the script unchanged', () => {
    const dir = tempDir();
    const scr = join(dir, 'boot.scr');
    writeFileSync(scr, scriptImage(kitScript, { name: 'nodeos qemu-virt', arch: 'arm64', time: 0 }));
    const list = run('dumpimage', ['-l', scr]).toString();
    assert.match(list, /Image Name:\s+nodeos qemu-virt/);
    assert.match(list, /AArch64 Linux Script \(uncompressed\)/);
    run('dumpimage', ['-T', 'script', '-p', '0', '-o', join(dir, 'out.cmd'), scr]);
    // dumpimage hands back the image's data: the size table (one entry, then 0) and the script.
    const data = readFileSync(join(dir, 'out.cmd'));
    assert.equal(data.readUInt32BE(0), Buffer.byteLength(kitScript));
    assert.equal(data.readUInt32BE(4), 0);
    assert.equal(data.subarray(8).toString('utf8'), kitScript);
  });

});
