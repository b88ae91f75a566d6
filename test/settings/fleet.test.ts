import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applySettings, BspError, createKeyPair, decodeFleet, encodeFleet, ENV_FLEET, ENV_FLEET_PASSWORD, FLEET_PASSWORD_ENV, loadSettingsFile, resolveSettings, settingsFromEnv } from '../../src/index.js';
import { applyBootSettings, readFleetPassword } from '../../src/runtime/settings.js';
import { packageRoot } from '../../src/paths.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const CA = join(packageRoot(), 'test/fixtures/fleet/ca.pem');
const PASSWORD = 'board-secret-Xq7';
const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof BspError && e.code === c && (!re || re.test(e.message)) && !e.message.includes(PASSWORD);

/** A fleet key pair and a credentials file in a new folder. */
function files(): { dir: string; pub: string; key: string; id: string; creds: string } {
  const dir = tempDir();
  const k = createKeyPair(dir, 'nodeos-fleet');
  const creds = join(dir, 'board.pw');
  writeFileSync(creds, `${PASSWORD}\nignored second line\n`);
  return { dir, pub: k.publicKey, key: k.privateKey, id: k.id, creds };
}

describe('settings: fleet', () => {
  after(cleanupTemp);

  it('--fleet with its CA, key and credentials: on the card as nodeos_fleet and the password; settings show never shows the password', async () => {
    const f = files();
    const s = await resolveSettings({ fleet: { broker: 'mqtts://broker.lan:8883', name: 'greenhouse', groups: ['west', 'canary'], caFile: CA, keyFiles: [f.pub], credentialsFile: f.creds } }, {});
    assert.equal(s.fleet?.password, PASSWORD, 'the first line of the credentials file');
    const vars = applySettings(new Map([['bootcmd', 'run x']]), s);
    assert.equal(vars.get(ENV_FLEET_PASSWORD), PASSWORD);
    const back = decodeFleet(vars.get(ENV_FLEET));
    assert.deepEqual(back.fleet && { ...back.fleet, ca: back.fleet.ca === readFileSync(CA, 'utf8') }, { broker: 'mqtts://broker.lan:8883', fleet: 'greenhouse', groups: ['west', 'canary'], ca: true, keys: [{ id: f.id, pem: readFileSync(f.pub, 'utf8') }] });
    assert.ok(!vars.get(ENV_FLEET)!.includes(PASSWORD));
    // U-Boot's env import reads a backslash as an escape and drops it (lib/hashtable.c, himport_r):
    // the value must come through a U-Boot save unchanged.
    assert.ok(!vars.get(ENV_FLEET)!.includes('\\'), 'no backslash in the value');
    const view = settingsFromEnv(vars);
    assert.deepEqual({ ...view.fleet, ca: undefined }, { broker: 'mqtts://broker.lan:8883', fleet: 'greenhouse', groups: ['west', 'canary'], ca: undefined, keys: [f.id], password: 'set' });
    assert.match((view.fleet as { ca: string }).ca, /CN=nodeos-bsp test fleet CA \(SHA-256 [0-9A-F:]{95}\)/);
    assert.ok(!JSON.stringify(view).includes(PASSWORD));
    vars.delete(ENV_FLEET_PASSWORD);
    assert.equal((settingsFromEnv(vars).fleet as { password: string }).password, 'not on the card');
  });

  it('takes the password from $NODEOS_FLEET_PASSWORD; the fleet is "default" unless named', async () => {
    const f = files();
    const s = await resolveSettings({ fleet: { broker: 'mqtts://10.0.2.100:8883', caFile: CA, keyFiles: [f.pub] } }, { [FLEET_PASSWORD_ENV]: PASSWORD });
    assert.equal(s.fleet?.fleet, 'default');
    assert.deepEqual(s.fleet?.groups, []);
    assert.equal(s.fleet?.password, PASSWORD);
  });

  it('refuses what a board could not use, naming the option, never echoing the password', async () => {
    const f = files();
    const base = { broker: 'mqtts://broker.lan:8883', caFile: CA, keyFiles: [f.pub], credentialsFile: f.creds };
    const bad = (fleet: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => resolveSettings({ fleet: fleet as never }, env);
    await assert.rejects(bad({ ...base, broker: 'mqtt://broker.lan:1883' }), code('ESETTINGS', /fleet\.broker: .*TLS only/));
    await assert.rejects(bad({ ...base, broker: `mqtts://pi:${PASSWORD}@broker.lan` }), (e: unknown) => e instanceof BspError && e.code === 'ESETTINGS' && /user name or password/.test(e.message));
    await assert.rejects(bad({ ...base, broker: 'mqtts://broker.lan:8883/x' }), code('ESETTINGS', /without a path/));
    await assert.rejects(bad({ ...base, caFile: undefined }), code('ESETTINGS', /--fleet-ca FILE/));
    await assert.rejects(bad({ ...base, caFile: f.pub }), code('ESETTINGS', /fleet\.ca: .*not a PEM certificate/));
    await assert.rejects(bad({ ...base, keyFiles: undefined }), code('ESETTINGS', /--fleet-key FILE\.pub/));
    await assert.rejects(bad({ ...base, keyFiles: [f.key] }), code('ESETTINGS', /is a private key: give the public one/));
    await assert.rejects(bad({ ...base, keyFiles: [CA] }), code('ESETTINGS', /not a fleet public key/));
    await assert.rejects(bad({ ...base, credentialsFile: undefined }), code('EFLEET_CREDENTIALS', /--fleet-credentials FILE \(its first line\) or set NODEOS_FLEET_PASSWORD/));
    await assert.rejects(bad({ ...base, credentialsFile: join(f.dir, 'missing') }), code('EFLEET_CREDENTIALS', /cannot read the fleet credentials .*ENOENT/));
    writeFileSync(f.creds, '\n');
    await assert.rejects(bad(base), code('ESETTINGS', /fleet\.credentials: the fleet password is empty/));
    writeFileSync(f.creds, `${PASSWORD}\n`);
    await assert.rejects(bad({ ...base, name: 'a/b' }), code('ESETTINGS', /fleet\.name: "a\/b" is not a fleet name/));
    await assert.rejects(bad({ ...base, groups: ['west', '#'] }), code('ESETTINGS', /fleet\.groups\[1\]/));
    await assert.rejects(bad({ ...base, groups: ['west', 'west'] }), code('ESETTINGS', /west is listed twice/));
    await assert.rejects(bad({ name: 'greenhouse' }), code('ESETTINGS', /give --fleet mqtts:\/\/HOST:PORT too/));
  });

  it('reads a settings file\'s fleet: section, its files relative to it', () => {
    const f = files();
    writeFileSync(join(f.dir, 'ca.pem'), readFileSync(CA));
    writeFileSync(join(f.dir, 'site.yaml'), 'fleet:\n  broker: mqtts://broker.lan:8883\n  name: greenhouse\n  groups: [west]\n  ca: ca.pem\n  keys: [nodeos-fleet.pub]\n  credentials: board.pw\n');
    const s = loadSettingsFile(join(f.dir, 'site.yaml'), {});
    assert.deepEqual([s.fleet?.fleet, s.fleet?.groups, s.fleet?.keys.map((k) => k.id), s.fleet?.password], ['greenhouse', ['west'], [f.id], PASSWORD]);
    writeFileSync(join(f.dir, 'bad.yaml'), 'fleet:\n  broker: mqtts://broker.lan:8883\n  ca: ca.pem\n  keys: [nodeos-fleet.pub]\n  password: x\n');
    assert.throws(() => loadSettingsFile(join(f.dir, 'bad.yaml'), {}), code('ESETTINGS', /fleet\.password: unknown field/));
  });

  it('decodeFleet refuses a damaged or edited variable instead of trusting part of it', () => {
    const f = files();
    const good = { broker: 'mqtts://b:8883', fleet: 'f', groups: [], ca: readFileSync(CA, 'utf8'), keys: [{ id: f.id, pem: readFileSync(f.pub, 'utf8') }] };
    assert.ok(decodeFleet(encodeFleet(good)).fleet);
    assert.match(decodeFleet('{').error!, /not JSON/);
    assert.match(decodeFleet(encodeFleet({ ...good, keys: [{ id: 'SHA256:other', pem: good.keys[0]!.pem }] })).error!, /id does not match/);
    assert.match(decodeFleet(encodeFleet({ ...good, keys: [] })).error!, /no fleet key/);
    assert.deepEqual(decodeFleet(undefined), {});
  });
});

describe('settings: the fleet password at the first boot', () => {
  after(cleanupTemp);
  const card = async (): Promise<Map<string, string>> => {
    const f = files();
    return applySettings(new Map(), await resolveSettings({ fleet: { broker: 'mqtts://b:8883', name: 'greenhouse', groups: ['west'], caFile: CA, keyFiles: [f.pub], credentialsFile: f.creds } }, {}));
  };

  it('moves the password to the users\' partition (0600) and deletes it from the card; the setting stays', async () => {
    const vars = await card();
    const dir = tempDir();
    const file = join(dir, '.config/nodeos/fleet-password');
    const removed: string[][] = [];
    const logs: string[] = [];
    const r = applyBootSettings({ vars, hostname: 'n', wifiFile: join(dir, 'wifi.json'), fleetPasswordFile: file, removeFromCard: (names) => removed.push(names), log: (m) => logs.push(m) });
    assert.equal(readFileSync(file, 'utf8'), PASSWORD);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(removed, [[ENV_FLEET_PASSWORD]]);
    assert.deepEqual(r.state.fleet, { fleet: 'greenhouse', broker: 'mqtts://b:8883', groups: ['west'], password: 'users' });
    assert.deepEqual(r.state.problems, []);
    assert.ok(!JSON.stringify([r, logs]).includes(PASSWORD));
    // The next boot: the card no longer has it, the users' partition does.
    vars.delete(ENV_FLEET_PASSWORD);
    const again = applyBootSettings({ vars, hostname: 'n', wifiFile: join(dir, 'wifi.json'), fleetPasswordFile: file, removeFromCard: () => assert.fail('nothing to remove'), log: () => undefined });
    assert.equal(again.state.fleet?.password, 'users');
    assert.equal(readFleetPassword(file), PASSWORD);
  });

  it('without a users\' partition the password stays on the card, and the board says so', async () => {
    const r = applyBootSettings({ vars: await card(), hostname: 'n', removeFromCard: () => assert.fail('kept'), log: () => undefined });
    assert.equal(r.state.fleet?.password, 'card');
    assert.match(r.state.problems.join('\n'), /broker password stays on the card's boot partition/);
  });

  it('a card that cannot be written keeps the password and the file is still made; a damaged setting is said', async () => {
    const vars = await card();
    const dir = tempDir();
    const file = join(dir, 'fleet-password');
    const r = applyBootSettings({ vars, hostname: 'n', wifiFile: join(dir, 'wifi.json'), fleetPasswordFile: file, removeFromCard: () => { throw new Error('read-only file system'); }, log: () => undefined });
    assert.equal(r.state.fleet?.password, 'card');
    assert.match(r.state.problems.join('\n'), /could not be moved off .*read-only file system/);
    assert.ok(existsSync(file));
    const broken = applyBootSettings({ vars: new Map([[ENV_FLEET, '{"broker":"mqtt://x"}']]), hostname: 'n', removeFromCard: () => undefined, log: () => undefined });
    assert.equal(broken.state.fleet, undefined);
    assert.match(broken.state.problems.join('\n'), /nodeos_fleet: fleet\.broker: .*the board does not join its fleet/);
  });
});
