/**
 * U-Boot's `env import` (boot.scr reads uboot.env with it at every boot) reads a backslash as
 * an escape and drops it (lib/hashtable.c, himport_r). A value the kit writes for the board
 * must therefore hold none, or the board gets another value than the one given: such values
 * are refused with a clear error, before anything is written.
 */
import assert from 'node:assert/strict';
import { validateCustomization } from '../../flash/customize.js';
import { emulatedEnv } from '../../src/emulate/card-env.js';
import { backslashProblem, BspError, settingsProblems } from '../../src/index.js';

/** What U-Boot's himport_r makes of a stored value. */
const himport = (stored: string): string => stored.replace(/\\(.)/g, '$1');
const code = (c: string, re: RegExp) => (e: unknown) => e instanceof BspError && e.code === c && re.test(e.message);

describe("values for U-Boot's env import: no backslash", () => {
  it('the problem is exactly the values U-Boot would change', () => {
    for (const v of ['console=ttyS1,115200 nodeos.run="board.GPIO17.write(1)"', '{"ssid":"home"}', 'a b']) {
      assert.equal(himport(v), v);
      assert.equal(backslashProblem(v), undefined);
    }
    for (const v of ['nodeos.run="console.log(\'a\\nb\')"', '{"ssid":"my \\"net\\""}', 'C:\\boot']) {
      assert.notEqual(himport(v), v);
      assert.match(backslashProblem(v)!, /U-Boot's env import drops/);
    }
  });

  it('settings: an SSID whose JSON needs a backslash, an SSH key line holding one', () => {
    const psk = 'a'.repeat(64);
    assert.deepEqual(settingsProblems({ wifiCountry: 'DE', wifi: [{ ssid: 'my "net"', psk, priority: 0 }] }).map((p) => p.field), ['wifi.networks[0].ssid']);
    assert.deepEqual(settingsProblems({ wifiCountry: 'DE', wifi: [{ ssid: 'café net', psk, priority: 0 }] }), [], 'UTF-8 is stored as it is, without escapes');
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0Vc8nJ7kDQw3Jv6G0r1eS1X3U9m2y5d7hGxq9s1c1 me\\laptop';
    assert.match(settingsProblems({ sshKeys: [key] }).map((p) => `${p.field}: ${p.message}`).join('\n'), /sshKeys\[0\]: the key line holds a backslash/);
  });

  it('flash --cmdline and --env, emulate --append through U-Boot', () => {
    assert.throws(() => validateCustomization({ cmdline: ['nodeos.run="console.log(\'\\n\')"'] }), code('ECUSTOMIZE', /kernel argument .* holds a backslash/));
    assert.throws(() => validateCustomization({ env: { path: 'a\\b' } }), code('ECUSTOMIZE', /U-Boot variable path: its value holds a backslash/));
    validateCustomization({ cmdline: ['nodeos.run="board.GPIO17.write(1)"'], env: { bootdelay: '2' } });
    assert.throws(() => emulatedEnv(new Map([['bootargs', 'x']]), ['a=\\x']), code('EUSAGE', /--append .* --direct passes it as it is/));
  });
});
