import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { applySettings, BspError, decodeWifi, ENV_TIMEZONE, ENV_WIFI, ENV_WIFI_COUNTRY, loadSettingsFile, resolveSettings, settingsFromEnv, wpaPsk, WIFI_PSK_ENV } from '../../src/index.js';
import { ENV_SSH_KEYS } from '../../src/net/ssh-keys.js';
import { applyBootSettings, readWifiFile, WIFI_FILE } from '../../src/runtime/settings.js';
import { userKey } from '../helpers/ssh.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const PASS = 'correct horse battery';
const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof BspError && e.code === c && (!re || re.test(e.message));
/** No error message may hold the passphrase. */
const noSecret = (c: string, re: RegExp) => (e: unknown) => code(c, re)(e) && !(e as Error).message.includes(PASS);

describe('settings: WPA PSK', () => {
  it('derives the PSK as IEEE 802.11i (annex H.4 test vectors)', () => {
    assert.equal(wpaPsk('IEEE', 'password'), 'f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e');
    assert.equal(wpaPsk('ThisIsASSID', 'ThisIsAPassword'), '0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af');
  });
});

describe('settings file', () => {
  after(cleanupTemp);
  const write = (text: string, name = 'settings.yaml'): string => {
    const dir = tempDir();
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('reads YAML: passphrases become PSKs, key files are relative to the file', () => {
    const dir = tempDir();
    const key = userKey(dir, 'me').pub.trim();
    writeFileSync(join(dir, 'settings.yaml'), `hostname: pi-07\ntimezone: Europe/Berlin\nsshKeys: [me.pub]\nwifi:\n  country: DE\n  networks:\n    - { ssid: home, psk: "${PASS}", priority: 2 }\n    - { ssid: phone, psk: "${'AB'.repeat(32)}" }\n`);
    const s = loadSettingsFile(join(dir, 'settings.yaml'));
    assert.equal(s.hostname, 'pi-07');
    assert.equal(s.timezone, 'Europe/Berlin');
    assert.deepEqual(s.sshKeys, [key]);
    assert.equal(s.wifiCountry, 'DE');
    assert.deepEqual(s.wifi, [
      { ssid: 'home', psk: wpaPsk('home', PASS), priority: 2 },
      { ssid: 'phone', psk: 'ab'.repeat(32), priority: 0 },
    ]);
  });

  it('reads JSON with the same schema', () => {
    const s = loadSettingsFile(write(JSON.stringify({ hostname: 'lab', wifi: { country: 'GB', networks: [{ ssid: 'x', psk: PASS }] } }), 's.json'));
    assert.equal(s.hostname, 'lab');
    assert.equal(s.wifi![0]!.psk, wpaPsk('x', PASS));
  });

  it('refuses a mistake naming its field, never echoing the passphrase', () => {
    assert.throws(() => loadSettingsFile(write('hostname: a\nwfi: {}\n')), code('ESETTINGS', /wfi: unknown field/));
    assert.throws(() => loadSettingsFile(write('wifi:\n  country: DE\n  networks: [{ ssid: a, pks: x }]\n')), code('ESETTINGS', /wifi\.networks\[0\]\.pks: unknown field/));
    assert.throws(() => loadSettingsFile(write('timezone: Mars/Olympus\n')), code('ESETTINGS', /timezone: time zone "Mars\/Olympus" is unknown/));
    assert.throws(() => loadSettingsFile(write('hostname: -bad-\n')), code('ESETTINGS', /hostname:/));
    assert.throws(() => loadSettingsFile(write('hostname: 7\n')), code('ESETTINGS', /hostname: must be string/));
    assert.throws(() => loadSettingsFile(write(`wifi: { country: UK, networks: [{ ssid: a, psk: "${PASS}" }] }\n`)), noSecret('ESETTINGS', /wifi\.country: .*GB/));
    assert.throws(() => loadSettingsFile(write(`wifi: { networks: [{ ssid: a, psk: "${PASS}" }] }\n`)), noSecret('ESETTINGS', /wifi\.country: a board joins Wi-Fi only once it knows the country/));
    assert.throws(() => loadSettingsFile(write('wifi: { country: DE, networks: [{ ssid: a, psk: short }] }\n')), code('ESETTINGS', /wifi\.networks\[0\]\.psk: the passphrase is 5 characters/));
    assert.throws(() => loadSettingsFile(write(`wifi: { country: DE, networks: [{ ssid: "${'x'.repeat(33)}", psk: "${PASS}" }] }\n`)), noSecret('ESETTINGS', /wifi\.networks\[0\]\.ssid: .*1 to 32 bytes/));
    assert.throws(() => loadSettingsFile(write(`wifi: { country: DE, networks: [{ ssid: a, psk: "${PASS}" }, { ssid: a, psk: "${PASS}" }] }\n`)), noSecret('ESETTINGS', /wifi\.networks\[1\]\.ssid: "a" is listed twice/));
    assert.throws(() => loadSettingsFile(write('sshKeys: [nothere.pub]\n')), code('ESETTINGS', /sshKeys\[0\]: .*nothere\.pub/));
    assert.throws(() => loadSettingsFile(write('hostname: [a\n')), code('ESETTINGS', /not YAML or JSON/));
    assert.throws(() => loadSettingsFile('/nonexistent/settings.yaml'), code('ESETTINGS', /no such file/));
  });
});

describe('settings from the command line', () => {
  after(cleanupTemp);

  it('takes the passphrase from a file, then the environment, then the terminal; never from an option', async () => {
    const dir = tempDir();
    const pskFile = join(dir, 'psk');
    writeFileSync(pskFile, `${PASS}\n`);
    const a = await resolveSettings({ wifi: 'home', wifiPskFile: pskFile, wifiCountry: 'DE' }, {});
    assert.deepEqual(a.wifi, [{ ssid: 'home', psk: wpaPsk('home', PASS), priority: 0 }]);
    const b = await resolveSettings({ wifi: 'home', wifiCountry: 'DE', wifiPriority: 3 }, { [WIFI_PSK_ENV]: 'another passphrase' });
    assert.deepEqual(b.wifi, [{ ssid: 'home', psk: wpaPsk('home', 'another passphrase'), priority: 3 }]);
    let asked = '';
    const c = await resolveSettings({ wifi: 'home', wifiCountry: 'DE' }, {}, async (q) => ((asked = q), PASS));
    assert.match(asked, /"home".*not shown/);
    assert.equal(c.wifi![0]!.psk, wpaPsk('home', PASS));
    await assert.rejects(resolveSettings({ wifi: 'home', wifiCountry: 'DE' }, {}), code('EWIFI_PSK', /--wifi-psk-file FILE or set NODEOS_WIFI_PSK/));
    await assert.rejects(resolveSettings({ wifi: 'home', wifiCountry: 'DE' }, { [WIFI_PSK_ENV]: 'short' }), code('EWIFI_PSK', /NODEOS_WIFI_PSK: the passphrase is 5 characters/));
    await assert.rejects(resolveSettings({ wifiPskFile: pskFile }, {}), code('ESETTINGS', /give --wifi SSID too/));
  });

  it('options override the file\'s values and add networks and keys', async () => {
    const dir = tempDir();
    const f = join(dir, 's.yaml');
    writeFileSync(f, `hostname: one\ntimezone: UTC\nwifi: { country: DE, networks: [{ ssid: home, psk: "${PASS}" }] }\n`);
    const k = userKey(dir, 'k');
    const s = await resolveSettings({ file: f, hostname: 'two', wifi: 'office', sshKeyFiles: [`${k.file}.pub`] }, { [WIFI_PSK_ENV]: 'office passphrase' });
    assert.equal(s.hostname, 'two');
    assert.equal(s.timezone, 'UTC');
    assert.deepEqual(s.wifi!.map((n) => n.ssid), ['home', 'office']);
    assert.deepEqual(s.sshKeys, [k.pub.trim()]);
    await assert.rejects(resolveSettings({ file: f, timezone: 'Nowhere/City' }), code('ESETTINGS', /timezone: .*\(from .*s\.yaml and the command line\)/));
  });
});

describe('settings in the U-Boot environment', () => {
  it('are written as variables, networks merged by SSID, and read back without secrets', () => {
    const built = new Map([['bootargs', 'console=ttyS1,115200 nodeos.hostname=old'], [ENV_WIFI, JSON.stringify([{ ssid: 'home', psk: '0'.repeat(64), priority: 0 }, { ssid: 'cafe', psk: '1'.repeat(64), priority: 1 }])]]);
    const out = applySettings(built, { hostname: 'kitchen', timezone: 'Europe/Paris', wifiCountry: 'FR', wifi: [{ ssid: 'home', psk: '2'.repeat(64), priority: 5 }] });
    assert.equal(out.get('bootargs'), 'console=ttyS1,115200 nodeos.hostname=kitchen');
    assert.equal(out.get('hostname'), 'kitchen');
    assert.equal(out.get(ENV_TIMEZONE), 'Europe/Paris');
    assert.equal(out.get(ENV_WIFI_COUNTRY), 'FR');
    assert.deepEqual(decodeWifi(out.get(ENV_WIFI)).networks, [
      { ssid: 'home', psk: '2'.repeat(64), priority: 5 },
      { ssid: 'cafe', psk: '1'.repeat(64), priority: 1 },
    ]);
    assert.equal(built.get(ENV_TIMEZONE), undefined, 'input unchanged');
    const view = settingsFromEnv(out);
    assert.equal(view.hostname, 'kitchen');
    assert.equal(view.timezone, 'Europe/Paris');
    assert.deepEqual(view.wifi, { country: 'FR', networks: [{ ssid: 'home', priority: 5, psk: 'set' }, { ssid: 'cafe', priority: 1, psk: 'set' }], problems: [] });
    assert.doesNotMatch(JSON.stringify(view), /2222|1111/);
  });

  it('says what is wrong with a stored network, never its PSK', () => {
    const r = decodeWifi(JSON.stringify([{ ssid: 'ok', psk: 'a'.repeat(64) }, { ssid: 'bad', psk: 'secretsecret' }, { psk: 'b'.repeat(64) }]));
    assert.deepEqual(r.networks.map((n) => n.ssid), ['ok']);
    assert.equal(r.errors.length, 2);
    assert.doesNotMatch(r.errors.join(' '), /secretsecret|bbbb/);
    assert.deepEqual(decodeWifi('{').errors, ['nodeos_wifi is not JSON']);
  });

  it('SSH keys given as settings are added as flash --ssh-key adds them', () => {
    const dir = tempDir();
    const k = userKey(dir, 'x').pub.trim();
    assert.equal(applySettings(new Map(), { sshKeys: [k, k] }).get(ENV_SSH_KEYS), k);
  });
});

describe('settings on the board at boot', () => {
  after(cleanupTemp);
  const card = (vars: Record<string, string>) => new Map(Object.entries(vars));
  const wifiVar = JSON.stringify([{ ssid: 'home', psk: 'c'.repeat(64), priority: 1 }]);

  it('moves the Wi-Fi networks to the users\' partition (0600) and off the card; TZ is applied', () => {
    // dir stands for /home as first boot leaves it: the users' partition with its .nodeos
    // marker file (runtime/usersfs.ts), which the Wi-Fi file must not be put under.
    const dir = tempDir();
    writeFileSync(join(dir, '.nodeos'), '{}\n');
    const wifiFile = join(dir, relative('/home', WIFI_FILE));
    const logs: string[] = [];
    let removed = 0;
    const r = applyBootSettings({ vars: card({ [ENV_TIMEZONE]: 'America/New_York', [ENV_WIFI_COUNTRY]: 'US', [ENV_WIFI]: wifiVar }), hostname: 'kitchen', wifiFile, removeFromCard: () => removed++, log: (m) => logs.push(m) });
    assert.equal(r.tz, 'America/New_York');
    assert.equal(removed, 1);
    assert.equal(statSync(wifiFile).mode & 0o777, 0o600);
    assert.deepEqual(readWifiFile(wifiFile), [{ ssid: 'home', psk: 'c'.repeat(64), priority: 1 }]);
    assert.deepEqual(r.state, { hostname: 'kitchen', timezone: 'America/New_York', wifi: { country: 'US', networks: [{ ssid: 'home', priority: 1 }], kept: 'users' }, problems: [] });
    assert.ok(logs.some((l) => /"home" moved from the card/.test(l)));
    assert.doesNotMatch(logs.join('\n') + JSON.stringify(r.state), /cccc/);
    // The next boot: nothing on the card any more; the networks are still known.
    const again = applyBootSettings({ vars: card({ [ENV_WIFI_COUNTRY]: 'US' }), hostname: 'kitchen', wifiFile, removeFromCard: () => removed++, log: () => undefined });
    assert.equal(removed, 1);
    assert.deepEqual(again.state.wifi.networks, [{ ssid: 'home', priority: 1 }]);
    // A card flashed again with another network adds to them.
    applyBootSettings({ vars: card({ [ENV_WIFI_COUNTRY]: 'US', [ENV_WIFI]: JSON.stringify([{ ssid: 'work', psk: 'd'.repeat(64), priority: 0 }]) }), hostname: 'k', wifiFile, removeFromCard: () => undefined, log: () => undefined });
    assert.deepEqual(readWifiFile(wifiFile).map((n) => n.ssid), ['home', 'work']);
    assert.match(readFileSync(wifiFile, 'utf8'), /"psk"/);
  });

  it('reports what it cannot apply, on the console and in the state', () => {
    const logs: string[] = [];
    const r = applyBootSettings({ vars: card({ [ENV_TIMEZONE]: 'Mars/Olympus', [ENV_WIFI_COUNTRY]: 'XX', [ENV_WIFI]: '[{"ssid":"a","psk":"nothex"}]' }), hostname: 'nodeos', hostnameProblem: 'nodeos.hostname=-x- is not a valid host name', removeFromCard: () => undefined, log: (m) => logs.push(m) });
    assert.equal(r.tz, undefined);
    assert.equal(r.state.problems.length, 4);
    assert.match(r.state.problems.join('\n'), /Mars\/Olympus.*UTC[\s\S]*XX[\s\S]*PSK is not 64 hex digits[\s\S]*/);
    assert.deepEqual(logs, r.state.problems.map((p) => `settings: ${p}`));
  });

  it('without a users\' partition the networks stay on the card, and it says so', () => {
    let removed = false;
    const r = applyBootSettings({ vars: card({ [ENV_WIFI_COUNTRY]: 'DE', [ENV_WIFI]: wifiVar }), hostname: 'n', removeFromCard: () => (removed = true), log: () => undefined });
    assert.equal(removed, false);
    assert.equal(r.state.wifi.kept, 'card');
    assert.match(r.state.problems[0]!, /stay on the card's boot partition/);
  });

  it('a card it cannot write keeps the networks, and that is a problem', () => {
    const dir = tempDir();
    const r = applyBootSettings({ vars: card({ [ENV_WIFI_COUNTRY]: 'DE', [ENV_WIFI]: wifiVar }), hostname: 'n', wifiFile: join(dir, 'wifi.json'), removeFromCard: () => { throw new Error('read-only file system'); }, log: () => undefined });
    assert.match(r.state.problems.join(' '), /could not be moved off the card's boot partition: read-only/);
  });
});

describe('settings: keyboard layout', () => {
  after(cleanupTemp);

  it('is one of the layouts the image ships; the board loads it for the screen or says why not', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'k.yaml'), 'keyboard: de\n');
    assert.equal(loadSettingsFile(join(dir, 'k.yaml')).keyboard, 'de');
    writeFileSync(join(dir, 'k.yaml'), 'keyboard: dvorak\n');
    assert.throws(() => loadSettingsFile(join(dir, 'k.yaml')), code('ESETTINGS', /keyboard: keyboard layout "dvorak" is not one the image has: us, uk, de, fr, es, it/));
    assert.equal(applySettings(new Map(), { keyboard: 'fr' }).get('nodeos_keyboard'), 'fr');
    const loaded: string[] = [];
    const ok = applyBootSettings({ vars: new Map([['nodeos_keyboard', 'de']]), hostname: 'n', loadKeymap: (f) => (loaded.push(f), undefined), removeFromCard: () => undefined, log: () => undefined });
    assert.deepEqual(loaded, ['/usr/share/keymaps/de.bmap']);
    assert.equal(ok.state.keyboard, 'de');
    const failed = applyBootSettings({ vars: new Map([['nodeos_keyboard', 'de']]), hostname: 'n', loadKeymap: () => 'KDSKBENT: Operation not permitted', removeFromCard: () => undefined, log: () => undefined });
    assert.deepEqual([failed.state.keyboard, failed.state.problems], [undefined, ['keyboard de: not loaded (KDSKBENT: Operation not permitted): the keyboard stays us']]);
    const noScreen = applyBootSettings({ vars: new Map([['nodeos_keyboard', 'de']]), hostname: 'n', removeFromCard: () => undefined, log: () => undefined });
    assert.match(noScreen.state.problems[0]!, /no screen console/);
  });
});
