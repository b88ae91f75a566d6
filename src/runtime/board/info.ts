/** Board information and Raspberry Pi revision codes (new style, bit 23 set). */
import type { SettingsState } from '../settings.js';
import type { WifiStatus } from '../wifi.js';

export interface RevisionInfo {
  memoryMiB: number;
  processor: string;
  type: number;
  revision: number;
  manufacturer: string;
}

export interface BoardInfo {
  board: string;
  name: string;
  model: string;
  soc: string;
  revision?: string;
  decoded?: RevisionInfo;
  serial?: string;
  memoryMiB: number;
  /** Whether the clock was set from the network (SNTP or an HTTP Date), and from where. */
  clock: { synced: boolean; source?: string; at?: string };
  /** The first-boot settings init applied (host name, time zone, Wi-Fi networks by name) and what it could not apply. */
  settings?: SettingsState;
  /** Wi-Fi as init's supervisor has it (state, network, address, the last problem such as a refused passphrase), on boards with a radio. */
  wifi?: WifiStatus;
}

/** The board's serial number: the device tree's, else /proc/cpuinfo's `Serial` line. */
export function serialNumber(read: (path: string) => Buffer | undefined): string | undefined {
  const text = (p: string): string | undefined => read(p)?.toString('latin1').replace(/\0+$/, '').trim();
  const dt = text('/proc/device-tree/serial-number');
  return dt !== undefined ? dt : /^Serial\s*:\s*(\w+)/m.exec(text('/proc/cpuinfo') ?? '')?.[1];
}

/** The clock state init records (/run/nodeos/clock.json); not synced when absent or unreadable. */
export function clockState(json: Buffer | undefined): BoardInfo['clock'] {
  if (!json) return { synced: false };
  try {
    const s = JSON.parse(json.toString('utf8')) as { synced?: unknown; source?: unknown; at?: unknown };
    return { synced: s.synced === true, ...(typeof s.source === 'string' ? { source: s.source } : {}), ...(typeof s.at === 'string' ? { at: s.at } : {}) };
  } catch {
    return { synced: false };
  }
}

const PROCESSORS = ['BCM2835', 'BCM2836', 'BCM2837', 'BCM2711', 'BCM2712'];
const MAKERS = ['Sony UK', 'Egoman', 'Embest', 'Sony Japan', 'Embest', 'Stadium'];

/** Decode a new-style revision code (NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR); undefined for old style. */
export function decodeRevision(hex: string): RevisionInfo | undefined {
  const code = parseInt(hex, 16);
  if (!(code & (1 << 23))) return undefined;
  return {
    memoryMiB: 256 << ((code >> 20) & 7),
    manufacturer: MAKERS[(code >> 16) & 0xf] ?? 'unknown',
    processor: PROCESSORS[(code >> 12) & 0xf] ?? 'unknown',
    type: (code >> 4) & 0xff,
    revision: code & 0xf,
  };
}
