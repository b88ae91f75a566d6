/**
 * The mock backend: the same interfaces as the Linux one, in memory. Used by unit tests and
 * by `nodeos-bsp repl --mock` to try `board` without hardware. Inputs can be driven from
 * outside (`setInput`), which emulation cannot do.
 */
import { BspError } from '../../errors.js';
import { EventEmitter } from 'node:events';
import type { BoardProfile } from '../../boards/schema.js';
import { i2cBuses } from '../../boards/pins.js';
import { mergeWifi, pskFor, type WifiNetwork } from '../../settings/env.js';
import type { WifiScanResult, WifiStatus } from '../wifi.js';
import { badWifiSetting, noSuchI2cBus, noSuchLed, noSuchLine, writeToInput, type Backends, type Direction, type Edge, type GpioBackend, type GpioChipInfo, type GpioLine, type I2cAdapter, type I2cBackend, type I2cBus, type LedBackend, type SerialPortLike, type WifiBackend } from './backend.js';

interface MockLineState {
  value: 0 | 1;
  direction: Direction;
  watchers: { cb: (err: Error | null | undefined, v: 0 | 1) => void; edge: Edge }[];
  open: boolean;
}

export class MockGpio implements GpioBackend {
  readonly lines = new Map<number, MockLineState>();

  constructor(readonly chipList: GpioChipInfo[]) {}

  chip(label: string): GpioChipInfo | undefined {
    return this.chipList.find((c) => c.label === label);
  }

  chips(): GpioChipInfo[] {
    return [...this.chipList];
  }

  private state(global: number): MockLineState {
    let s = this.lines.get(global);
    if (!s) this.lines.set(global, (s = { value: 0, direction: 'in', watchers: [], open: false }));
    return s;
  }

  /** Drive an input from outside, firing watchers like a real edge would. */
  setInput(global: number, value: 0 | 1): void {
    const s = this.state(global);
    const prev = s.value;
    s.value = value;
    if (prev === value) return;
    for (const w of s.watchers) {
      const rising = value === 1;
      if (w.edge === 'both' || (w.edge === 'rising' && rising) || (w.edge === 'falling' && !rising)) w.cb(null, value);
    }
  }

  open(global: number, d: Direction): GpioLine {
    if (!this.chipList.some((c) => global >= c.base && global < c.base + c.ngpio)) throw noSuchLine(global, this.chipList);
    const s = this.state(global);
    s.direction = d;
    s.open = true;
    return {
      get direction() {
        return s.direction;
      },
      read: () => s.value,
      readAsync: async () => s.value,
      write: (v) => {
        if (s.direction !== 'out') throw writeToInput(global);
        s.value = v;
      },
      setDirection: (nd) => (s.direction = nd),
      watch: (cb, edge) => s.watchers.push({ cb, edge }),
      unwatchAll: () => (s.watchers = []),
      close: () => {
        s.open = false;
        s.watchers = [];
      },
    };
  }
}

/** An I2C bus with register-file devices (address -> 256 registers). */
export class MockI2c implements I2cBackend {
  readonly devices = new Map<number, Map<number, Buffer>>();

  constructor(private readonly adapters: I2cAdapter[] = []) {
    for (const a of adapters) this.devices.set(a.bus, new Map());
  }

  addDevice(bus: number, addr: number, registers: Record<number, number> = {}): void {
    const regs = Buffer.alloc(256);
    for (const [k, v] of Object.entries(registers)) regs[Number(k)] = v;
    const b = this.devices.get(bus);
    if (!b) throw noSuchI2cBus(bus, this.list());
    b.set(addr, regs);
  }

  list(): I2cAdapter[] {
    return [...this.adapters].sort((a, b) => a.bus - b.bus);
  }

  async open(bus: number): Promise<I2cBus> {
    const devs = this.devices.get(bus);
    if (!devs) throw noSuchI2cBus(bus, this.list());
    const dev = (addr: number): Buffer => {
      const d = devs.get(addr);
      if (!d) throw Object.assign(new Error(`EREMOTEIO: no device at 0x${addr.toString(16)}`), { code: 'EREMOTEIO' });
      return d;
    };
    return {
      scan: async () => [...devs.keys()].sort((a, b) => a - b),
      readByte: async (a, c) => dev(a)[c]!,
      writeByte: async (a, c, v) => void (dev(a)[c] = v),
      readWord: async (a, c) => dev(a).readUInt16LE(c),
      writeWord: async (a, c, w) => void dev(a).writeUInt16LE(w, c),
      readI2cBlock: async (a, c, n, buf) => {
        dev(a).copy(buf, 0, c, c + n);
        return { bytesRead: n, buffer: buf };
      },
      writeI2cBlock: async (a, c, n, buf) => {
        buf.copy(dev(a), c, 0, n);
        return { bytesWritten: n, buffer: buf };
      },
      close: async () => undefined,
    };
  }
}

/** A serial port that echoes back what is written (a loopback plug). */
class LoopbackPort extends EventEmitter implements SerialPortLike {
  constructor(readonly path: string) {
    super();
    queueMicrotask(() => this.emit('open'));
  }

  write(data: string | Buffer, cb?: (err: Error | null | undefined) => void): boolean {
    const b = Buffer.from(data);
    setImmediate(() => this.emit('data', b));
    cb?.(null);
    return true;
  }

  close(cb?: (err: Error | null) => void): void {
    this.emit('close');
    cb?.(null);
  }
}

export class MockLeds implements LedBackend {
  readonly state = new Map<string, { brightness: string; max_brightness: string; trigger: string }>();

  constructor(names: string[]) {
    for (const n of names) this.state.set(n, { brightness: '0', max_brightness: '1', trigger: 'none' });
  }

  list(): string[] {
    return [...this.state.keys()].sort();
  }

  read(name: string, attr: 'brightness' | 'max_brightness' | 'trigger'): string {
    const s = this.state.get(name);
    if (!s) throw noSuchLed(name, this.list());
    return attr === 'trigger' ? `[${s.trigger}] none heartbeat timer default-on` : s[attr];
  }

  write(name: string, attr: 'brightness' | 'trigger', value: string): void {
    const s = this.state.get(name);
    if (!s) throw noSuchLed(name, this.list());
    s[attr] = value;
  }
}

/** Wi-Fi in memory: the networks `inRange` can be joined with any valid passphrase (there is no AP to check it). */
export class MockWifi implements WifiBackend {
  networks: WifiNetwork[] = [];
  private joined?: WifiScanResult;
  private attempts = 0;

  constructor(readonly inRange: WifiScanResult[] = []) {}

  status(): WifiStatus {
    const base = { iface: 'wlan0', networks: this.networks.map((n) => n.ssid), attempts: this.attempts };
    if (this.joined) return { ...base, state: 'connected', ssid: this.joined.ssid, bssid: this.joined.bssid, address: '192.168.4.2' };
    return { ...base, state: this.networks.length ? 'searching' : 'idle' };
  }

  async scan(): Promise<WifiScanResult[]> {
    return [...this.inRange].sort((a, b) => b.signal - a.signal);
  }

  async connect(ssid: string, passphrase: string, o: { priority?: number } = {}): Promise<void> {
    const bad = badWifiSetting(ssid, passphrase, o.priority);
    if (bad) throw bad;
    this.networks = mergeWifi(this.networks, [{ ssid, psk: pskFor(ssid, passphrase), priority: o.priority ?? 0 }]);
    const found = this.inRange.find((r) => r.ssid === ssid);
    if (found) {
      this.attempts++;
      this.joined = found;
    }
  }
}

/** Options for the mock: which chips exist (labels and bases as on a 6.6+ kernel by default). */
export interface MockOptions {
  chips: GpioChipInfo[];
  leds: string[];
  /** Serial devices the system lists (default /dev/ttyAMA0 and /dev/ttyS1). */
  ttys?: string[];
  /** I2C adapters (default none). */
  i2c?: I2cAdapter[];
  /** Wi-Fi networks in range (default none). */
  wifi?: WifiScanResult[];
  files?: Record<string, Buffer>;
}

export interface MockBackends extends Backends {
  gpio: MockGpio;
  i2c: MockI2c;
  leds: MockLeds;
  wifi: MockWifi;
  actions: string[];
}

export function mockBackends(o: MockOptions): MockBackends {
  const actions: string[] = [];
  return {
    gpio: new MockGpio(o.chips),
    i2c: new MockI2c(o.i2c),
    serial: { open: (path) => new LoopbackPort(path), list: () => [...(o.ttys ?? ['/dev/ttyAMA0', '/dev/ttyS1'])].sort() },
    leds: new MockLeds(o.leds),
    wifi: new MockWifi(o.wifi),
    system: {
      reboot: () => void actions.push('reboot'),
      poweroff: () => void actions.push('poweroff'),
      readFile: (p) => o.files?.[p],
      withWritable: (_p, fn) => fn(),
      update: () => Promise.reject(new BspError('EUPDATE', 'the mock board has no card to update: use nodeos-bsp update BUNDLE --device on a card, or board.system.update() on the board')),
    },
    apps: {
      list: () => [],
      control: (_op, name) => Promise.reject(new BspError('EAPP_UNKNOWN', `the mock board runs no apps (${name}): apps run on a NodeOS board, started by its init`)),
      logs: () => '',
    },
    actions,
  };
}

/** Mock backends shaped like the profile's board, for trying the REPL and apps without hardware. */
export function mockFor(profile: BoardProfile): MockBackends {
  const m = mockBackends({
    // Bases as a 6.6+ kernel numbers them (512 up), so global numbers look like the real thing.
    chips: profile.gpio.controllers.map((c, i) => ({ label: c.label ?? c.id, base: 512 + 64 * i, ngpio: c.lines })),
    leds: profile.leds.map((l) => l.sysfs[0]!),
    i2c: i2cBuses(profile).map((b) => ({ bus: b.bus, name: `${b.id} (mock)`, ...(b.node ? { node: b.node } : {}) })),
    ...(profile.wifi ? { wifi: [{ ssid: 'nodeos-mock', bssid: '02:00:00:00:01:00', frequency: 2412, signal: -40, flags: '[WPA2-PSK-CCMP][ESS]' }] } : {}),
    files: {
      '/proc/device-tree/model': Buffer.from(`${profile.name} (mock)\0`),
      '/proc/meminfo': Buffer.from('MemTotal:        948304 kB\n'),
      ...(profile.detection.revisions?.[0] ? { '/proc/device-tree/system/linux,revision': Buffer.from(profile.detection.revisions[0].padStart(8, '0'), 'hex') } : {}),
    },
  });
  // A TMP102-like sensor at 0x48 on the board's first I2C bus: register 0 holds 25.0 °C.
  const first = m.i2c.list()[0];
  if (first) m.i2c.addDevice(first.bus, 0x48, { 0: 0x19, 1: 0x00 });
  return m;
}
