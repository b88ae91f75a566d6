/**
 * What init starts only after the console's prompt (src/runtime/later.ts): the queue, the SSH
 * key test that decides whether a server process is started at all, the display test for the
 * screen's REPL (sysfs trees as fixtures).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AfterPrompt, displayConnected, drmConnectors, readAuthorizedKeys, shownName, sshKeysPresent, sshOff } from '../../src/runtime/later.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe('after the prompt (init)', () => {
  after(cleanupTemp);

  it('starts nothing before the prompt, everything queued once it shows (in order), later additions at once', () => {
    const logs: string[] = [];
    const started: string[] = [];
    const note = (x: string) => (): void => void started.push(x);
    const q = new AfterPrompt((m) => logs.push(m));
    q.add('the SSH server', note('ssh'));
    q.add('Wi-Fi', () => {
      throw new Error('no radio');
    });
    q.add('apps (thermometer)', note('apps'));
    assert.deepEqual(started, []);
    assert.deepEqual(q.pending(), ['the SSH server', 'Wi-Fi', 'apps (thermometer)']);
    q.promptShown();
    assert.deepEqual(started, ['ssh', 'apps'], 'one that throws does not keep the others back');
    assert.deepEqual(logs, ['Wi-Fi: not started: no radio']);
    q.add('mDNS', note('mdns'));
    q.promptShown();
    assert.deepEqual(started, ['ssh', 'apps', 'mdns'], 'nothing runs twice');
    assert.deepEqual(q.pending(), []);
  });

  it('an SSH server only when a key line exists on the card or in authorized_keys (blank lines and comments are none)', () => {
    assert.equal(sshKeysPresent(undefined, undefined), false);
    assert.equal(sshKeysPresent('', '# my keys\n\n   \n'), false);
    assert.equal(sshKeysPresent('ssh-ed25519 AAAAC3Nz... me', undefined), true);
    assert.equal(sshKeysPresent(undefined, '# mine\nssh-ed25519 AAAAC3Nz... me\n'), true);
    // Unreadable is none, never a failure of init (which would then start no REPL).
    const dir = tempDir();
    assert.equal(readAuthorizedKeys(join(dir, 'missing')), undefined);
    mkdirSync(join(dir, 'authorized_keys'));
    assert.equal(readAuthorizedKeys(join(dir, 'authorized_keys')), undefined, 'a directory');
    writeFileSync(join(dir, 'keys'), 'ssh-ed25519 AAAA me\n');
    assert.equal(readAuthorizedKeys(join(dir, 'keys')), 'ssh-ed25519 AAAA me\n');
    assert.deepEqual(['thermometer', '@me/app', 'x\nnodeos: fake'].map(shownName), ['thermometer', '@me/app', '"x\\nnodeos: fake"']);
    assert.match(sshOff('/home/.ssh/authorized_keys'), /^ssh: off: no authorized key \(build or flash with --ssh-key FILE, or put one in \/home\/\.ssh\/authorized_keys and reboot\)$/);
  });

  it("the screen's REPL at once only when a DRM connector says connected", () => {
    const sys = tempDir();
    assert.deepEqual(drmConnectors(sys), [], 'no DRM at all (a simple framebuffer)');
    const drm = join(sys, 'class/drm');
    for (const [name, status] of [['card0-HDMI-A-1', 'disconnected\n'], ['card0-Composite-1', 'unknown\n']]) {
      mkdirSync(join(drm, name!), { recursive: true });
      writeFileSync(join(drm, name!, 'status'), status!);
    }
    mkdirSync(join(drm, 'card0'), { recursive: true });
    mkdirSync(join(drm, 'renderD128'), { recursive: true });
    assert.equal(displayConnected(drmConnectors(sys)), false);
    writeFileSync(join(drm, 'card0-HDMI-A-1', 'status'), 'connected\n');
    assert.deepEqual(drmConnectors(sys).sort((a, b) => a.name.localeCompare(b.name)), [
      { name: 'card0-Composite-1', status: 'unknown' },
      { name: 'card0-HDMI-A-1', status: 'connected' },
    ]);
    assert.equal(displayConnected(drmConnectors(sys)), true);
  });
});
