/**
 * The fleet setting (`build` / `flash --fleet mqtts://HOST:PORT ...`) as the card carries it,
 * in two U-Boot variables. Device-safe: the board's init and fleet agent read it.
 *
 * - `nodeos_fleet`: JSON `{ "broker": "mqtts://HOST:PORT", "fleet": "<name>", "groups": [...],
 *   "ca": ["<base64 DER>", ...], "keys": [{ "id": "SHA256:...", "spki": "<base64 DER>" }] }`:
 *   where the board connects (TLS only, the broker's CA pinned), the fleet and groups it is in,
 *   and the fleet keys whose signed jobs it takes. Nothing in it is secret; it stays on the
 *   card. The certificates and keys are DER in base64, not PEM: a PEM's line breaks would be
 *   `\n` in JSON, and U-Boot's `env import` reads a backslash as an escape and drops it
 *   (lib/hashtable.c, himport_r), so the value would not survive U-Boot saving the environment.
 * - `nodeos_fleet_password`: the board's MQTT password (its user name is its board id). A
 *   secret: the board moves it to the users' partition on its first boot and deletes it from
 *   the card's FAT, as it does the Wi-Fi PSKs; it is never printed.
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { keyId, type TrustedKey } from '../update/keys.js';
import { nameProblem } from '../fleet/topics.js';

export const ENV_FLEET = 'nodeos_fleet';
export const ENV_FLEET_PASSWORD = 'nodeos_fleet_password';

/** Where the board connects and whom it trusts: the public part of the fleet setting. */
export interface FleetSetting {
  broker: string;
  fleet: string;
  groups: string[];
  /** The CA (PEM) the broker's certificate must chain to: the only one the board trusts for it. */
  ca: string;
  /** The fleet keys jobs must be signed with. */
  keys: TrustedKey[];
}

/** The most groups a board can be in (each is one more subscription and ACL line). */
export const MAX_FLEET_GROUPS = 16;

/** Why a broker URL cannot be a board's, or undefined: mqtts://HOST[:PORT], nothing else. */
export function brokerUrlProblem(url: unknown): string | undefined {
  if (typeof url !== 'string') return 'the broker must be a URL';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${JSON.stringify(url.slice(0, 200))} is not a URL: give mqtts://HOST:PORT`;
  }
  if (u.protocol !== 'mqtts:') return `${url}: boards connect to their broker over TLS only: give mqtts://HOST:PORT`;
  if (!u.hostname) return `${url} names no host`;
  if (u.username || u.password) return `${url} carries a user name or password: the board's user name is its board id, its password comes from --fleet-credentials`;
  if ((u.pathname && u.pathname !== '/') || u.search || u.hash) return `${url}: a broker URL is mqtts://HOST:PORT, without a path`;
  return undefined;
}

/** Why a PEM text is not a certificate, or undefined. */
export function caProblem(pem: unknown): string | undefined {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----')) return 'the broker CA is not a PEM certificate (-----BEGIN CERTIFICATE-----)';
  try {
    new X509Certificate(pem);
  } catch (err) {
    return `the broker CA cannot be read: ${(err as Error).message}`;
  }
  return undefined;
}

/** Why a fleet key is not an Ed25519 public key whose id matches, or undefined. */
function keyProblem(k: unknown): string | undefined {
  const o = (k ?? {}) as { id?: unknown; pem?: unknown };
  if (typeof o.pem !== 'string' || typeof o.id !== 'string') return 'a fleet key is { id, pem }';
  try {
    const key = createPublicKey(o.pem);
    if (key.asymmetricKeyType !== 'ed25519') return `fleet key ${o.id} is ${key.asymmetricKeyType}, not Ed25519 (nodeos-bsp keys create --name nodeos-fleet)`;
    if (keyId(key) !== o.id) return `fleet key ${o.id}: its id does not match the key`;
  } catch (err) {
    return `fleet key ${o.id}: not a public key (${(err as Error).message.split('\n')[0]})`;
  }
  return undefined;
}

/** What is wrong with a fleet setting (empty: nothing), each as [field, message]. */
export function fleetProblems(f: FleetSetting): [string, string][] {
  const out: [string, string][] = [];
  const bad = (field: string, message: string | undefined): void => void (message && out.push([field, message]));
  bad('fleet.broker', brokerUrlProblem(f.broker));
  bad('fleet.name', nameProblem('fleet', f.fleet));
  if (!Array.isArray(f.groups)) bad('fleet.groups', 'a list of group names');
  else {
    if (f.groups.length > MAX_FLEET_GROUPS) bad('fleet.groups', `${f.groups.length} groups: a board is in at most ${MAX_FLEET_GROUPS}`);
    f.groups.forEach((g, i) => bad(`fleet.groups[${i}]`, nameProblem('group', g) ?? (f.groups.indexOf(g) !== i ? `${g} is listed twice` : undefined)));
  }
  bad('fleet.ca', caProblem(f.ca));
  if (!Array.isArray(f.keys) || !f.keys.length) bad('fleet.keys', 'no fleet key: a board takes only jobs signed by a key it trusts (give --fleet-key FILE.pub, made by nodeos-bsp keys create --name nodeos-fleet)');
  else f.keys.forEach((k, i) => bad(`fleet.keys[${i}]`, keyProblem(k)));
  return out;
}

/** Why an MQTT password cannot be used, or undefined (the message never holds it). */
export function fleetPasswordProblem(p: unknown): string | undefined {
  if (typeof p !== 'string' || p.length === 0) return 'the fleet password is empty';
  if (Buffer.byteLength(p, 'utf8') > 256) return 'the fleet password is longer than 256 bytes';
  if ([...p].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) return 'the fleet password holds a control character';
  return undefined;
}

/** The DER bodies of a PEM text's blocks of one kind, in base64 (no line breaks). */
function pemBodies(pem: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`, 'g');
  return [...pem.matchAll(re)].map((m) => m[1]!.replace(/\s+/g, ''));
}

/** A PEM block from a base64 DER body. */
function pemOf(body: string, label: string): string {
  return `-----BEGIN ${label}-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;
}

/** The setting as the card's variable: JSON without a backslash (U-Boot would drop it). */
export function encodeFleet(f: FleetSetting): string {
  return JSON.stringify({ broker: f.broker, fleet: f.fleet, groups: f.groups, ca: pemBodies(f.ca, 'CERTIFICATE'), keys: f.keys.map((k) => ({ id: k.id, spki: pemBodies(k.pem, 'PUBLIC KEY')[0] ?? '' })) });
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Read the card's variable back: the setting, or why it cannot be used (never both). */
export function decodeFleet(value: string | undefined): { fleet?: FleetSetting; error?: string } {
  if (value === undefined || value === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return { error: `${ENV_FLEET} is not JSON` };
  }
  const o = (v ?? {}) as { broker?: unknown; fleet?: unknown; groups?: unknown; ca?: unknown; keys?: unknown };
  const ca = Array.isArray(o.ca) && o.ca.length > 0 && o.ca.every((c) => typeof c === 'string' && BASE64.test(c)) ? (o.ca as string[]).map((c) => pemOf(c, 'CERTIFICATE')).join('') : undefined;
  const keys = Array.isArray(o.keys)
    ? o.keys.map((k: unknown) => {
        const x = (k ?? {}) as { id?: unknown; spki?: unknown };
        return { id: x.id, pem: typeof x.spki === 'string' && BASE64.test(x.spki) ? pemOf(x.spki, 'PUBLIC KEY') : undefined } as TrustedKey;
      })
    : o.keys;
  const f = { broker: o.broker, fleet: o.fleet, groups: o.groups ?? [], ca, keys } as FleetSetting;
  const problems = fleetProblems(f);
  if (problems.length) return { error: `${ENV_FLEET}: ${problems[0]![0]}: ${problems[0]![1]}` };
  return { fleet: { broker: f.broker, fleet: f.fleet, groups: [...f.groups], ca: f.ca, keys: f.keys.map((k) => ({ id: k.id, pem: k.pem })) } };
}
