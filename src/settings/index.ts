/**
 * First-boot settings (host name, SSH keys, time zone, Wi-Fi): what `build` and `flash`
 * write into a card's U-Boot environment, what `settings show` reads back from one, and what
 * the board's init applies (src/runtime/settings.ts). The variables are described in ./env.ts.
 */
import { X509Certificate } from 'node:crypto';
import { ENV_SSH_KEYS, fingerprint, parseAuthorizedKeys, parsePublicKeyLine } from '../net/ssh-keys.js';
import { decodeFleet, encodeFleet, ENV_FLEET, ENV_FLEET_PASSWORD, fleetPasswordProblem, fleetProblems, type FleetSetting } from './fleet.js';
import { backslashProblem, countryProblem, decodeWifi, encodeWifi, ENV_KEYBOARD, ENV_TIMEZONE, ENV_WIFI, ENV_WIFI_COUNTRY, keyboardProblem, mergeWifi, ssidProblem, timezoneProblem, type WifiNetwork } from './env.js';

export * from './env.js';
export * from './fleet.js';
export { loadSettingsFile, SETTINGS_FILE_KEYS, settingsFileSchema } from './file.js';
export { resolveSettings, WIFI_PSK_ENV, type SettingsInput } from './options.js';
export { DEFAULT_FLEET_NAME, FLEET_PASSWORD_ENV, readFleetFiles, type FleetFiles } from './fleet-files.js';

/** The settings a card can be given. Every field is optional: what is not given stays as the image has it. */
export interface Settings {
  /** Host name (RFC 1123 label): `nodeos.hostname=` on the kernel command line and U-Boot's `hostname`. */
  hostname?: string;
  /** OpenSSH public key lines allowed to log in, added to those the image has (`nodeos_ssh_keys`). */
  sshKeys?: string[];
  /** IANA time zone, e.g. `Europe/Berlin`. */
  timezone?: string;
  /** Keyboard layout of the screen console (us, uk, de, fr, es, it). */
  keyboard?: string;
  /** Wi-Fi regulatory country (ISO 3166-1 alpha-2). */
  wifiCountry?: string;
  /** Wi-Fi networks, their passphrases already turned into PSKs; added to (or replacing by SSID) those the card has. */
  wifi?: WifiNetwork[];
  /** The fleet the board joins (its broker, groups, pinned CA and trusted job keys), and its MQTT password (a secret); replaces the card's. */
  fleet?: FleetSetting & { password: string };
}

/** A setting that cannot be used: the field it is in and why. */
export interface SettingProblem {
  field: string;
  message: string;
}

export const HOSTNAME_RE = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** What is wrong with the settings (empty: nothing). Messages never hold a secret. */
export function settingsProblems(s: Settings): SettingProblem[] {
  const out: SettingProblem[] = [];
  if (s.hostname !== undefined && !HOSTNAME_RE.test(s.hostname)) out.push({ field: 'hostname', message: `"${s.hostname}" is not valid: 1-63 letters, digits and dashes, not starting or ending with a dash` });
  (s.sshKeys ?? []).forEach((line, i) => {
    const k = parsePublicKeyLine(line);
    if ('error' in k) out.push({ field: `sshKeys[${i}]`, message: k.error });
    const bs = backslashProblem(line);
    if (bs) out.push({ field: `sshKeys[${i}]`, message: `the key line ${bs}` });
  });
  if (s.timezone !== undefined) {
    const bad = timezoneProblem(s.timezone);
    if (bad) out.push({ field: 'timezone', message: bad });
  }
  if (s.keyboard !== undefined) {
    const bad = keyboardProblem(s.keyboard);
    if (bad) out.push({ field: 'keyboard', message: bad });
  }
  if (s.wifiCountry !== undefined) {
    const bad = countryProblem(s.wifiCountry);
    if (bad) out.push({ field: 'wifi.country', message: bad });
  }
  (s.wifi ?? []).forEach((n, i) => {
    const bad = ssidProblem(n.ssid) ?? (backslashProblem(encodeWifi([n])) ? `SSID ${JSON.stringify(n.ssid)} holds a double quote, a backslash or a control character: its JSON in the card's environment would need a backslash, which U-Boot's env import drops` : undefined);
    if (bad) out.push({ field: `wifi.networks[${i}].ssid`, message: bad });
    if (!/^[0-9a-f]{64}$/.test(n.psk)) out.push({ field: `wifi.networks[${i}].psk`, message: 'the PSK is not 64 hex digits' });
    if (!Number.isInteger(n.priority) || n.priority < 0) out.push({ field: `wifi.networks[${i}].priority`, message: 'a whole number >= 0' });
    if ((s.wifi ?? []).findIndex((m) => m.ssid === n.ssid) !== i) out.push({ field: `wifi.networks[${i}].ssid`, message: `${JSON.stringify(n.ssid)} is listed twice` });
  });
  if (s.fleet) {
    for (const [field, message] of fleetProblems(s.fleet)) out.push({ field, message });
    const bad = fleetPasswordProblem(s.fleet.password);
    if (bad) out.push({ field: 'fleet.credentials', message: bad });
  }
  if ((s.wifi?.length ?? 0) > 0 && s.wifiCountry === undefined) {
    out.push({ field: 'wifi.country', message: 'a board joins Wi-Fi only once it knows the country it is in (the radio rules): give the country (e.g. DE, GB, US)' });
  }
  return out;
}

/** Split a command line at spaces outside double quotes, as the kernel does. */
export function splitCmdline(line: string): string[] {
  return line.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

/** The U-Boot variables with the settings applied (the input is not changed). Assumes {@link settingsProblems} found nothing. */
export function applySettings(vars: ReadonlyMap<string, string>, s: Settings): Map<string, string> {
  const out = new Map(vars);
  if (s.hostname !== undefined) {
    const args = splitCmdline(out.get('bootargs') ?? '').filter((a) => !a.startsWith('nodeos.hostname='));
    out.set('bootargs', [...args, `nodeos.hostname=${s.hostname}`].join(' '));
    out.set('hostname', s.hostname);
  }
  if (s.sshKeys?.length) {
    const have = parseAuthorizedKeys(out.get(ENV_SSH_KEYS) ?? '').keys;
    for (const line of s.sshKeys) {
      const k = parsePublicKeyLine(line);
      if (!('error' in k) && !have.some((h) => h.blob.equals(k.blob))) have.push(k);
    }
    out.set(ENV_SSH_KEYS, have.map((k) => k.line).join('\n'));
  }
  if (s.timezone !== undefined) out.set(ENV_TIMEZONE, s.timezone);
  if (s.keyboard !== undefined) out.set(ENV_KEYBOARD, s.keyboard);
  if (s.wifiCountry !== undefined) out.set(ENV_WIFI_COUNTRY, s.wifiCountry);
  if (s.wifi?.length) out.set(ENV_WIFI, encodeWifi(mergeWifi(decodeWifi(out.get(ENV_WIFI)).networks, s.wifi)));
  if (s.fleet) {
    out.set(ENV_FLEET, encodeFleet(s.fleet));
    out.set(ENV_FLEET_PASSWORD, s.fleet.password);
  }
  return out;
}

/** The settings a card holds, as `settings show` prints them: secrets only as "set". */
export interface SettingsView {
  hostname?: string;
  timezone?: string;
  keyboard?: string;
  wifi: { country?: string; networks: { ssid: string; priority: number; psk: 'set' }[]; problems: string[] };
  sshKeys: { type: string; fingerprint: string; comment: string }[];
  /** The fleet the board joins; the password only as whether the card still holds it (the board moves it off at its first boot). */
  fleet?: { broker: string; fleet: string; groups: string[]; ca: string; keys: string[]; password: 'set' | 'not on the card' } | { error: string };
  /** The kernel command line U-Boot passes (console, extra arguments). */
  bootargs?: string;
}

/** Read the settings from a card's variables. */
export function settingsFromEnv(vars: ReadonlyMap<string, string>): SettingsView {
  const wifi = decodeWifi(vars.get(ENV_WIFI));
  const hostname = /(?:^|\s)nodeos\.hostname=(\S+)/.exec(vars.get('bootargs') ?? '')?.[1] ?? vars.get('hostname');
  return {
    ...(hostname !== undefined ? { hostname } : {}),
    ...(vars.has(ENV_TIMEZONE) ? { timezone: vars.get(ENV_TIMEZONE)! } : {}),
    ...(vars.has(ENV_KEYBOARD) ? { keyboard: vars.get(ENV_KEYBOARD)! } : {}),
    wifi: { ...(vars.has(ENV_WIFI_COUNTRY) ? { country: vars.get(ENV_WIFI_COUNTRY)! } : {}), networks: wifi.networks.map((n) => ({ ssid: n.ssid, priority: n.priority, psk: 'set' as const })), problems: wifi.errors },
    sshKeys: parseAuthorizedKeys(vars.get(ENV_SSH_KEYS) ?? '').keys.map((k) => ({ type: k.type, fingerprint: fingerprint(k.blob), comment: k.comment })),
    ...fleetView(vars),
    ...(vars.has('bootargs') ? { bootargs: vars.get('bootargs')! } : {}),
  };
}

function fleetView(vars: ReadonlyMap<string, string>): Pick<SettingsView, 'fleet'> {
  const { fleet, error } = decodeFleet(vars.get(ENV_FLEET));
  if (error) return { fleet: { error } };
  if (!fleet) return {};
  let ca = 'unreadable';
  try {
    const c = new X509Certificate(fleet.ca);
    ca = `${c.subject.replace(/\n/g, ', ')} (SHA-256 ${c.fingerprint256})`;
  } catch {
    // fleetProblems read it already; kept as a word.
  }
  return { fleet: { broker: fleet.broker, fleet: fleet.fleet, groups: fleet.groups, ca, keys: fleet.keys.map((k) => k.id), password: vars.has(ENV_FLEET_PASSWORD) ? 'set' : 'not on the card' } };
}
export { readCardSettings } from './card.js';
