/**
 * Wi-Fi, run by init in the background: Debian's wpa_supplicant joins the configured networks
 * (WPA2-Personal, and WPA3 networks in transition mode: the card holds the PSK, never the
 * passphrase SAE would need), what it says on its standard output is turned into one console
 * line per change and a state file for board.wifi.status(), and once joined the link gets its
 * address from busybox's udhcpc (Node cannot bind a UDP socket to one interface, and the
 * Ethernet link's DHCP client already holds port 68). Lost links are searched for again by
 * wpa_supplicant itself; a wpa_supplicant that exits is started again.
 *
 * The control socket (for scan, and for networks added from the REPL) is a UNIX datagram
 * socket, which Node cannot open: board.wifi talks to it through wpa_cli.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { replaceFileAtomically } from '../atomic-file.js';
import { BspError } from '../errors.js';
import { applyLeaseCommands, netmaskPrefix, resolvConf, type Lease } from '../net/index.js';
import { countryProblem, mergeWifi, priorityProblem, pskFor, type WifiNetwork } from '../settings/env.js';
import { badWifiSetting } from './board/backend.js';
import { busybox, BUSYBOX, waitFor } from './busybox.js';
import { readWifiFile, WIFI_FILE } from './settings.js';

export const WPA_SUPPLICANT = '/bin/wpa_supplicant';
export const WPA_CLI = '/bin/wpa_cli';
/** wpa_supplicant's configuration: written by init (0600, in memory), never on the card. */
export const WPA_CONF = '/run/nodeos/wpa_supplicant.conf';
/** Where wpa_supplicant's control sockets are (wpa_cli -p). */
export const WPA_CTRL_DIR = '/run/wpa_supplicant';
/** What the supervisor knows, for board.wifi.status(). */
export const WIFI_STATE = '/run/nodeos/wifi-state.json';
/** udhcpc's script: prints the lease for init to read. */
export const UDHCPC_SCRIPT = '/run/nodeos/udhcpc.sh';
/** Metric of the Wi-Fi default route: Ethernet's (0) is preferred when both are up, as NetworkManager does. */
export const WIFI_ROUTE_METRIC = 600;

/** The Wi-Fi link as board.wifi.status() shows it. */
export interface WifiStatus {
  /** The interface (wlan0), or undefined when the board has none (no driver, or no radio). */
  iface?: string;
  state: 'no-interface' | 'idle' | 'searching' | 'joining' | 'connected' | 'wrong-key' | 'stopped';
  ssid?: string;
  bssid?: string;
  address?: string;
  /** The default router the lease named (the route through it has metric 600: Ethernet's wins). */
  router?: string;
  country?: string;
  /** The networks configured, by SSID, highest priority first (never their keys). */
  networks: string[];
  /** The last problem (a wrong passphrase, none in range, wpa_supplicant exited). */
  problem?: string;
  /** Joins tried since boot: an outcome counts for a change made when this was lower. */
  attempts?: number;
}

/** A network wpa_supplicant sees (wpa_cli scan_results). */
export interface WifiScanResult {
  ssid: string;
  bssid: string;
  frequency: number;
  /** dBm. */
  signal: number;
  /** wpa_supplicant's flags, e.g. [WPA2-PSK-CCMP][ESS]. */
  flags: string;
}

/** `ssid="…"` as wpa_supplicant reads it: hex, so no quote or byte in the name can break the file. */
const hexSsid = (ssid: string): string => Buffer.from(ssid, 'utf8').toString('hex');

/**
 * wpa_supplicant.conf for the networks: the PSK as 64 hex digits (the card never held the
 * passphrase), WPA2-PSK and its SHA-256 variant, management frame protection when the AP
 * offers it (WPA3 transition mode requires it), the regulatory country when one is set.
 */
export function wpaConfig(o: { networks: readonly WifiNetwork[]; country?: string; ctrlDir?: string }): string {
  // Every value that reaches the file is checked here, whatever its way in (board.wifi.connect,
  // the card's settings, the users' partition's file): one that could end a line or a block is refused.
  for (const n of o.networks) {
    const p = priorityProblem(n.priority);
    if (p) throw new BspError('EWIFI_SETTING', `${JSON.stringify(n.ssid)}: ${p}; nothing was changed`);
    if (typeof n.psk !== 'string' || !/^[0-9a-f]{64}$/.test(n.psk)) throw new BspError('EWIFI_SETTING', `${JSON.stringify(n.ssid)}: its key is not 64 hex digits; connect to it again; nothing was changed`);
  }
  if (o.country !== undefined && countryProblem(o.country)) throw new BspError('EWIFI_SETTING', `${countryProblem(o.country)}; nothing was changed`);
  const lines = [`ctrl_interface=DIR=${o.ctrlDir ?? WPA_CTRL_DIR}`, 'update_config=0', 'ap_scan=1'];
  if (o.country) lines.push(`country=${o.country}`);
  for (const n of o.networks) {
    lines.push('network={', `\tssid=${hexSsid(n.ssid)}`, '\tscan_ssid=1', '\tkey_mgmt=WPA-PSK WPA-PSK-SHA256', `\tpsk=${n.psk}`, '\tieee80211w=1', `\tpriority=${n.priority}`, '}');
  }
  return lines.join('\n') + '\n';
}

/** What a line of wpa_supplicant's output means to the supervisor. */
export type WpaEvent =
  | { type: 'trying'; ssid: string; bssid: string }
  | { type: 'connected'; bssid: string }
  | { type: 'disconnected'; bssid: string; reason: number; locally: boolean }
  | { type: 'wrong-key'; ssid: string }
  | { type: 'temp-disabled'; ssid: string; reason: string }
  | { type: 'not-found' }
  | { type: 'regdom'; alpha2: string };

/** wpa_supplicant's SSID as it prints it (printf_encode: \xNN escapes, \" and \\). */
function unescapeSsid(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      bytes.push(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else if (s[i] === '\\' && i + 1 < s.length) {
      const c = s[++i]!;
      bytes.push(...Buffer.from(c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c === 'e' ? '\x1b' : c, 'latin1'));
    } else bytes.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parse one line of wpa_supplicant's standard output (`wlan0: CTRL-EVENT-…`); undefined for the rest. */
export function parseWpaLine(line: string): WpaEvent | undefined {
  const body = line.replace(/^[\w.-]+: /, '');
  let m = /^Trying to associate with ([0-9a-f:]{17}) \(SSID='(.*)' freq=\d+ MHz\)$/.exec(body);
  if (m) return { type: 'trying', bssid: m[1]!, ssid: unescapeSsid(m[2]!) };
  m = /^CTRL-EVENT-CONNECTED - Connection to ([0-9a-f:]{17}) completed/.exec(body);
  if (m) return { type: 'connected', bssid: m[1]! };
  m = /^CTRL-EVENT-DISCONNECTED bssid=([0-9a-f:]{17}) reason=(\d+)( locally_generated=1)?/.exec(body);
  if (m) return { type: 'disconnected', bssid: m[1]!, reason: Number(m[2]), locally: Boolean(m[3]) };
  m = /^CTRL-EVENT-SSID-TEMP-DISABLED id=\d+ ssid="(.*)" auth_failures=\d+ duration=\d+ reason=(\S+)/.exec(body);
  if (m) return m[2] === 'WRONG_KEY' ? { type: 'wrong-key', ssid: unescapeSsid(m[1]!) } : { type: 'temp-disabled', ssid: unescapeSsid(m[1]!), reason: m[2]! };
  if (body.startsWith('CTRL-EVENT-NETWORK-NOT-FOUND')) return { type: 'not-found' };
  m = /^CTRL-EVENT-REGDOM-CHANGE .*alpha2=(\w\w)/.exec(body);
  if (m) return { type: 'regdom', alpha2: m[1]! };
  return undefined;
}

/** The script udhcpc runs on each lease event: one line init reads ("|" never occurs in the values). */
export const UDHCPC_SCRIPT_TEXT = '#!/bin/sh\nprintf \'nodeos-dhcp|%s|%s|%s|%s|%s|%s|%s|%s\\n\' "$1" "$ip" "$mask" "$subnet" "$router" "$dns" "$lease" "$serverid"\n';

/** A line of udhcpc's script output: the event and, for bound/renew, the lease. */
export function parseUdhcpcLine(line: string): { event: string; lease?: Lease } | undefined {
  if (!line.startsWith('nodeos-dhcp|')) return undefined;
  const [, event, ip, mask, subnet, router, dns, lease, server] = line.split('|');
  if (!event) return undefined;
  if ((event !== 'bound' && event !== 'renew') || !ip) return { event };
  const prefix = (mask ? Number(mask) : subnet ? netmaskPrefix(subnet) : undefined) ?? 24;
  const seconds = Number(lease) || 3600;
  const list = (s: string | undefined): string[] => (s ?? '').split(/\s+/).filter(Boolean);
  return {
    event,
    lease: { address: ip, prefix: Number.isInteger(prefix) ? prefix : 24, routers: list(router), dns: list(dns), ntp: [], server: server ?? '', leaseSeconds: seconds, t1: seconds / 2, t2: (seconds * 7) / 8 },
  };
}

/** The first wireless interface (it has /sys/class/net/<if>/wireless), sorted: wlan0 before wlan1. */
export function pickWireless(sysClassNet = '/sys/class/net'): string | undefined {
  if (!existsSync(sysClassNet)) return undefined;
  return readdirSync(sysClassNet)
    .filter((n) => existsSync(`${sysClassNet}/${n}/wireless`) || existsSync(`${sysClassNet}/${n}/phy80211`))
    .sort()[0];
}

/** Say what the status means, in one line (init prints it on change). */
export function describeWifi(s: WifiStatus): string {
  const which = s.networks.length ? s.networks.map((n) => JSON.stringify(n)).join(', ') : 'no network configured (flash --wifi, or board.wifi.connect(ssid, passphrase))';
  switch (s.state) {
    case 'no-interface':
      return `wifi: no Wi-Fi interface (no driver for the radio, or no radio): ${s.networks.map((n) => JSON.stringify(n)).join(', ') || 'no network'} cannot be joined`;
    case 'idle':
      return `wifi: ${s.iface} up, ${which}`;
    case 'searching':
      return `wifi: ${s.iface} searching for ${which}`;
    case 'joining':
      return `wifi: ${s.iface} joining ${JSON.stringify(s.ssid)} (${s.bssid})`;
    case 'connected':
      return `wifi: ${s.iface} joined ${JSON.stringify(s.ssid)} (${s.bssid})${s.address ? `, address ${s.address}` : ''}`;
    case 'wrong-key':
      return `wifi: ${JSON.stringify(s.ssid)} refused the passphrase (the WPA handshake failed): set it again with board.wifi.connect(ssid, passphrase) or flash --wifi`;
    case 'stopped':
      return `wifi: ${s.iface} stopped${s.problem ? `: ${s.problem}` : ''}`;
  }
}

/** What the supervisor needs from init. */
export interface WifiOptions {
  hostname: string;
  country?: string;
  log: (msg: string) => void;
  /** A new address on the Wi-Fi link (not renewals). */
  onLease?: (lease: Lease, iface: string) => void;
  /** Networks still on the card (no users' partition to move them to). */
  cardNetworks?: WifiNetwork[];
  /** Whether resolv.conf is Wi-Fi's to write (no Ethernet lease holds it). */
  ownsResolver?: () => boolean;
  waitMs?: number;
}

/** The running Wi-Fi supervisor. */
export interface WifiSupervisor {
  readonly status: WifiStatus;
  stop(): void;
}

/**
 * Start Wi-Fi on the first wireless interface with the networks in the users' partition
 * (moved there from the card on first boot): wpa_supplicant runs whether or not a network is
 * configured yet, so board.wifi.scan() and connect() work from the REPL.
 */
export async function startWifi(o: WifiOptions): Promise<WifiSupervisor | undefined> {
  const iface = await waitFor(() => pickWireless(), o.waitMs ?? 15000, 250);
  // Without a users' partition the networks stay on the card (settings.ts says so): join them from there.
  const known = (): WifiNetwork[] => mergeWifi(readNetworks(), o.cardNetworks ?? []);
  const networks = known();
  if (!iface) {
    // Said only when networks wait for it: a board used on Ethernet is not told about its radio.
    const none: WifiStatus = { state: 'no-interface', networks: networks.map((n) => n.ssid) };
    if (networks.length) o.log(describeWifi(none));
    writeState(none);
    return undefined;
  }
  const status: WifiStatus = { iface, state: 'idle', networks: networks.map((n) => n.ssid), ...(o.country ? { country: o.country } : {}) };
  mkdirSync(dirname(WPA_CONF), { recursive: true });
  replaceFileAtomically(WPA_CONF, Buffer.from(wpaConfig({ networks, ...(o.country ? { country: o.country } : {}) })), 0o600);
  writeFileSync(UDHCPC_SCRIPT, UDHCPC_SCRIPT_TEXT);
  chmodSync(UDHCPC_SCRIPT, 0o755);

  let said = '';
  const update = (change: Partial<WifiStatus>): void => {
    // Networks added from the REPL (wifiConnect) are in the users' partition: list them as they are now.
    Object.assign(status, change, { networks: known().map((n) => n.ssid) });
    if (status.state === 'idle' && status.networks.length) status.state = 'searching';
    for (const k of Object.keys(change) as (keyof WifiStatus)[]) if (change[k] === undefined) delete status[k];
    writeState(status);
    const line = describeWifi(status);
    if (line !== said) o.log((said = line));
  };
  update({ state: networks.length ? 'searching' : 'idle' });

  let dhcp: ChildProcess | undefined;
  let lease: Lease | undefined;
  let stopped = false;
  const startDhcp = (): void => {
    if (dhcp) {
      dhcp.kill('SIGUSR1'); // joined again: renew now
      return;
    }
    dhcp = spawn(BUSYBOX, ['udhcpc', '-i', iface, '-f', '-R', '-t', '5', '-T', '3', '-A', '5', '-s', UDHCPC_SCRIPT, '-x', `hostname:${o.hostname}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: dhcp.stdout! }).on('line', (l) => {
      const r = parseUdhcpcLine(l);
      if (!r) return;
      if (r.lease) {
        const fresh = r.lease.address !== lease?.address;
        lease = r.lease;
        const router = lease.routers[0];
        for (const cmd of applyLeaseCommands(iface, lease, { metric: WIFI_ROUTE_METRIC })) {
          const err = busybox(cmd);
          if (err) o.log(`wifi: ${cmd.join(' ')}: ${err}`);
        }
        if (o.ownsResolver?.() ?? true) writeFileSync('/etc/resolv.conf', resolvConf(lease));
        update({ address: lease.address, router });
        if (fresh) o.onLease?.(lease, iface);
      } else if (r.event === 'deconfig' && lease) {
        busybox(['ip', 'addr', 'del', `${lease.address}/${lease.prefix}`, 'dev', iface]);
        lease = undefined;
        update({ address: undefined, router: undefined });
      }
    });
    dhcp.stderr!.resume();
    dhcp.on('exit', () => (dhcp = undefined));
  };

  let wpa: ChildProcess | undefined;
  let restarts = 0;
  let trying: { ssid: string; bssid: string } | undefined;
  const run = (): void => {
    wpa = spawn(WPA_SUPPLICANT, ['-i', iface, '-D', 'nl80211', '-c', WPA_CONF], { stdio: ['ignore', 'pipe', 'pipe'] });
    let errText = '';
    wpa.stderr!.on('data', (d: Buffer) => (errText = (errText + d.toString()).slice(-400)));
    createInterface({ input: wpa.stdout! }).on('line', (l) => {
      const e = parseWpaLine(l);
      if (!e) return;
      if (e.type === 'trying') {
        trying = e;
        update({ state: 'joining', ssid: e.ssid, bssid: e.bssid, problem: undefined, attempts: (status.attempts ?? 0) + 1 });
      } else if (e.type === 'connected') {
        restarts = 0;
        update({ state: 'connected', bssid: e.bssid, ssid: trying?.bssid === e.bssid ? trying.ssid : status.ssid, problem: undefined });
        startDhcp();
      } else if (e.type === 'disconnected') {
        if (status.state === 'connected') update({ state: 'searching', problem: `lost ${JSON.stringify(status.ssid)} (reason ${e.reason})` });
      } else if (e.type === 'wrong-key') update({ state: 'wrong-key', ssid: e.ssid, problem: `${JSON.stringify(e.ssid)} refused the passphrase` });
      else if (e.type === 'temp-disabled') update({ state: 'searching', problem: `${JSON.stringify(e.ssid)} failed to join (${e.reason}); trying again` });
      else if (e.type === 'not-found' && status.state !== 'wrong-key') update({ state: 'searching' });
      else if (e.type === 'regdom') update({ country: e.alpha2 });
    });
    wpa.on('exit', (code, signal) => {
      wpa = undefined;
      if (stopped) return;
      const wait = Math.min(60, 5 * 2 ** Math.min(restarts++, 4));
      update({ state: 'stopped', problem: `wpa_supplicant exited (${signal ?? `code ${code}`}${errText.trim() ? `: ${errText.trim().split('\n').pop()}` : ''}); starting it again in ${wait} s` });
      setTimeout(run, wait * 1000).unref();
    });
  };
  run();
  return {
    status,
    stop: () => {
      stopped = true;
      wpa?.kill();
      dhcp?.kill(); // -R: udhcpc releases the lease on the way out
    },
  };
}

function writeState(s: WifiStatus): void {
  try {
    mkdirSync(dirname(WIFI_STATE), { recursive: true });
    writeFileSync(WIFI_STATE, JSON.stringify(s, null, 2) + '\n');
  } catch {
    // board.wifi.status() says it cannot tell.
  }
}

/** The networks kept in the users' partition (none when it is missing or unreadable). */
function readNetworks(file = WIFI_FILE): WifiNetwork[] {
  try {
    return existsSync(file) ? readWifiFile(file) : [];
  } catch {
    return [];
  }
}

/** The supervisor's state file, for board.wifi.status() (another process: the REPL). */
export function readWifiState(file = WIFI_STATE): WifiStatus {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as WifiStatus;
  } catch {
    return { state: 'no-interface', networks: [], problem: 'Wi-Fi is not running (no wireless interface, or this board has no Wi-Fi in its profile)' };
  }
}

/** Run wpa_cli against the running wpa_supplicant; its output, or EWIFI with what it said. */
export function wpaCli(iface: string, args: string[]): string {
  const r = spawnSync(WPA_CLI, ['-p', WPA_CTRL_DIR, '-i', iface, ...args], { encoding: 'utf8', timeout: 10000 });
  const out = (r.stdout ?? '').trim();
  if (r.error || r.status !== 0 || /^FAIL/m.test(out)) throw new BspError('EWIFI', `wpa_cli ${args[0]}: ${r.error?.message ?? (out || r.stderr?.trim() || `exit ${r.status}`)}; is Wi-Fi running (board.wifi.status())?`);
  return out;
}

/** wpa_cli scan_results: a header line, then bssid, frequency, signal, flags and SSID separated by tabs. */
export function parseScanResults(text: string): WifiScanResult[] {
  const seen = new Map<string, WifiScanResult>();
  for (const line of text.split('\n')) {
    const [bssid, freq, signal, flags, ...ssid] = line.split('\t');
    if (!bssid || !/^[0-9a-f:]{17}$/.test(bssid)) continue;
    const r: WifiScanResult = { ssid: unescapeSsid(ssid.join('\t')), bssid, frequency: Number(freq), signal: Number(signal), flags: flags ?? '' };
    const have = seen.get(r.ssid || r.bssid);
    if (!have || have.signal < r.signal) seen.set(r.ssid || r.bssid, r);
  }
  return [...seen.values()].sort((a, b) => b.signal - a.signal);
}

/** Scan now and list what is in range (strongest first, one line per SSID). */
export async function wifiScan(iface: string): Promise<WifiScanResult[]> {
  wpaCli(iface, ['scan']);
  // A scan of 2.4 and 5 GHz takes a few seconds; results wait in wpa_supplicant.
  await new Promise((r) => setTimeout(r, 4000));
  return parseScanResults(wpaCli(iface, ['scan_results']));
}

/**
 * Add (or replace) a network: checked, its PSK kept in the users' partition (0600), the
 * configuration rewritten and wpa_supplicant told to read it again. Refusals change nothing.
 */
export function wifiConnect(iface: string, ssid: string, passphrase: string, o: { priority?: number; country?: string; file?: string } = {}): WifiNetwork[] {
  const bad = badWifiSetting(ssid, passphrase, o.priority);
  if (bad) throw bad;
  if (o.country && countryProblem(o.country)) throw new BspError('EWIFI_SETTING', `${countryProblem(o.country)}; nothing was changed`);
  const file = o.file ?? WIFI_FILE;
  if (!existsSync(dirname(dirname(file)))) throw new BspError('EWIFI', `the users' partition is not mounted: a network added now could not be kept; nothing was changed`);
  const networks = mergeWifi(readNetworks(file), [{ ssid, psk: pskFor(ssid, passphrase), priority: o.priority ?? 0 }]);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  replaceFileAtomically(file, Buffer.from(JSON.stringify({ networks }, null, 2) + '\n'), 0o600);
  const country = o.country ?? readWifiState().country;
  replaceFileAtomically(WPA_CONF, Buffer.from(wpaConfig({ networks, ...(country ? { country } : {}) })), 0o600);
  wpaCli(iface, ['reconfigure']);
  return networks;
}
