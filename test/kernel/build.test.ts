/**
 * The board's own kernel, without compiling one: which fragments a build applies and how,
 * the built-in module list read from modules.builtin.modinfo, --kernel, which packages a
 * build fetches, and the lock that keeps two builds of one work tree apart. The compile
 * itself is in test/e2e/kernel.e2e.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BspError,
  builtinModules,
  checkKernelConfig,
  debPackagesFor,
  defaultKernelConfigsDir,
  followKernelMeta,
  getBoard,
  kernelFiles,
  kernelFragments,
  withKernelSource,
  type DebPackage,
} from '../../src/index.js';
import { buildFragments, kernelKey, partsBuiltIn } from '../../src/kernel/build.js';
import { parseConfig } from '../../src/kernel/config.js';
import { withDirLock } from '../../src/dir-lock.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const DEBIAN = join(import.meta.dirname, '../fixtures/config-6.12.117+deb13-arm64');

describe('kernel build: fragments and sources', () => {
  after(cleanupTemp);

  it("a Debian kernel is checked with source/debian.config, the kit's with source/build.config, each before the profile's", () => {
    const rpi3b = getBoard('rpi3b').profile;
    assert.deepEqual(kernelFragments(rpi3b), ['source/debian.config', ...rpi3b.kernel.fragments]);
    assert.deepEqual(kernelFragments(withKernelSource(rpi3b, 'build')), ['source/build.config', ...rpi3b.kernel.fragments]);
  });

  it('a build applies every "=m" of the fragments as built in, and nothing else changes', () => {
    const rpi3b = withKernelSource(getBoard('rpi3b').profile, 'build');
    const frags = buildFragments(rpi3b, defaultKernelConfigsDir());
    assert.equal(frags[0]!.file, 'source/build.config');
    const usbNet = frags.find((f) => f.file === 'features/usb-net.config')!;
    assert.match(usbNet.text, /^CONFIG_USB_NET_DRIVERS=y$/m, 'the fragment says =m (Debian builds it as a module)');
    assert.doesNotMatch(frags.map((f) => f.text).join('\n'), /=m$/m);
    assert.match(frags[0]!.text, /^# CONFIG_MODULES is not set$/m);
  });

  it("Debian's config still meets every supported board's fragments (source/debian.config: modules)", () => {
    for (const id of ['rpi3b', 'rpi3bplus', 'rpi3aplus', 'rpi0-2w', 'rpi4b', 'rpi400', 'qemu-virt']) {
      const r = checkKernelConfig(getBoard(id).profile, DEBIAN);
      assert.deepEqual(r.unmet, [], id);
    }
  });

  it("Debian's config fails source/build.config: it loads modules", () => {
    const r = checkKernelConfig(getBoard('rpi3b').profile, DEBIAN, defaultKernelConfigsDir(), 'build');
    assert.deepEqual(
      r.unmet.map((u) => [u.symbol, u.actual, u.fragment]),
      [
        ['CONFIG_MODULES', 'y', 'source/build.config'],
        ['CONFIG_LOCALVERSION', '""', 'source/build.config'],
        ['CONFIG_NO_HZ_IDLE', 'is not set', 'source/build.config'],
        ['CONFIG_NR_CPUS', '512', 'source/build.config'],
      ],
    );
  });

  it('--kernel takes "build" or a Debian kernel package, and refuses anything else with EUSAGE', () => {
    const rpi3b = getBoard('rpi3b').profile;
    assert.equal(withKernelSource(rpi3b, 'build').kernel.source, 'build');
    assert.deepEqual(withKernelSource(rpi3b, 'linux-image-6.12.117+deb13-arm64').kernel.source, { debian: 'linux-image-6.12.117+deb13-arm64' });
    assert.deepEqual(withKernelSource(rpi3b, 'linux-image-arm64@trixie-backports').kernel.source, { debian: 'linux-image-arm64', suite: 'trixie-backports' });
    for (const bad of ['', 'Build', 'linux-source', '../linux-image-arm64', 'linux-image-arm64 --foo', 'linux-image-arm64@', 'linux-image-arm64@../x']) {
      assert.throws(() => withKernelSource(rpi3b, bad), (e: BspError) => e.code === 'EUSAGE' && /say "build"/.test(e.message), bad);
    }
    assert.equal(rpi3b.kernel.source !== 'build' && rpi3b.kernel.source.debian, 'linux-image-arm64', 'the profile itself is unchanged');
  });

  it("a build fetches linux-source (followed to linux-source-<version>), and Debian's build of it for its driver tables", () => {
    const rpi3b = getBoard('rpi3b').profile;
    assert.equal(debPackagesFor(rpi3b).kernel, 'linux-image-arm64');
    const built = debPackagesFor(withKernelSource(rpi3b, 'build'));
    assert.equal(built.kernel, 'linux-image-arm64');
    assert.equal(built.kernelSource, 'linux-source');
    const pkg = (name: string, version: string, depends = ''): DebPackage => ({ name, version, architecture: 'all', filename: `pool/${name}.deb`, size: 1, sha256: 'x', depends, component: 'main' });
    const index = [pkg('linux-source', '6.12.117-1', 'linux-source-6.12 (= 6.12.117-1)'), pkg('linux-source-6.12', '6.12.107-1'), pkg('linux-source-6.12', '6.12.117-1')];
    const p = followKernelMeta(index, index[0]!, /^linux-source-\d/);
    assert.deepEqual([p.name, p.version], ['linux-source-6.12', '6.12.117-1']);
  });
});

describe('kernel build: built-in modules', () => {
  it('lists each built-in module of modules.builtin.modinfo once, as modules.builtin does', () => {
    const entries = [
      'sdhci_iproc.file=drivers/mmc/host/sdhci-iproc',
      'sdhci_iproc.license=GPL v2',
      'sdhci_iproc.description=SDHCI platform driver for Broadcom iProc',
      'genet.file=drivers/net/ethernet/broadcom/genet/genet',
      'genet.alias=platform:bcmgenet',
      'usbcore.file=drivers/usb/core/usbcore',
      'usbcore.parmtype=autosuspend:int',
      'printk.parmtype=devkmsg:string',
    ];
    const modinfo = Buffer.from(entries.join('\0') + '\0');
    assert.deepEqual(builtinModules(modinfo), ['kernel/drivers/mmc/host/sdhci-iproc.ko', 'kernel/drivers/net/ethernet/broadcom/genet/genet.ko', 'kernel/drivers/usb/core/usbcore.ko']);
    assert.deepEqual(builtinModules(Buffer.alloc(0)), []);
  });

  it("lists the parts a built-in driver links in ([built in with it: ...]) when it is built in, and they are part of the cache key", () => {
    const frag = { file: 'features/wifi.config', text: '# The driver [module: brcmfmac] [built in with it: brcmfmac-wcc, brcmfmac-cyw]\nCONFIG_BRCMFMAC=y\n' };
    const parsed = parseConfig(frag.text, frag.file).settings[0]!;
    assert.deepEqual([parsed.module, parsed.builtInWith, parsed.why], ['brcmfmac', ['brcmfmac-wcc', 'brcmfmac-cyw'], 'The driver']);
    assert.deepEqual(partsBuiltIn(parseConfig('CONFIG_BRCMFMAC=y\n', '.config'), [frag]), ['kernel/brcmfmac/brcmfmac-wcc.ko', 'kernel/brcmfmac/brcmfmac-cyw.ko']);
    assert.deepEqual(partsBuiltIn(parseConfig('# CONFIG_BRCMFMAC is not set\n', '.config'), [frag]), []);
    // resolveModules then takes the profile's brcmfmac-wcc as built in (kernel.e2e builds rpi3b with it).
    const p = getBoard('rpi3b').profile;
    const deb = { package: 'linux-source-6.12', version: '1', component: 'main', filename: 'x', sha256: 'a'.repeat(64), size: 1 };
    const without = { file: frag.file, text: frag.text.replace(/ \[built in with it: [^\]]+\]/, '') };
    assert.notEqual(kernelKey(p, deb, defaultKernelConfigsDir(), 'gcc 12', [frag]), kernelKey(p, deb, defaultKernelConfigsDir(), 'gcc 12', [without]));
  });
});

describe('kernel build: one build per work tree at a time', () => {
  after(cleanupTemp);

  it('a second holder waits until the first is done', async () => {
    const lock = join(tempDir('lock'), 'lock');
    const order: string[] = [];
    const a = withDirLock(lock, async () => {
      order.push('a start');
      await sleep(150);
      order.push('a end');
    }, 20);
    await sleep(20);
    const b = withDirLock(lock, async () => {
      order.push('b start');
      await Promise.resolve();
      order.push('b end');
    }, 20);
    await Promise.all([a, b]);
    assert.deepEqual(order, ['a start', 'a end', 'b start', 'b end']);
    assert.equal(existsSync(lock), false, 'released');
  });

  it('takes over a lock whose owner is dead, and releases it when the work throws', async () => {
    const lock = join(tempDir('lock'), 'lock');
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), String(dead.pid));
    await assert.rejects(withDirLock(lock, () => Promise.reject(new Error('boom')), 20), /boom/);
    assert.equal(existsSync(lock), false);
  });
});

describe('kernel packages: where the kernel is', () => {
  after(cleanupTemp);

  it("finds a 6.x package's boot/vmlinuz-* and a 7.x split package's usr/lib/modules/<release>/vmlinuz", () => {
    const six = tempDir('k6');
    mkdirSync(join(six, 'boot'), { recursive: true });
    writeFileSync(join(six, 'boot/vmlinuz-6.12.117+deb13-arm64'), 'Image');
    assert.deepEqual(kernelFiles(six), {
      release: '6.12.117+deb13-arm64',
      image: join(six, 'boot/vmlinuz-6.12.117+deb13-arm64'),
      config: join(six, 'boot/config-6.12.117+deb13-arm64'),
      dtbDir: join(six, 'usr/lib/linux-image-6.12.117+deb13-arm64'),
    });
    const seven = tempDir('k7');
    const dir = join(seven, 'usr/lib/modules/7.3.4+deb13-arm64');
    mkdirSync(join(dir, 'dtb/broadcom'), { recursive: true });
    writeFileSync(join(dir, 'vmlinuz'), 'Image');
    assert.deepEqual(kernelFiles(seven), { release: '7.3.4+deb13-arm64', image: join(dir, 'vmlinuz'), config: join(dir, 'config'), dtbDir: join(dir, 'dtb') });
    assert.throws(() => kernelFiles(tempDir('none')), (e: BspError) => e.code === 'EARTIFACT' && /neither boot\/vmlinuz-\* nor usr\/lib\/modules\/\*\/vmlinuz/.test(e.message));
  });
});

describe('kernel build: the cache key', () => {
  after(cleanupTemp);

  it('changes with a setting, the source or the compiler, not with a reworded comment', () => {
    const dir = tempDir('frags');
    cpSync(defaultKernelConfigsDir(), dir, { recursive: true });
    const rpi3b = withKernelSource(getBoard('rpi3b').profile, 'build');
    const deb = { package: 'linux-source-6.12', version: '6.12.117-1', component: 'main', filename: 'pool/x.deb', sha256: 'a'.repeat(64), size: 1 };
    const key = (): string => kernelKey(rpi3b, deb, dir, 'gcc 12');
    const before = key();
    const leds = join(dir, 'features/leds.config');
    writeFileSync(leds, readFileSync(leds, 'utf8').replace('# LED support.', '# LEDs, reworded.'));
    assert.equal(key(), before, 'a comment');
    writeFileSync(leds, readFileSync(leds, 'utf8').replace('CONFIG_LEDS_GPIO=y', '# CONFIG_LEDS_GPIO is not set'));
    assert.notEqual(key(), before, 'a setting');
    assert.notEqual(kernelKey(rpi3b, { ...deb, sha256: 'b'.repeat(64) }, dir, 'gcc 12'), key(), 'the source');
    assert.notEqual(kernelKey(rpi3b, deb, dir, 'gcc 13'), key(), 'the compiler');
  });
});
