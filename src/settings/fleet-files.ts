/**
 * The fleet setting from the files a user has: the broker's CA (PEM), the fleet's public
 * key(s) (`nodeos-bsp keys create --name nodeos-fleet` makes nodeos-fleet.pub) and the board's
 * MQTT password (the first line of a credentials file, or $NODEOS_FLEET_PASSWORD; never an
 * option's value). Each problem is an ESETTINGS or EFLEET_CREDENTIALS error naming the file;
 * no message holds the password.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BspError } from '../errors.js';
import { trustedKey } from '../update/keys.js';
import type { FleetSetting } from './fleet.js';

/** The options (or the settings file's `fleet:` section, its paths made absolute). */
export interface FleetFiles {
  broker: string;
  /** The fleet's name. Default `default`. */
  name?: string;
  groups?: string[];
  caFile?: string;
  keyFiles?: string[];
  credentialsFile?: string;
}

export const DEFAULT_FLEET_NAME = 'default';
/** Where the board's MQTT password comes from when no credentials file is given. */
export const FLEET_PASSWORD_ENV = 'NODEOS_FLEET_PASSWORD';

function read(path: string, what: string, code = 'ESETTINGS'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new BspError(code, `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The setting and its password, read and checked as far as files go (settingsProblems checks the rest). */
export function readFleetFiles(f: FleetFiles, env: NodeJS.ProcessEnv): FleetSetting & { password: string } {
  if (f.caFile === undefined) throw new BspError('ESETTINGS', `--fleet ${f.broker}: give --fleet-ca FILE, the CA (PEM) the broker's certificate chains to: the board trusts no other for it`);
  if (!f.keyFiles?.length) throw new BspError('ESETTINGS', `--fleet ${f.broker}: give --fleet-key FILE.pub, the public key fleet jobs are signed with (nodeos-bsp keys create --name nodeos-fleet)`);
  const keys = f.keyFiles.map((file) => {
    const pem = read(file, 'the fleet key');
    if (/PRIVATE KEY-----/.test(pem)) throw new BspError('ESETTINGS', `${file} is a private key: give the public one (the .pub next to it); the private key stays with whoever sends jobs`);
    try {
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key; fleet keys are Ed25519`);
      return trustedKey(key);
    } catch (err) {
      throw new BspError('ESETTINGS', `${file} is not a fleet public key (${(err as Error).message.split('\n')[0]}): make one with nodeos-bsp keys create --name nodeos-fleet`);
    }
  });
  let password: string;
  if (f.credentialsFile !== undefined) password = read(f.credentialsFile, 'the fleet credentials', 'EFLEET_CREDENTIALS').split(/\r?\n/)[0]!;
  else if (env[FLEET_PASSWORD_ENV] !== undefined) password = env[FLEET_PASSWORD_ENV];
  else throw new BspError('EFLEET_CREDENTIALS', `--fleet ${f.broker}: no MQTT password for the board: give --fleet-credentials FILE (its first line) or set ${FLEET_PASSWORD_ENV} (it is never taken on the command line)`);
  return { broker: f.broker, fleet: f.name ?? DEFAULT_FLEET_NAME, groups: f.groups ?? [], ca: read(f.caFile, 'the broker CA'), keys, password };
}
