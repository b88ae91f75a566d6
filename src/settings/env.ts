/**
 * The first-boot settings as the card carries them: variables of its U-Boot environment
 * (uboot.env and its copy on the boot partition), written by `build` and `flash` and read by
 * the board's init. Device-safe: Node's built-ins only (the board runtime imports this file).
 *
 * - `nodeos_timezone`: an IANA time zone (`Europe/Berlin`), the board's TZ.
 * - `nodeos_keyboard`: the screen console's keyboard layout (us, uk, de, fr, es, it).
 * - `nodeos_wifi_country`: the regulatory country (ISO 3166-1 alpha-2, or `00` for the world domain).
 * - `nodeos_wifi`: the Wi-Fi networks, JSON `[{ "ssid": "home", "psk": "<64 hex>", "priority": 1 }]`.
 *   A secret (the PSK joins the network): the board moves it to the users' partition on its
 *   first boot and deletes it from the card's FAT; it is never printed. The passphrase itself
 *   is never stored, only the WPA PSK derived from it (IEEE 802.11i, as `wpa_passphrase` does).
 *
 * The host name (`nodeos.hostname=` on the kernel command line) and the SSH keys
 * (`nodeos_ssh_keys`) are written by the same customisation; see flash/customize.ts.
 */
import { pbkdf2Sync } from 'node:crypto';

/**
 * Why a value cannot go into a card's environment as given, or undefined: U-Boot's `env import`
 * (boot.scr reads uboot.env with it at every boot) reads a backslash as an escape and drops it
 * (lib/hashtable.c, himport_r), so a value holding one would not reach the board as written.
 */
export function backslashProblem(value: string): string | undefined {
  return value.includes('\\') ? "holds a backslash, which U-Boot's env import drops (it reads it as an escape): the board would not get this value as given" : undefined;
}

export const ENV_TIMEZONE = 'nodeos_timezone';
export const ENV_KEYBOARD = 'nodeos_keyboard';

/** The keyboard layouts a board with a screen ships, and the XKB layout each is made from. */
export const KEYBOARD_LAYOUTS = { us: 'us', uk: 'gb', de: 'de', fr: 'fr', es: 'es', it: 'it' } as const;
export type KeyboardLayout = keyof typeof KEYBOARD_LAYOUTS;

/** Where a layout's keymap (busybox loadkmap's format) lives in the system slot. */
export const keymapPath = (layout: KeyboardLayout): string => `/usr/share/keymaps/${layout}.bmap`;

/** Why a keyboard layout cannot be used, or undefined. */
export function keyboardProblem(k: string): string | undefined {
  return Object.hasOwn(KEYBOARD_LAYOUTS, k) ? undefined : `keyboard layout ${JSON.stringify(k)} is not one the image has: ${Object.keys(KEYBOARD_LAYOUTS).join(', ')}`;
}
export const ENV_WIFI_COUNTRY = 'nodeos_wifi_country';
export const ENV_WIFI = 'nodeos_wifi';

/** A Wi-Fi network as stored: never the passphrase. */
export interface WifiNetwork {
  ssid: string;
  /** The WPA PSK, 64 lower-case hex digits. */
  psk: string;
  /** Higher is tried first (wpa_supplicant's priority); default 0. */
  priority: number;
}

/** The WPA PSK of a passphrase: PBKDF2-HMAC-SHA1(passphrase, SSID, 4096 rounds, 32 bytes). */
export function wpaPsk(ssid: string, passphrase: string): string {
  return pbkdf2Sync(Buffer.from(passphrase, 'utf8'), Buffer.from(ssid, 'utf8'), 4096, 32, 'sha1').toString('hex');
}

/** Why an SSID cannot be used, or undefined: 1 to 32 bytes (UTF-8), no NUL. */
export function ssidProblem(ssid: string): string | undefined {
  const n = Buffer.byteLength(ssid, 'utf8');
  if (n < 1 || n > 32) return `SSID ${JSON.stringify(ssid)} is ${n} bytes: an SSID is 1 to 32 bytes`;
  if (ssid.includes('\0')) return 'an SSID cannot hold a NUL byte';
  return undefined;
}

/**
 * Why a passphrase cannot be used, or undefined: WPA-Personal takes 8 to 63 printable ASCII
 * characters (IEEE 802.11i; wpa_supplicant refuses others), or the 64-hex-digit PSK itself.
 * The message never contains the passphrase.
 */
export function passphraseProblem(p: string): string | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(p)) return undefined;
  if (p.length < 8 || p.length > 63) return `the passphrase is ${p.length} characters: WPA takes 8 to 63 (or the 64 hex digits of the PSK)`;
  if (!/^[\x20-\x7e]+$/.test(p)) return 'the passphrase holds a character that is not printable ASCII: WPA passphrases are ASCII';
  return undefined;
}

/** The PSK to store for a passphrase (or for a PSK given as 64 hex digits). */
export function pskFor(ssid: string, passphrase: string): string {
  return /^[0-9a-fA-F]{64}$/.test(passphrase) ? passphrase.toLowerCase() : wpaPsk(ssid, passphrase);
}

/** Region codes ICU names that are not countries with a regulatory domain. */
const NOT_COUNTRIES = new Set(['EU', 'EZ', 'UN', 'QO', 'ZZ', 'XA', 'XB', 'UK']);

/** Why a Wi-Fi country cannot be used, or undefined: ISO 3166-1 alpha-2 (as ICU knows them), or 00. */
export function countryProblem(cc: string): string | undefined {
  if (cc === '00') return undefined;
  let known = false;
  if (/^[A-Z]{2}$/.test(cc) && !NOT_COUNTRIES.has(cc)) {
    try {
      known = new Intl.DisplayNames('en', { type: 'region', fallback: 'none' }).of(cc) !== undefined;
    } catch {
      known = false;
    }
  }
  if (known) return undefined;
  return `Wi-Fi country ${JSON.stringify(cc)} is not an ISO 3166-1 country code: use two capital letters such as DE, GB, US (00: the world domain)${cc === 'UK' ? '; the United Kingdom is GB' : ''}`;
}

/** Why a time zone cannot be used, or undefined: an IANA name this Node.js knows (its ICU data). */
export function timezoneProblem(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return /^[A-Za-z0-9_+\-/]+$/.test(tz) ? undefined : `time zone ${JSON.stringify(tz)} is not an IANA name`;
  } catch {
    return `time zone ${JSON.stringify(tz)} is unknown: use an IANA name such as Europe/Berlin, America/New_York or UTC`;
  }
}

/** The networks as one environment value (sorted by priority, highest first, then by SSID). */
export function encodeWifi(networks: readonly WifiNetwork[]): string {
  const sorted = [...networks].sort((a, b) => b.priority - a.priority || (a.ssid < b.ssid ? -1 : a.ssid > b.ssid ? 1 : 0));
  return JSON.stringify(sorted.map((n) => ({ ssid: n.ssid, psk: n.psk, priority: n.priority })));
}

/** Networks added to those there already: one of the same SSID is replaced. */
export function mergeWifi(have: readonly WifiNetwork[], add: readonly WifiNetwork[]): WifiNetwork[] {
  return [...have.filter((h) => !add.some((a) => a.ssid === h.ssid)), ...add];
}

/** Read the networks back; what cannot be used is listed in `errors` (never with the PSK). */
export function decodeWifi(value: string | undefined): { networks: WifiNetwork[]; errors: string[] } {
  if (value === undefined || value === '') return { networks: [], errors: [] };
  let list: unknown;
  try {
    list = JSON.parse(value);
  } catch {
    return { networks: [], errors: [`${ENV_WIFI} is not JSON`] };
  }
  if (!Array.isArray(list)) return { networks: [], errors: [`${ENV_WIFI} is not a list of networks`] };
  const networks: WifiNetwork[] = [];
  const errors: string[] = [];
  list.forEach((n: unknown, i) => {
    const o = (n ?? {}) as { ssid?: unknown; psk?: unknown; priority?: unknown };
    const where = `Wi-Fi network ${i + 1}`;
    if (typeof o.ssid !== 'string') return errors.push(`${where}: no SSID`);
    const bad = ssidProblem(o.ssid);
    if (bad) return errors.push(`${where}: ${bad}`);
    if (typeof o.psk !== 'string' || !/^[0-9a-f]{64}$/.test(o.psk)) return errors.push(`${where} (${o.ssid}): its PSK is not 64 hex digits`);
    const priority = o.priority === undefined ? 0 : o.priority;
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0) return errors.push(`${where} (${o.ssid}): priority must be a whole number >= 0`);
    networks.push({ ssid: o.ssid, psk: o.psk, priority });
  });
  return { networks, errors };
}

/** The most a network's priority can be (wpa_supplicant takes an int; a few levels are what people use). */
export const MAX_WIFI_PRIORITY = 1000;

/** Why a priority cannot go into wpa_supplicant.conf (undefined when it can): a whole number 0..1000. */
export function priorityProblem(priority: unknown): string | undefined {
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_WIFI_PRIORITY) {
    return `priority must be a whole number from 0 to ${MAX_WIFI_PRIORITY}, not ${JSON.stringify(priority) ?? String(priority)}`;
  }
  return undefined;
}
