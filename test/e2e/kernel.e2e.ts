/**
 * End to end: rpi3b with the board's own kernel (`build --kernel build`): the kernel the kit
 * compiles from Debian's linux-source and the fragments (cached outside the clone; .ci/run
 * builds it before the e2e layer), its config checked against every fragment, an image with
 * no module in it, booted under QEMU raspi3b through U-Boot from the card to the REPL with
 * GPIO17 driven through pinctrl-bcm2835 and the network up.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkKernelConfig, defaultKernelConfigsDir, getBoard, prepareEmulation, startEmulation, withKernelSource, type BuildManifest } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { e2eOut } from '../helpers/out.js';
import { until } from '../helpers/until.js';

const OUT = e2eOut('kernel');
const IMAGE = join(OUT, 'nodeos-rpi3b.img');
const PROMPT = /\n> $/;
const BOOT_MS = 300_000;

describe("rpi3b with its own kernel (kernel build, QEMU raspi3b through U-Boot)", () => {
  const profile = withKernelSource(getBoard('rpi3b').profile, 'build');
  let kernel: { root: string; release: string; cached: boolean; imageBytes: number; builtinModules: number };
  let manifest: BuildManifest;

  before(async () => {
    const k = await runCli('kernel', 'build', '--board', 'rpi3b', '--out', OUT, '--json');
    assert.equal(k.code, 0, k.err);
    kernel = JSON.parse(k.out) as typeof kernel;
    const r = await runCli('build', '--board', 'rpi3b', '--kernel', 'build', '--out', OUT, '--json');
    assert.equal(r.code, 0, r.err);
    manifest = JSON.parse(readFileSync(join(OUT, 'nodeos-rpi3b.manifest.json'), 'utf8')) as BuildManifest;
  });

  it("the kernel's config meets every fragment of the board, with source/build.config: nothing is a module", () => {
    assert.match(kernel.release, /^\d+\.\d+\.\d+-nodeos$/);
    const config = join(kernel.root, 'boot', `config-${kernel.release}`);
    const r = checkKernelConfig(profile, config, defaultKernelConfigsDir(), 'build');
    assert.deepEqual(r.unmet, []);
    assert.ok(r.checked > 60, `${r.checked} settings checked`);
    const text = readFileSync(config, 'utf8');
    assert.doesNotMatch(text, /^CONFIG_[A-Z0-9_]+=m$/m, 'no module');
    // Every module the profile lists for Debian's kernel is built in here.
    const builtin = readFileSync(join(kernel.root, 'usr/lib/modules', kernel.release, 'modules.builtin'), 'utf8');
    for (const m of [...profile.kernel.modules, 'squashfs', 'loop']) {
      assert.match(builtin, new RegExp(`/${m.replace(/[-_]/g, '[-_]')}\\.ko$`, 'm'), `${m} built in`);
    }
    assert.deepEqual(readdirSync(join(kernel.root, 'usr/lib', `linux-image-${kernel.release}`, 'broadcom')), ['bcm2837-rpi-3-b.dtb']);
  });

  it('builds an image that carries the kernel and no module', () => {
    assert.equal(manifest.kernel.release, kernel.release);
    assert.deepEqual(manifest.modules, [], 'no module in the image');
  });

  it('boots from the card to the REPL, drives GPIO17 and gets an address', async () => {
    const e = prepareEmulation(IMAGE, getBoard('rpi3b').profile, {});
    const c = new Console(startEmulation(e, 'pipe'));
    try {
      await c.waitFor(PROMPT, BOOT_MS, 0);
      assert.match(c.output, /nodeos: booting slot A/);
      c.neverPrinted(/Kernel panic|Internal error|Oops|modules that did not load/, 'the own kernel\'s boot');
      assert.equal(await c.eval("require('os').release()"), `'${kernel.release}'`);
      assert.equal(await c.eval("require('fs').existsSync('/proc/modules')"), 'false', 'a kernel without module support');
      assert.match(await c.eval("require('fs').readFileSync('/proc/mounts', 'utf8')"), /\/dev\/mmcblk0p2 \/ squashfs ro,/);
      assert.match(await c.eval('board.GPIO17.write(1)'), /^<Pin GPIO17 J8:11 out value=1>$/);
      assert.equal(await c.eval('board.GPIO17.value'), '1');
      assert.equal(await c.eval('board.GPIO17.write(0).value'), '0');
      await until(() => c.messages.some((m) => /network: eth0 10\.0\.2\.15\/24 from DHCP server 10\.0\.2\.2/.test(m)), `the DHCP lease; console messages:\n${c.messages.join('\n')}`, 120_000);
    } finally {
      c.stop();
    }
  });
});
