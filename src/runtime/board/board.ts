/**
 * `board`: the Raspberry Pi (or any profiled board) from the REPL. Pins by any name
 * (GPIO17, BCM17, BOARD11, J8:11, SDA), I2C, serial ports, LEDs, the U-Boot environment
 * and board information, over whichever backend `createBoard` is given.
 */
import { appsView, type Apps } from './apps.js';
import { inspect } from 'node:util';
import { basename, dirname } from 'node:path';
import { examplePin, findPin, headerPins, i2cBuses, type PinInfo } from '../../boards/pins.js';
import { renderPinout } from '../../boards/pinout.js';
import type { BoardProfile } from '../../boards/schema.js';
import { BspError } from '../../errors.js';
import { checkName, type EnvConfig } from '../../uboot-env/index.js';
import { envFiles, readEnvFiles, updateEnvFiles, type EnvFiles } from '../env-files.js';
import { systemState, type SystemState } from '../system-slot.js';
import type { InstallResult } from '../../update/index.js';
import type { Readable } from 'node:stream';
import type { Backends, Direction, Edge, GpioLine, I2cBus, SerialPortLike } from './backend.js';
import { SETTINGS_STATE, settingsState } from '../settings.js';
import { clockState, decodeRevision, serialNumber, type BoardInfo } from './info.js';
import { describeWifi, type WifiScanResult, type WifiStatus } from '../wifi.js';

/** A pin error: unknown name, or a power/ground pin used as GPIO. */
export class PinError extends BspError {}

/** Where the running system keeps its U-Boot environment. Default: the backend's (/boot/uboot.env on the board; none for the mock). */
/** board.system.update's options: where its steps go, and whether an older system may go in. */
export interface SystemUpdateOptions {
  log?: (msg: string) => void;
  allowDowngrade?: boolean;
}

export interface BoardOptions {
  env?: EnvConfig;
  /** The running build (image.json), for board.system. */
  build?: string;
}

/** One header pin. Prints as `<Pin GPIO17 J8:11 out value=1>`. */
export class Pin {
  private handle?: GpioLine;

  constructor(
    private readonly board: Board,
    readonly info: PinInfo,
  ) {}

  get name(): string {
    return this.info.label;
  }
  /** The line on its GPIO controller (on a Raspberry Pi, the BCM number). */
  get line(): number {
    return this.info.line!;
  }
  /** The BCM number, on boards whose pins have one (Broadcom SoCs); undefined elsewhere. */
  get bcm(): number | undefined {
    return this.info.names.includes(`BCM${this.info.line}`) ? this.info.line : undefined;
  }
  get physical(): number {
    return this.info.pin;
  }
  get names(): string[] {
    return this.info.names;
  }
  get opened(): boolean {
    return this.handle !== undefined;
  }
  get direction(): Direction | undefined {
    return this.handle?.direction;
  }

  /** The global (sysfs) number, derived from the controller's base: never assumed. */
  get global(): number {
    return this.board.globalNumber(this.info);
  }

  private open(d: Direction): GpioLine {
    if (!this.handle) this.handle = this.board.backends.gpio.open(this.global, d);
    else if (this.handle.direction !== d) this.handle.setDirection(d);
    return this.handle;
  }

  /** Read the pin (opens it as an input if it is not open yet). */
  get value(): 0 | 1 {
    return (this.handle ?? this.open('in')).read();
  }

  async read(): Promise<0 | 1> {
    return (this.handle ?? this.open('in')).readAsync();
  }

  /** Drive the pin (switches it to output). */
  write(v: 0 | 1 | boolean): this {
    this.open('out').write(v ? 1 : 0);
    return this;
  }

  watch(cb: (value: 0 | 1) => void, o: { edge?: Edge } = {}): this {
    this.open('in').watch((err, value) => {
      if (!err) cb(value);
    }, o.edge ?? 'both');
    return this;
  }

  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  toString(): string {
    const state = this.handle ? ` ${this.handle.direction} value=${this.handle.read()}` : '';
    return `<Pin ${this.name} ${this.info.names.find((n) => n.includes(':')) ?? ''}${state}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** An LED from the profile, through /sys/class/leds. */
export class Led {
  constructor(
    private readonly board: Board,
    readonly id: string,
    readonly sysfsName: string,
  ) {}

  get brightness(): number {
    return Number(this.board.backends.leds.read(this.sysfsName, 'brightness'));
  }
  set brightness(v: number) {
    this.board.backends.leds.write(this.sysfsName, 'brightness', String(v));
  }
  /** The active trigger (the bracketed one). */
  get trigger(): string {
    return /\[([^\]]+)\]/.exec(this.board.backends.leds.read(this.sysfsName, 'trigger'))?.[1] ?? 'none';
  }
  set trigger(t: string) {
    this.board.backends.leds.write(this.sysfsName, 'trigger', t);
  }
  on(): void {
    this.trigger = 'none';
    this.brightness = Number(this.board.backends.leds.read(this.sysfsName, 'max_brightness'));
  }
  off(): void {
    this.trigger = 'none';
    this.brightness = 0;
  }
  [inspect.custom](): string {
    return `<Led ${this.id} ${this.sysfsName} brightness=${this.brightness} trigger=${this.trigger}>`;
  }
}

/** The U-Boot environment of the running system (uboot.env, and its copy uboot.bak when the card has one). */
export class BoardEnv {
  constructor(
    private readonly where: EnvFiles | undefined,
    private readonly system: Backends['system'],
  ) {}

  /** Where the environment is (undefined: nowhere, as on the mock without --env-file). */
  get files(): EnvFiles | undefined {
    return this.where;
  }

  private get checked(): EnvFiles {
    if (!this.where) throw new BspError('EENV_NONE', 'this board has no U-Boot environment file: the mock never uses the host\'s; start it with --env-file <uboot.env> (that file is written by board.env.set)');
    return this.where;
  }
  all(): Record<string, string> {
    return Object.fromEntries(readEnvFiles(this.checked).vars);
  }
  get(name: string): string | undefined {
    return readEnvFiles(this.checked).vars.get(name);
  }
  /** Set (or with undefined/'' delete) a variable; written like fw_setenv (the copy first). */
  set(name: string, value: string | undefined): void {
    this.update([[name, value]]);
  }
  /** Several changes in one write. */
  update(changes: [string, string | undefined][]): void {
    for (const [name] of changes) checkName(name);
    const files = this.checked;
    updateEnvFiles(
      files,
      (vars) => {
        for (const [k, v] of changes) {
          if (v === undefined || v === '') vars.delete(k);
          else vars.set(k, v);
        }
        return vars;
      },
      (fn) => this.system.withWritable(files.main.copies[0].path, fn),
    );
  }
  delete(name: string): void {
    this.set(name, undefined);
  }
  [inspect.custom](): string {
    if (!this.where) return '<U-Boot env: none (mock without --env-file)>';
    const vars = this.all();
    return `<U-Boot env ${Object.keys(vars).length} variables: ${Object.keys(vars).sort().join(', ')}>`;
  }
}

export class Board {
  private readonly pinCache = new Map<number, Pin>();
  readonly leds: Record<string, Led>;
  readonly env: BoardEnv;

  constructor(
    readonly profile: BoardProfile,
    readonly backends: Backends,
    private readonly options: BoardOptions = {},
  ) {
    const o = options;
    this.leds = {};
    const present = new Set(backends.leds.list());
    for (const l of profile.leds) {
      const name = l.sysfs.find((n) => present.has(n)) ?? l.sysfs[0]!;
      this.leds[l.id] = new Led(this, l.id, name);
    }
    this.env = new BoardEnv(o.env ? { main: o.env } : backends.env ? envFiles(dirname(backends.env.file), basename(backends.env.file), undefined, backends.env.size) : undefined, backends.system);
    // Every name a pin answers to, as a property: board.GPIO17, board.BOARD11, board.SDA.
    for (const p of headerPins(profile)) {
      if (p.kind !== 'gpio') continue;
      for (const n of p.names.filter((x) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(x))) {
        if (!(n in this)) Object.defineProperty(this, n, { get: () => this.pin(n), enumerable: n.startsWith('GPIO') });
      }
    }
  }

  /** A pin by name (GPIO17, BCM17, BOARD11, J8:11, SDA) or SoC line number. */
  pin(name: string | number): Pin {
    const r = findPin(this.profile, name);
    if (!r.ok) {
      if (r.reason === 'not-gpio') throw new PinError('EPIN_POWER', `${String(name)} is ${this.profile.header?.name}:${r.pin!.pin}, a ${r.pin!.label} pin: it has no GPIO; pick a GPIO pin (see board.pinout())`);
      if (r.reason === 'ambiguous') throw new PinError('EPIN_AMBIGUOUS', `line ${String(name)} is on ${r.pins.length} pins of ${this.profile.name} (${r.pins.map((p) => `${p.label} on ${this.profile.header!.name}:${p.pin}`).join(', ')}): each GPIO bank numbers its lines from 0; use the pin's name`);
      const ex = examplePin(this.profile);
      const names = ex ? `use a name such as ${ex.names.filter((n) => !n.includes(':')).slice(0, 3).join(', ')} or ${this.profile.header!.name}:${ex.pin}, or an alias` : 'this board has no GPIO header';
      throw new PinError('EPIN_UNKNOWN', `${this.profile.name} has no pin ${JSON.stringify(name)}: ${names} (see board.pinout())`);
    }
    let p = this.pinCache.get(r.pin.pin);
    if (!p) this.pinCache.set(r.pin.pin, (p = new Pin(this, r.pin)));
    return p;
  }

  /** Global GPIO number of a pin: the sysfs base of the profile's controller (found by label) plus the SoC line. */
  globalNumber(info: PinInfo): number {
    const ctl = this.profile.gpio.controllers.find((c) => c.id === info.controller) ?? this.profile.gpio.controllers[0];
    if (!ctl?.label) throw new BspError('EGPIO_CHIP', `${this.profile.id}: the GPIO controller of ${info.label} has no label to look up`);
    const chip = this.backends.gpio.chip(ctl.label);
    if (!chip) {
      const seen = this.backends.gpio.chips().map((c) => c.label).join(', ') || 'none';
      throw new BspError('EGPIO_CHIP', `no GPIO controller labelled ${ctl.label} (found: ${seen}); is this the right board profile and kernel?`);
    }
    if (info.line! >= chip.ngpio) throw new BspError('EGPIO_CHIP', `${ctl.label} has ${chip.ngpio} lines, not ${info.line}`);
    return chip.base + info.line!;
  }

  /** Pins opened so far. */
  opened(): Pin[] {
    return [...this.pinCache.values()].filter((p) => p.opened);
  }

  /** The header drawing, with opened pins marked with direction and value. */
  pinout(o: { color?: boolean } = {}): string {
    const open = new Map(this.opened().map((p) => [p.physical, p]));
    return renderPinout(this.profile, {
      color: o.color ?? false,
      annotate: (info) => {
        const p = open.get(info.pin);
        return p ? `[${p.direction} ${p.value}]` : undefined;
      },
    });
  }

  /**
   * An I2C bus by number; default: the profile's first I2C bus (the header's on a Pi), found by
   * its controller's device-tree node (on a Pi 4 the HDMI DDC buses may probe first and take
   * i2c-1), else by the number of its device.
   */
  async i2c(bus?: number): Promise<I2cBus> {
    const buses = i2cBuses(this.profile);
    const first = buses[0];
    const byNode = first?.node ? this.backends.i2c.list().find((a) => a.node === first.node)?.bus : undefined;
    const n = bus ?? byNode ?? first?.bus;
    if (n === undefined) throw new BspError('EI2C_BUS', `${this.profile.name} has no I2C bus in its profile: give a bus number (board.i2c(N)); the system has ${this.backends.i2c.list().map((a) => a.bus).join(', ') || 'none'}`);
    try {
      return await this.backends.i2c.open(n);
    } catch (err) {
      const ours = buses.find((b) => b.bus === n);
      const hint = ours ? ` (${ours.id}: modules ${ours.modules.join(', ')} loaded? is the bus enabled in the device tree?)` : '';
      if (err instanceof BspError) throw new BspError(err.code, `${err.message}${hint}`, { cause: err });
      throw new BspError('EI2C', `cannot open /dev/i2c-${n}: ${(err as Error).message}${hint}`, { cause: err });
    }
  }

  /** A serial port by bus id from the profile (e.g. 'uart') or device path. */
  serial(idOrPath: string, o: { baudRate?: number } = {}): SerialPortLike {
    const bus = this.profile.buses.find((b) => b.kind === 'uart' && b.id === idOrPath);
    const path = bus?.device ?? idOrPath;
    if (!path.startsWith('/dev/')) throw new BspError('ESERIAL', `no UART "${idOrPath}" on ${this.profile.id}: use ${this.profile.buses.filter((b) => b.kind === 'uart').map((b) => b.id).join(', ')} or a /dev path`);
    if (`/dev/${this.profile.console.device}` === path) throw new BspError('ESERIAL', `${path} is the console the REPL runs on; pick another UART`);
    return this.backends.serial.open(path, o.baudRate ?? 115200);
  }

  serialPorts(): string[] {
    return this.backends.serial.list();
  }

  /**
   * The running system (A/B updates): its slot, build and whether it is confirmed, the other
   * slot, the slot U-Boot boots next and the last update that did not come up; and
   * `update(pathOrUrl)`, which installs a signed bundle into the other slot
   * (`update(src, { allowDowngrade: true })` for one older than the running system).
   */
  get system(): SystemState & { update(source: string | Readable, o?: SystemUpdateOptions | ((msg: string) => void)): Promise<InstallResult> } {
    const cmdline = this.backends.system.readFile('/proc/cmdline')?.toString('utf8') ?? '';
    const st = systemState(this.options.build ?? 'unknown', cmdline, this.env.files);
    const update = (source: string | Readable, o?: SystemUpdateOptions | ((msg: string) => void)): Promise<InstallResult> => {
      const opts = typeof o === 'function' ? { log: o } : (o ?? {});
      return this.backends.system.update(source, opts.log, opts.allowDowngrade ? { allowDowngrade: true } : {});
    };
    return Object.defineProperty(st, 'update', { value: update, enumerable: false }) as SystemState & { update: typeof update };
  }

  /**
   * The apps init supervises, by name: board.apps.thermometer.state / .pid / .restarts /
   * .uptime, and .restart(), .stop(), .start(), .logs(); the REPL shows them as a table.
   */
  get apps(): Apps {
    return appsView(this.backends.apps);
  }

  /**
   * Wi-Fi: board.wifi.status() (what init's supervisor knows), await board.wifi.scan() (in
   * range, strongest first), await board.wifi.connect(ssid, passphrase) (kept in the users'
   * partition as the WPA PSK; resolves once joined, EWIFI_KEY when the AP refuses the
   * passphrase, else the status after `timeoutMs`, default 30 s).
   */
  get wifi(): BoardWifi {
    const w = this.backends.wifi;
    const need = (): void => {
      if (!this.profile.wifi) throw new BspError('EWIFI', `${this.profile.name} has no Wi-Fi in its profile`);
    };
    return {
      status: () => w.status(),
      scan: async () => (need(), w.scan()),
      connect: async (ssid, passphrase, o = {}) => {
        need();
        // Only what happens after this call counts (an earlier refusal of the same network is stale).
        const before = w.status().attempts ?? 0;
        await w.connect(ssid, passphrase, o.priority !== undefined ? { priority: o.priority } : {});
        const end = Date.now() + (o.timeoutMs ?? 30000);
        for (;;) {
          const st = w.status();
          const fresh = (st.attempts ?? 0) > before;
          if (fresh && st.state === 'connected' && st.ssid === ssid) return st;
          if (fresh && st.state === 'wrong-key' && st.ssid === ssid) throw new BspError('EWIFI_KEY', `${JSON.stringify(ssid)} refused the passphrase (the WPA handshake failed); the network is kept: connect again with the right one`);
          if (Date.now() >= end) return st;
          await new Promise((r) => setTimeout(r, 500));
        }
      },
      [inspect.custom]: () => describeWifi(w.status()).replace(/^wifi: /, '<Wi-Fi ') + '>',
    };
  }

  get info(): BoardInfo {
    const sys = this.backends.system;
    const text = (p: string): string | undefined => sys.readFile(p)?.toString('latin1').replace(/\0+$/, '').trim();
    const rev = sys.readFile('/proc/device-tree/system/linux,revision');
    const revision = rev && rev.length >= 4 ? rev.readUInt32BE(0).toString(16) : /^Revision\s*:\s*(\w+)/m.exec(text('/proc/cpuinfo') ?? '')?.[1];
    const serial = serialNumber((p) => sys.readFile(p));
    const settings = settingsState(sys.readFile(SETTINGS_STATE));
    const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(text('/proc/meminfo') ?? '')?.[1] ?? 0);
    return {
      board: this.profile.id,
      name: this.profile.name,
      model: text('/proc/device-tree/model') ?? this.profile.name,
      soc: this.profile.soc.name,
      ...(revision ? { revision, decoded: decodeRevision(revision) } : {}),
      ...(serial ? { serial } : {}),
      memoryMiB: Math.round(memKb / 1024),
      clock: clockState(sys.readFile('/run/nodeos/clock.json')),
      ...(settings ? { settings } : {}),
      ...(this.profile.wifi ? { wifi: this.backends.wifi.status() } : {}),
    };
  }

  reboot(): void {
    this.backends.system.reboot();
  }
  poweroff(): void {
    this.backends.system.poweroff();
  }

  [inspect.custom](): string {
    const ex = examplePin(this.profile);
    const pins = ex ? `pins board.${ex.label} / board.pin('${this.profile.header!.name}:${ex.pin}'), board.pinout(), ` : '';
    const i2c = i2cBuses(this.profile)[0];
    const uart = this.profile.buses.find((b) => b.kind === 'uart');
    const buses = `${i2c ? `board.i2c(${i2c.bus}), ` : ''}${uart ? `board.serial('${uart.id}'), ` : ''}${this.profile.wifi ? 'board.wifi, ' : ''}`;
    return `<Board ${this.profile.id} ${this.profile.name}: ${pins}${buses}board.leds, board.env, board.info, board.system>`;
  }
}

type Line = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 19 | 20 | 21 | 22 | 23 | 24 | 25 | 26 | 27;
type Alias = 'SDA' | 'SCL' | 'TXD' | 'RXD' | 'MOSI' | 'MISO' | 'SCLK' | 'CE0' | 'CE1';

/** The names a 40-pin header board answers to as properties (others through `board.pin()`). */
export type HeaderPins = { readonly [K in `GPIO${Line}` | `BCM${Line}` | Alias]: Pin };

/** board.wifi. */
export interface BoardWifi {
  status(): WifiStatus;
  scan(): Promise<WifiScanResult[]>;
  connect(ssid: string, passphrase: string, o?: { priority?: number; timeoutMs?: number }): Promise<WifiStatus>;
  [inspect.custom](): string;
}

/** Build the board object for a profile over a backend set. */
export function createBoard(profile: BoardProfile, backends: Backends, o: BoardOptions = {}): Board & HeaderPins {
  return new Board(profile, backends, o) as Board & HeaderPins;
}
