import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfig, checkKernelConfig, getBoard, KernelConfigError, mergeConfigs, parseConfig } from '../../src/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const DEBIAN = join(import.meta.dirname, '../fixtures/config-6.12.117+deb13-arm64');

describe('kernel config check', () => {
  after(cleanupTemp);

  it("Debian trixie's arm64 kernel config meets rpi3b's fragments", () => {
    const r = checkKernelConfig(getBoard('rpi3b').profile, DEBIAN);
    assert.deepEqual(r.unmet, []);
    assert.ok(r.ok && r.checked > 40);
  });

  it('names CONFIG_GPIO_SYSFS and CONFIG_DEVTMPFS when they are removed, with fragment and line', () => {
    const text = readFileSync(DEBIAN, 'utf8')
      .replace(/^CONFIG_GPIO_SYSFS=y$/m, '# CONFIG_GPIO_SYSFS is not set')
      .replace(/^CONFIG_DEVTMPFS=y$/m, '');
    const p = join(tempDir(), 'config');
    writeFileSync(p, text);
    const r = checkKernelConfig(getBoard('rpi3b').profile, p);
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.unmet.map((u) => [u.symbol, u.actual, u.fragment]).sort(),
      [
        ['CONFIG_DEVTMPFS', 'absent', 'nodeos.config'],
        ['CONFIG_GPIO_SYSFS', 'is not set', 'features/gpio.config'],
      ],
    );
    const gpio = r.unmet.find((u) => u.symbol === 'CONFIG_GPIO_SYSFS')!;
    const line = readFileSync(join(import.meta.dirname, '../../kernel-configs/features/gpio.config'), 'utf8').split('\n')[gpio.line - 1];
    assert.equal(line, 'CONFIG_GPIO_SYSFS=y');
    assert.match(gpio.why, /onoff/);
  });

  it('accepts =m only for modules the board ships', () => {
    const frag = parseConfig('# I2C driver [module: i2c-bcm2835]\nCONFIG_I2C_BCM2835=y\n# no module named\nCONFIG_FOO=y\n', 'f.config');
    assert.equal(frag.settings[0]?.module, 'i2c-bcm2835');
    assert.equal(frag.settings[0]?.why, 'I2C driver');
    const cfg = parseConfig('CONFIG_I2C_BCM2835=m\nCONFIG_FOO=m\n', '.config');
    const shipped = checkConfig(cfg, [frag], ['i2c_bcm2835']);
    assert.deepEqual(shipped.unmet.map((u) => u.symbol), ['CONFIG_FOO']);
    const notShipped = checkConfig(cfg, [frag], []);
    assert.deepEqual(notShipped.unmet.map((u) => u.symbol), ['CONFIG_I2C_BCM2835', 'CONFIG_FOO']);
    assert.match(notShipped.unmet[0]?.hint ?? '', /add it to the board's kernel.modules/);
  });

  it('checks "is not set", =m and exact values', () => {
    const frag = parseConfig('# CONFIG_A is not set\nCONFIG_B=m\nCONFIG_C="x"\nCONFIG_D=4\n', 'f');
    const good = parseConfig('# CONFIG_A is not set\nCONFIG_B=y\nCONFIG_C="x"\nCONFIG_D=4\n', 'c');
    assert.equal(checkConfig(good, [frag], []).ok, true);
    const bad = parseConfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="y"\nCONFIG_D=5\n', 'c');
    assert.deepEqual(checkConfig(bad, [frag], []).unmet.map((u) => u.symbol), ['CONFIG_A', 'CONFIG_B', 'CONFIG_C', 'CONFIG_D']);
  });

  it('the later fragment wins', () => {
    const a = parseConfig('CONFIG_X=y\n', 'a');
    const b = parseConfig('# CONFIG_X is not set\n', 'b');
    assert.equal(checkConfig(parseConfig('', 'c'), [a, b], []).ok, true);
  });

  it('rpi5b fails on the Debian 6.12 kernel: no RP1 drivers', () => {
    const r = checkKernelConfig(getBoard('rpi5b').profile, DEBIAN);
    assert.ok(r.unmet.some((u) => u.symbol === 'CONFIG_PINCTRL_RP1' && u.actual === 'absent'));
  });

  it('rejects lines that are not Kconfig', () => {
    assert.throws(() => parseConfig('CONFIG_OK=y\nthis is junk\n', 'x.config'), (e: unknown) => e instanceof KernelConfigError && e.code === 'EKCONFIG_SYNTAX' && /x\.config:2/.test(e.message));
  });
});

describe('kernel config merge (merge_config.sh -m semantics)', () => {
  it('replaces overridden lines, appends fragments, warns for each changed value', () => {
    const base = { file: 'defconfig', text: 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\nCONFIG_AB=y\n' };
    const r = mergeConfigs(base, [
      { file: 'one.config', text: '# why\nCONFIG_B=y\nCONFIG_C=m\n' },
      { file: 'two.config', text: '# CONFIG_A is not set\nCONFIG_B=m\n' },
    ]);
    assert.equal(r.text, 'CONFIG_AB=y\n# why\nCONFIG_C=m\n# CONFIG_A is not set\nCONFIG_B=m\n');
    assert.deepEqual(r.warnings, [
      'Value of CONFIG_B is redefined by fragment one.config:\nPrevious value: # CONFIG_B is not set\nNew value:      CONFIG_B=y',
      'Value of CONFIG_A is redefined by fragment two.config:\nPrevious value: CONFIG_A=y\nNew value:      # CONFIG_A is not set',
      'Value of CONFIG_B is redefined by fragment two.config:\nPrevious value: CONFIG_B=y\nNew value:      CONFIG_B=m',
    ]);
  });

  it('the merged Debian config still meets the board (fragments only add what is there)', () => {
    const text = readFileSync(DEBIAN, 'utf8');
    const frags = getBoard('rpi3b').profile.kernel.fragments.map((f) => ({ file: f, text: readFileSync(join(import.meta.dirname, '../../kernel-configs', f), 'utf8') }));
    const r = mergeConfigs({ file: 'debian', text }, frags);
    const merged = parseConfig(r.text, 'merged');
    const ext4 = merged.settings.filter((s) => s.symbol === 'CONFIG_EXT4_FS');
    assert.deepEqual(ext4.map((s) => s.value), ['y'], 'one line per symbol; the fragment value wins');
    assert.ok(r.warnings.some((w) => w.startsWith('Value of CONFIG_EXT4_FS is redefined by fragment features/usersfs.config')));
  });
});
