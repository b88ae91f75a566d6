/**
 * A settings file (`--settings FILE`, YAML or JSON): one file that provisions many cards, as
 * Raspberry Pi Imager's saved customisation does:
 *
 *   hostname: kitchen
 *   timezone: Europe/Berlin
 *   keyboard: de              # the screen console's layout: us, uk, de, fr, es, it
 *   sshKeys:                  # key lines, or .pub files (relative to this file, or ~/)
 *     - keys/me.pub
 *   wifi:
 *     country: DE
 *     networks:
 *       - { ssid: home, psk: "correct horse battery", priority: 2 }
 *       - { ssid: phone, psk: "<64 hex digits of the PSK>" }
 *   fleet:                    # the fleet the board joins (docs/fleet.md); files relative to this file
 *     broker: mqtts://broker.lan:8883
 *     name: greenhouse
 *     groups: [west]
 *     ca: fleet/ca.pem
 *     keys: [keys/nodeos-fleet.pub]
 *     credentials: fleet/pi-07.pw   # its first line is the board's MQTT password (or $NODEOS_FLEET_PASSWORD)
 *
 * Checked against a schema and every value checked as the board would; a mistake is refused
 * naming its field (ESETTINGS), before any card or image is touched. Passphrases are turned
 * into WPA PSKs here and never kept, printed or written.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { BspError } from '../errors.js';
import { loadSshKeyFiles } from '../net/ssh-keys.js';
import { passphraseProblem, pskFor } from './env.js';
import { readFleetFiles } from './fleet-files.js';
import { settingsProblems, type Settings } from './index.js';

const Network = Type.Object(
  {
    ssid: Type.String({ minLength: 1, description: 'the network name (1 to 32 bytes)' }),
    psk: Type.String({ description: 'the passphrase (8 to 63 characters) or the 64 hex digits of the PSK; only the PSK is written to the card' }),
    priority: Type.Optional(Type.Integer({ minimum: 0, description: 'higher is tried first; default 0' })),
  },
  { additionalProperties: false },
);

/** The settings file's schema (JSON Schema, for editors too). */
export const settingsFileSchema = Type.Object(
  {
    hostname: Type.Optional(Type.String({ description: 'host name: 1-63 letters, digits and dashes' })),
    timezone: Type.Optional(Type.String({ description: 'IANA time zone, e.g. Europe/Berlin' })),
    keyboard: Type.Optional(Type.String({ description: 'keyboard layout of the screen console: us, uk, de, fr, es, it' })),
    sshKeys: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'OpenSSH public key lines, or .pub files relative to this file' })),
    wifi: Type.Optional(
      Type.Object(
        {
          country: Type.Optional(Type.String({ description: 'regulatory country, ISO 3166-1 alpha-2 (DE, GB, US)' })),
          networks: Type.Optional(Type.Array(Network)),
        },
        { additionalProperties: false },
      ),
    ),
    fleet: Type.Optional(
      Type.Object(
        {
          broker: Type.String({ description: 'the MQTT broker: mqtts://HOST:PORT' }),
          name: Type.Optional(Type.String({ description: 'the fleet (topics nodeos/<name>/...); default "default"' })),
          groups: Type.Optional(Type.Array(Type.String(), { description: 'groups the board is in (fleet update --group)' })),
          ca: Type.String({ description: "PEM file of the CA the broker's certificate chains to (pinned)" }),
          keys: Type.Array(Type.String(), { minItems: 1, description: 'public key files (nodeos-bsp keys create --name nodeos-fleet) that sign the fleet\'s jobs' }),
          credentials: Type.Optional(Type.String({ description: "file whose first line is the board's MQTT password; else $NODEOS_FLEET_PASSWORD" })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, $id: 'nodeos-bsp-settings' },
);
type SettingsFile = Static<typeof settingsFileSchema>;

export const SETTINGS_FILE_KEYS = Object.keys(settingsFileSchema.properties);

let validate: ReturnType<Ajv['compile']> | undefined;

/** `/wifi/networks/0/psk` → `wifi.networks[0].psk` */
function field(path: string): string {
  return path
    .split('/')
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : `${i ? '.' : ''}${p}`))
    .join('');
}

function schemaMessage(e: ErrorObject): string {
  const at = field(e.instancePath);
  if (e.keyword === 'additionalProperties') {
    const name = (e.params as { additionalProperty: string }).additionalProperty;
    const where = at ? `${at}.${name}` : name;
    return `${where}: unknown field (known here: ${Object.keys((e.parentSchema as { properties: object }).properties).join(', ')})`;
  }
  return `${at || '(the file)'}: ${e.message ?? 'is not valid'}`;
}

/** The settings in a file, every value checked; ESETTINGS names the first field that is wrong. */
export function loadSettingsFile(file: string, env: NodeJS.ProcessEnv = process.env): Settings {
  const path = resolve(file);
  const bad = (what: string): never => {
    throw new BspError('ESETTINGS', `${file}: ${what}: nothing was written; correct the file and run again`);
  };
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    bad((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
  }
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length) bad(`not YAML or JSON (${doc.errors[0]!.message.split('\n')[0]})`);
  const data = (doc.toJS() ?? {}) as unknown;
  validate ??= new Ajv({ allErrors: true, strict: false, verbose: true }).compile(settingsFileSchema);
  if (!validate(data)) {
    // A misspelt field first: "pks: unknown field" says more than "psk is required".
    const errors = validate.errors!;
    bad(schemaMessage(errors.find((e) => e.keyword === 'additionalProperties') ?? errors[0]!));
  }
  const f = data as SettingsFile;
  const s: Settings = {};
  // Files the settings name: relative to the settings file, or to the home folder (~/).
  const fromFile = (p: string): string => (p.startsWith('~/') ? join(homedir(), p.slice(2)) : resolve(dirname(path), p));
  if (f.hostname !== undefined) s.hostname = f.hostname;
  if (f.timezone !== undefined) s.timezone = f.timezone;
  if (f.keyboard !== undefined) s.keyboard = f.keyboard;
  if (f.sshKeys?.length) {
    s.sshKeys = f.sshKeys.flatMap((entry, i) => {
      // A key line starts with its type; anything else is a file (a .pub or authorized_keys).
      if (/^(ssh-|ecdsa-|sk-)/.test(entry.trim())) return [entry.trim()];
      try {
        return loadSshKeyFiles([fromFile(entry)]).map((k) => k.line);
      } catch (err) {
        return bad(`sshKeys[${i}]: ${(err as Error).message}`);
      }
    });
  }
  if (f.wifi?.country !== undefined) s.wifiCountry = f.wifi.country;
  if (f.wifi?.networks?.length) {
    s.wifi = f.wifi.networks.map((n, i) => {
      const p = passphraseProblem(n.psk);
      if (p) bad(`wifi.networks[${i}].psk: ${p}`);
      return { ssid: n.ssid, psk: pskFor(n.ssid, n.psk), priority: n.priority ?? 0 };
    });
  }
  if (f.fleet) {
    const { broker, name, groups, ca, keys, credentials } = f.fleet;
    try {
      s.fleet = readFleetFiles({ broker, ...(name !== undefined ? { name } : {}), ...(groups ? { groups } : {}), caFile: fromFile(ca), keyFiles: keys.map(fromFile), ...(credentials !== undefined ? { credentialsFile: fromFile(credentials) } : {}) }, env);
    } catch (err) {
      bad(`fleet: ${(err as Error).message}`);
    }
  }
  const problems = settingsProblems(s);
  if (problems.length) bad(`${problems[0]!.field}: ${problems[0]!.message}`);
  return s;
}
