/**
 * First-boot settings through the CLI: flash a card image (a regular file, --force-file)
 * with a settings file and options, read them back with `settings show`; a settings file
 * with a mistake is refused before the card is touched.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createImage, decodeEnv, Fat32Reader, readLayoutAt, wpaPsk, writeSparseImage, WIFI_PSK_ENV } from '../../src/index.js';
import { cardExtents, smallLayout } from '../helpers/card.js';
import { runCli } from '../helpers/cli.js';
import { userKey } from '../helpers/ssh.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const MiB = 1 << 20;
const PASS = 'correct horse battery';

function cardImage(dir: string): string {
  const env = createImage('bootargs=console=ttyS1,115200\nbootdelay=0\n', { size: 0x4000, pad: 0 });
  const image = join(dir, 'nodeos.img');
  writeSparseImage(image, 64 * MiB, cardExtents(smallLayout(4, 56, 0x1234), [{ path: 'uboot.env', data: env }, { path: 'uboot.bak', data: env }]));
  return image;
}

const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

describe('cli: first-boot settings', () => {
  after(cleanupTemp);
  const saved = process.env[WIFI_PSK_ENV];
  afterEach(() => (saved === undefined ? delete process.env[WIFI_PSK_ENV] : (process.env[WIFI_PSK_ENV] = saved)));

  it('flash --settings and options write them; settings show reads them back, secrets only as "set"', async () => {
    const dir = tempDir();
    const image = cardImage(dir);
    const card = join(dir, 'card.img');
    userKey(dir, 'me');
    writeFileSync(join(dir, 'site.yaml'), `hostname: pi-01\ntimezone: Europe/Berlin\nsshKeys: [me.pub]\nwifi:\n  country: DE\n  networks:\n    - { ssid: school, psk: "${PASS}", priority: 2 }\n`);
    process.env[WIFI_PSK_ENV] = 'phone passphrase';
    const f = await runCli('flash', image, '--device', card, '--force-file', '--yes', '--no-bmap', '--settings', join(dir, 'site.yaml'), '--hostname', 'pi-07', '--wifi', 'phone');
    assert.equal(f.code, 0, f.err);
    assert.match(f.out, /ok .*customised/);
    // As written: the PSKs, never a passphrase, in both copies of the environment.
    const { boot } = readLayoutAt(card);
    const fat = new Fat32Reader(card, boot.offset);
    for (const file of ['uboot.env', 'uboot.bak']) {
      const raw = fat.readFile(file);
      const vars = decodeEnv(raw).vars;
      assert.equal(vars.get('nodeos_timezone'), 'Europe/Berlin');
      assert.equal(vars.get('nodeos_wifi_country'), 'DE');
      assert.deepEqual(JSON.parse(vars.get('nodeos_wifi')!), [
        { ssid: 'school', psk: wpaPsk('school', PASS), priority: 2 },
        { ssid: 'phone', psk: wpaPsk('phone', 'phone passphrase'), priority: 0 },
      ]);
      assert.ok(!raw.includes(PASS) && !raw.includes('phone passphrase'), 'no passphrase on the card');
    }
    fat.close();
    const show = await runCli('settings', 'show', card);
    assert.equal(show.code, 0, show.err);
    assert.match(show.out, /hostname +pi-07/);
    assert.match(show.out, /timezone +Europe\/Berlin/);
    assert.match(show.out, /wifi country +DE/);
    assert.match(show.out, /"school" \(priority 2, psk set\), "phone" \(priority 0, psk set\)/);
    assert.match(show.out, /ssh-ed25519 SHA256:\S+ me@test/);
    assert.doesNotMatch(show.out + f.out + f.err, new RegExp(wpaPsk('school', PASS).slice(0, 16)));
    const j = JSON.parse((await runCli('settings', 'show', card, '--json')).out) as { hostname: string; wifi: { networks: { ssid: string; psk: string }[] } };
    assert.equal(j.hostname, 'pi-07');
    assert.deepEqual(j.wifi.networks.map((n) => n.psk), ['set', 'set']);
  });

  it('a settings file with a mistake is refused before the card is touched, naming the field', async () => {
    const dir = tempDir();
    const image = cardImage(dir);
    const card = join(dir, 'card.img');
    writeFileSync(card, Buffer.alloc(64 * MiB, 0xa5));
    const before = sha(card);
    writeFileSync(join(dir, 'bad.yaml'), `wifi:\n  country: DE\n  networks:\n    - { ssid: home, psk: "${PASS}", priorty: 1 }\n`);
    const r = await runCli('flash', image, '--device', card, '--force-file', '--yes', '--settings', join(dir, 'bad.yaml'));
    assert.equal(r.code, 1);
    assert.match(r.err, /bad\.yaml: wifi\.networks\[0\]\.priorty: unknown field .*\[ESETTINGS\]/);
    assert.doesNotMatch(r.err, new RegExp(PASS));
    assert.equal(sha(card), before, 'card untouched');
    // build refuses too, before fetching anything.
    const b = await runCli('build', '--board', 'rpi3b', '--out', join(dir, 'out'), '--offline', '--settings', join(dir, 'bad.yaml'));
    assert.equal(b.code, 1);
    assert.match(b.err, /\[ESETTINGS\]/);
  });

  it('--wifi without a passphrase source off a terminal is refused (never read from the command line)', async () => {
    const dir = tempDir();
    delete process.env[WIFI_PSK_ENV];
    const r = await runCli('flash', cardImage(dir), '--device', join(dir, 'card.img'), '--force-file', '--yes', '--wifi', 'home', '--wifi-country', 'DE');
    assert.equal(r.code, 1);
    assert.match(r.err, /no passphrase for --wifi home: give --wifi-psk-file FILE or set NODEOS_WIFI_PSK.*\[EWIFI_PSK\]/);
  });
});
