/**
 * The first-boot settings `build` and `flash` wrote into the card's U-Boot environment
 * (src/settings/env.ts), applied by init at every boot:
 * - the time zone becomes TZ for init, the REPL, the SSH sessions and the apps;
 * - the keyboard layout is loaded for the screen console (busybox loadkmap);
 * - the Wi-Fi networks (a secret) are moved to the users' partition (/home/.config/nodeos/wifi.json,
 *   root only) and deleted from the card's FAT, which any computer can read; so is the fleet's
 *   MQTT password (/home/.config/nodeos/fleet-password), the fleet setting itself stays;
 * - what cannot be applied is said on the console and kept, with the rest, in
 *   /run/nodeos/settings.json for `board.info.settings`: never silently dropped.
 * The host name is the kernel command line's (hostname.ts); SSH keys are the SSH server's.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { replaceFileAtomically } from '../atomic-file.js';
import { decodeFleet, ENV_FLEET, ENV_FLEET_PASSWORD, fleetPasswordProblem } from '../settings/fleet.js';
import { countryProblem, decodeWifi, ENV_KEYBOARD, ENV_TIMEZONE, ENV_WIFI, ENV_WIFI_COUNTRY, keyboardProblem, keymapPath, mergeWifi, timezoneProblem, type KeyboardLayout, type WifiNetwork } from '../settings/env.js';

export const SETTINGS_STATE = '/run/nodeos/settings.json';
/** The Wi-Fi networks once moved off the card (0600). */
export const WIFI_FILE = '/home/.config/nodeos/wifi.json';
/** The fleet's MQTT password once moved off the card (0600). */
export const FLEET_PASSWORD_FILE = '/home/.config/nodeos/fleet-password';

/** What init applied, for board.info.settings. No secret in it. */
export interface SettingsState {
  hostname: string;
  timezone?: string;
  keyboard?: string;
  wifi: { country?: string; networks: { ssid: string; priority: number }[]; kept: 'users' | 'card' | 'none' };
  /** The fleet the board joins, and where its password is kept. */
  fleet?: { fleet: string; broker: string; groups: string[]; password: 'users' | 'card' | 'none' };
  problems: string[];
}

export interface ApplyOptions {
  /** The card's variables (undefined: no environment could be read). */
  vars: ReadonlyMap<string, string> | undefined;
  hostname: string;
  hostnameProblem?: string;
  /** Where the networks are kept; undefined when the board has no users' partition. */
  wifiFile?: string;
  /** Where the fleet's password is kept; undefined when the board has no users' partition. */
  fleetPasswordFile?: string;
  /** Load a keymap file into the console keyboard: an error message, or undefined. Absent: the board has no screen console. */
  loadKeymap?: (file: string) => string | undefined;
  /** Delete these variables (secrets that were moved) from the card's environment (both copies). */
  removeFromCard: (names: string[]) => void;
  log: (msg: string) => void;
}

/** The networks kept on the users' partition (none when the file is missing or unreadable). */
export function readWifiFile(path: string): WifiNetwork[] {
  if (!existsSync(path)) return [];
  const f = JSON.parse(readFileSync(path, 'utf8')) as { networks?: unknown };
  return decodeWifi(JSON.stringify(f.networks ?? [])).networks;
}

/** Apply the settings; returns what was applied (TZ to set when a time zone is). */
export function applyBootSettings(o: ApplyOptions): { state: SettingsState; tz?: string } {
  const problems: string[] = o.hostnameProblem ? [o.hostnameProblem] : [];
  const state: SettingsState = { hostname: o.hostname, wifi: { networks: [], kept: 'none' }, problems };
  const vars = o.vars ?? new Map<string, string>();
  let tz: string | undefined;
  const zone = vars.get(ENV_TIMEZONE);
  if (zone !== undefined) {
    const bad = timezoneProblem(zone);
    if (bad) problems.push(`${bad}: the clock shows UTC`);
    else tz = state.timezone = zone;
  }
  const keyboard = vars.get(ENV_KEYBOARD);
  if (keyboard !== undefined) {
    const bad = keyboardProblem(keyboard);
    if (bad) problems.push(`${bad}: the keyboard stays us`);
    else if (!o.loadKeymap) problems.push(`keyboard ${keyboard}: this board has no screen console to use it on`);
    else {
      const err = o.loadKeymap(keymapPath(keyboard as KeyboardLayout));
      if (err) problems.push(`keyboard ${keyboard}: not loaded (${err}): the keyboard stays us`);
      else state.keyboard = keyboard;
    }
  }
  const country = vars.get(ENV_WIFI_COUNTRY);
  if (country !== undefined) {
    const bad = countryProblem(country);
    if (bad) problems.push(bad);
    else state.wifi.country = country;
  }
  const card = decodeWifi(vars.get(ENV_WIFI));
  for (const e of card.errors) problems.push(`${e}: that network is left out`);
  let networks: WifiNetwork[] = [];
  if (!o.wifiFile) {
    networks = card.networks;
    if (networks.length) {
      state.wifi.kept = 'card';
      problems.push(`Wi-Fi: ${networks.length} network(s) stay on the card's boot partition (readable by any computer): this boot has no users' partition to move them to`);
    }
  } else {
    let kept: WifiNetwork[] = [];
    try {
      kept = readWifiFile(o.wifiFile);
    } catch (err) {
      problems.push(`Wi-Fi: ${o.wifiFile} cannot be read (${(err as Error).message}): its networks are ignored`);
    }
    networks = mergeWifi(kept, card.networks);
    if (vars.has(ENV_WIFI)) {
      try {
        if (card.networks.length) {
          mkdirSync(dirname(o.wifiFile), { recursive: true, mode: 0o700 });
          replaceFileAtomically(o.wifiFile, Buffer.from(JSON.stringify({ networks }, null, 2) + '\n'), 0o600);
        }
        o.removeFromCard([ENV_WIFI]);
        if (card.networks.length) o.log(`wifi: ${card.networks.map((n) => JSON.stringify(n.ssid)).join(', ')} moved from the card to the users' partition`);
      } catch (err) {
        problems.push(`Wi-Fi: the networks could not be moved off the card's boot partition: ${(err as Error).message}`);
      }
    }
    if (networks.length) state.wifi.kept = 'users';
  }
  const fleet = fleetSettings(vars, o, problems);
  const listed = networks.map((n) => ({ ssid: n.ssid, priority: n.priority })).sort((a, b) => b.priority - a.priority);
  if (listed.length && !state.wifi.country) problems.push('Wi-Fi: no valid country is set (flash --wifi-country): a radio may not transmit without one');
  for (const p of problems) o.log(`settings: ${p}`);
  // In a fixed order, for people reading board.info.
  const cc = state.wifi.country;
  const out: SettingsState = { hostname: o.hostname, ...(state.timezone ? { timezone: state.timezone } : {}), ...(state.keyboard ? { keyboard: state.keyboard } : {}), wifi: { ...(cc ? { country: cc } : {}), networks: listed, kept: state.wifi.kept }, ...(fleet ? { fleet } : {}), problems };
  return { state: out, ...(tz ? { tz } : {}) };
}

/** The fleet's password, read from where init keeps it: undefined when absent or unusable. */
export function readFleetPassword(file: string): string | undefined {
  try {
    const p = readFileSync(file, 'utf8');
    return fleetPasswordProblem(p) ? undefined : p;
  } catch {
    return undefined;
  }
}

/** The fleet setting: its password moved off the card to the users' partition when there is one. */
function fleetSettings(vars: ReadonlyMap<string, string>, o: ApplyOptions, problems: string[]): SettingsState['fleet'] {
  const { fleet, error } = decodeFleet(vars.get(ENV_FLEET));
  if (error) problems.push(`${error}: the board does not join its fleet (flash it again with --fleet ...)`);
  const onCard = vars.get(ENV_FLEET_PASSWORD);
  let kept: 'users' | 'card' | 'none' = 'none';
  if (onCard !== undefined) {
    const bad = fleetPasswordProblem(onCard);
    if (bad) problems.push(`fleet: ${bad}: the board cannot log in to its broker`);
    else if (!o.fleetPasswordFile) {
      kept = 'card';
      if (fleet) problems.push("fleet: the broker password stays on the card's boot partition (readable by any computer): this boot has no users' partition to move it to");
    } else {
      try {
        mkdirSync(dirname(o.fleetPasswordFile), { recursive: true, mode: 0o700 });
        replaceFileAtomically(o.fleetPasswordFile, Buffer.from(onCard), 0o600);
        o.removeFromCard([ENV_FLEET_PASSWORD]);
        o.log("fleet: the broker password moved from the card to the users' partition");
        kept = 'users';
      } catch (err) {
        problems.push(`fleet: the broker password could not be moved off the card's boot partition: ${(err as Error).message}`);
        kept = 'card';
      }
    }
  } else if (o.fleetPasswordFile && readFleetPassword(o.fleetPasswordFile) !== undefined) kept = 'users';
  if (!fleet) return undefined;
  if (kept === 'none') problems.push('fleet: no broker password on the card nor on the users\' partition: the board cannot log in (flash it again with --fleet-credentials FILE)');
  return { fleet: fleet.fleet, broker: fleet.broker, groups: fleet.groups, password: kept };
}

/** The state init recorded, for board.info.settings; undefined when absent or unreadable. */
export function settingsState(json: Buffer | undefined): SettingsState | undefined {
  if (!json) return undefined;
  try {
    return JSON.parse(json.toString('utf8')) as SettingsState;
  } catch {
    return undefined;
  }
}
