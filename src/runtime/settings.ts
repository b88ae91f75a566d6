/**
 * The first-boot settings `build` and `flash` wrote into the card's U-Boot environment
 * (src/settings/env.ts), applied by init at every boot:
 * - the time zone becomes TZ for init, the REPL, the SSH sessions and the apps;
 * - the keyboard layout is loaded for the screen console (busybox loadkmap);
 * - the Wi-Fi networks (a secret) are moved to the users' partition (/home/.config/nodeos/wifi.json,
 *   root only) and deleted from the card's FAT, which any computer can read;
 * - what cannot be applied is said on the console and kept, with the rest, in
 *   /run/nodeos/settings.json for `board.info.settings`: never silently dropped.
 * The host name is the kernel command line's (hostname.ts); SSH keys are the SSH server's.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { replaceFileAtomically } from '../atomic-file.js';
import { countryProblem, decodeWifi, ENV_KEYBOARD, ENV_TIMEZONE, ENV_WIFI, ENV_WIFI_COUNTRY, keyboardProblem, keymapPath, mergeWifi, timezoneProblem, type KeyboardLayout, type WifiNetwork } from '../settings/env.js';

export const SETTINGS_STATE = '/run/nodeos/settings.json';
/** The Wi-Fi networks once moved off the card (0600). */
export const WIFI_FILE = '/home/.config/nodeos/wifi.json';

/** What init applied, for board.info.settings. No secret in it. */
export interface SettingsState {
  hostname: string;
  timezone?: string;
  keyboard?: string;
  wifi: { country?: string; networks: { ssid: string; priority: number }[]; kept: 'users' | 'card' | 'none' };
  problems: string[];
}

export interface ApplyOptions {
  /** The card's variables (undefined: no environment could be read). */
  vars: ReadonlyMap<string, string> | undefined;
  hostname: string;
  hostnameProblem?: string;
  /** Where the networks are kept; undefined when the board has no users' partition. */
  wifiFile?: string;
  /** Load a keymap file into the console keyboard: an error message, or undefined. Absent: the board has no screen console. */
  loadKeymap?: (file: string) => string | undefined;
  /** Delete the Wi-Fi variable from the card's environment (both copies). */
  removeFromCard: () => void;
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
        o.removeFromCard();
        if (card.networks.length) o.log(`wifi: ${card.networks.map((n) => JSON.stringify(n.ssid)).join(', ')} moved from the card to the users' partition`);
      } catch (err) {
        problems.push(`Wi-Fi: the networks could not be moved off the card's boot partition: ${(err as Error).message}`);
      }
    }
    if (networks.length) state.wifi.kept = 'users';
  }
  const listed = networks.map((n) => ({ ssid: n.ssid, priority: n.priority })).sort((a, b) => b.priority - a.priority);
  if (listed.length && !state.wifi.country) problems.push('Wi-Fi: no valid country is set (flash --wifi-country): a radio may not transmit without one');
  for (const p of problems) o.log(`settings: ${p}`);
  // In a fixed order, for people reading board.info.
  const cc = state.wifi.country;
  const out: SettingsState = { hostname: o.hostname, ...(state.timezone ? { timezone: state.timezone } : {}), ...(state.keyboard ? { keyboard: state.keyboard } : {}), wifi: { ...(cc ? { country: cc } : {}), networks: listed, kept: state.wifi.kept }, problems };
  return { state: out, ...(tz ? { tz } : {}) };
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
