import assert from 'node:assert/strict';
import { applyCustomization, validateCustomization } from '../../flash/customize.js';
import { BspError } from '../../src/index.js';
import { ENV_SSH_KEYS, parseAuthorizedKeys } from '../../src/net/ssh-keys.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { userKey } from '../helpers/ssh.js';

describe('flash customisation: SSH keys', () => {
  after(cleanupTemp);

  it('adds the keys to those the image was built with, once each, one per line', () => {
    const dir = tempDir();
    const [a, b] = [userKey(dir, 'a').pub.trim(), userKey(dir, 'b', 'ecdsa').pub.trim()];
    const built = new Map([['bootargs', 'console=ttyS1,115200'], [ENV_SSH_KEYS, a]]);
    const out = applyCustomization(built, { sshKeys: [b, a] });
    assert.deepEqual(out.get(ENV_SSH_KEYS)!.split('\n'), [a, b]);
    assert.deepEqual(parseAuthorizedKeys(out.get(ENV_SSH_KEYS)!).errors, []);
    // Nothing else changes; the kernel command line is untouched.
    assert.equal(out.get('bootargs'), 'console=ttyS1,115200');
    assert.equal(applyCustomization(new Map(), { sshKeys: [a] }).get(ENV_SSH_KEYS), a);
  });

  it('refuses a line that is not a public key before anything is written', () => {
    assert.throws(() => validateCustomization({ sshKeys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] }), (e: unknown) => e instanceof BspError && e.code === 'ECUSTOMIZE' && /private key/.test(e.message));
    assert.throws(() => validateCustomization({ sshKeys: ['ssh-ed25519 AAAA'] }), (e: unknown) => e instanceof BspError && e.code === 'ECUSTOMIZE');
  });
});
