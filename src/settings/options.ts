/**
 * The settings `build` and `flash` are given: a settings file, then the command line's
 * options over it (a value replaces the file's; a Wi-Fi network and SSH keys add to them).
 * The Wi-Fi passphrase is never an option's value: it is read from a file, from
 * NODEOS_WIFI_PSK, or asked for on the terminal (without echo).
 */
import { readFileSync } from 'node:fs';
import { BspError } from '../errors.js';
import { loadSshKeyFiles } from '../net/ssh-keys.js';
import { passphraseProblem, pskFor } from './env.js';
import { readFleetFiles, type FleetFiles } from './fleet-files.js';
import { loadSettingsFile } from './file.js';
import { settingsProblems, type Settings } from './index.js';

/** Where the passphrase of `--wifi` comes from when no file is given. */
export const WIFI_PSK_ENV = 'NODEOS_WIFI_PSK';

export interface SettingsInput {
  /** `--settings FILE` (YAML or JSON). */
  file?: string;
  hostname?: string;
  timezone?: string;
  keyboard?: string;
  /** `--ssh-key FILE...`: public key files. */
  sshKeyFiles?: string[];
  /** `--wifi SSID`. */
  wifi?: string;
  /** `--wifi-psk-file FILE`: its first line is the passphrase (or the PSK's 64 hex digits). */
  wifiPskFile?: string;
  wifiPriority?: number;
  /** `--wifi-country CC`. */
  wifiCountry?: string;
  /** `--fleet URL --fleet-name --fleet-group --fleet-ca --fleet-key --fleet-credentials`: replaces the file's fleet. */
  fleet?: Partial<FleetFiles>;
}

/**
 * The settings, every value checked (ESETTINGS names the field; EWIFI_PSK when there is no
 * passphrase to be had). `ask` reads a secret from the terminal, or is absent when there is none.
 */
export async function resolveSettings(i: SettingsInput, env: NodeJS.ProcessEnv = process.env, ask?: (question: string) => Promise<string>): Promise<Settings> {
  const s: Settings = i.file ? loadSettingsFile(i.file, env) : {};
  if (i.hostname !== undefined) s.hostname = i.hostname;
  if (i.timezone !== undefined) s.timezone = i.timezone;
  if (i.keyboard !== undefined) s.keyboard = i.keyboard;
  if (i.wifiCountry !== undefined) s.wifiCountry = i.wifiCountry;
  if (i.sshKeyFiles?.length) s.sshKeys = [...(s.sshKeys ?? []), ...loadSshKeyFiles(i.sshKeyFiles).map((k) => k.line)];
  if (i.wifiPskFile !== undefined && i.wifi === undefined) throw new BspError('ESETTINGS', '--wifi-psk-file is the passphrase of the --wifi network: give --wifi SSID too');
  if (i.wifi !== undefined) {
    let passphrase: string;
    let from: string;
    if (i.wifiPskFile !== undefined) {
      try {
        passphrase = readFileSync(i.wifiPskFile, 'utf8').split(/\r?\n/)[0]!;
      } catch (err) {
        throw new BspError('EWIFI_PSK', `cannot read the passphrase file ${i.wifiPskFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      from = i.wifiPskFile;
    } else if (env[WIFI_PSK_ENV] !== undefined) {
      passphrase = env[WIFI_PSK_ENV]!;
      from = WIFI_PSK_ENV;
    } else if (ask) {
      passphrase = await ask(`passphrase of Wi-Fi network ${JSON.stringify(i.wifi)} (not shown): `);
      from = 'the passphrase typed';
    } else {
      throw new BspError('EWIFI_PSK', `no passphrase for --wifi ${i.wifi}: give --wifi-psk-file FILE or set ${WIFI_PSK_ENV}, or run on a terminal to be asked (it is never taken on the command line)`);
    }
    const bad = passphraseProblem(passphrase);
    if (bad) throw new BspError('EWIFI_PSK', `${from}: ${bad}`);
    const net = { ssid: i.wifi, psk: pskFor(i.wifi, passphrase), priority: i.wifiPriority ?? 0 };
    s.wifi = [...(s.wifi ?? []).filter((n) => n.ssid !== i.wifi), net];
  }
  if (i.fleet) {
    const given = Object.keys(i.fleet).filter((k) => i.fleet![k as keyof FleetFiles] !== undefined);
    if (given.length && i.fleet.broker === undefined) throw new BspError('ESETTINGS', '--fleet-name, --fleet-group, --fleet-ca, --fleet-key and --fleet-credentials describe the --fleet broker: give --fleet mqtts://HOST:PORT too');
    if (i.fleet.broker !== undefined) s.fleet = readFleetFiles({ ...i.fleet, broker: i.fleet.broker }, env);
  }
  const problem = settingsProblems(s)[0];
  if (problem) throw new BspError('ESETTINGS', `${problem.field}: ${problem.message}${i.file ? ` (from ${i.file} and the command line)` : ''}`);
  return s;
}
