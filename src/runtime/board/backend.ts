/**
 * The hardware contract of `board`: one interface per kind of hardware, a Linux
 * implementation (onoff, i2c-bus, serialport, sysfs) and a mock with the same shape.
 */

import { BspError } from '../../errors.js';
import type { AppStatus } from '../apps.js';
import type { InstallResult } from '../../update/index.js';
import type { Readable } from 'node:stream';
import type { WifiScanResult, WifiStatus } from '../wifi.js';
import { passphraseProblem, priorityProblem, ssidProblem } from '../../settings/env.js';
/** Edge to watch on an input line. */
export type Edge = 'none' | 'rising' | 'falling' | 'both';
export type Direction = 'in' | 'out';

/** EGPIO_LINE: a global line number no controller has (the same words from every backend). */
export function noSuchLine(global: number, chips: GpioChipInfo[]): BspError {
  const have = chips.map((c) => `${c.label} ${c.base}-${c.base + c.ngpio - 1}`).join(', ') || 'none';
  return new BspError('EGPIO_LINE', `no GPIO controller has line ${global} (controllers: ${have}); board.pinout() shows the board's pins`);
}

/** EGPIO_INPUT: a write to a line set as an input (the kernel says EPERM). */
export const writeToInput = (global: number): BspError => new BspError('EGPIO_INPUT', `GPIO line ${global} is an input: pin.write() (or setDirection('out')) makes it an output first`);

/** ELED_UNKNOWN: an LED name the system does not have. */
export const noSuchLed = (name: string, have: string[]): BspError => new BspError('ELED_UNKNOWN', `no LED named ${name}: the LEDs are ${have.join(', ') || '(none)'}`);

/** One GPIO line, opened. */
export interface GpioLine {
  readonly direction: Direction;
  read(): 0 | 1;
  readAsync(): Promise<0 | 1>;
  write(value: 0 | 1): void;
  setDirection(d: Direction): void;
  watch(cb: (err: Error | null | undefined, value: 0 | 1) => void, edge: Edge): void;
  unwatchAll(): void;
  close(): void;
}

/** A GPIO controller found at run time (by label or compatible, never by chip number). */
export interface GpioChipInfo {
  label: string;
  /** First global (sysfs) number of the chip: differs between kernels (458 on 6.1, 512+ on 6.6+). */
  base: number;
  ngpio: number;
}

export interface GpioBackend {
  /** Find a chip by its label. */
  chip(label: string): GpioChipInfo | undefined;
  chips(): GpioChipInfo[];
  /** Open global line number `global` in direction `d`. */
  open(global: number, d: Direction): GpioLine;
}

/** The subset of i2c-bus's promise API the board exposes. */
export interface I2cBus {
  scan(): Promise<number[]>;
  readByte(addr: number, cmd: number): Promise<number>;
  writeByte(addr: number, cmd: number, byte: number): Promise<void>;
  readWord(addr: number, cmd: number): Promise<number>;
  writeWord(addr: number, cmd: number, word: number): Promise<void>;
  readI2cBlock(addr: number, cmd: number, length: number, buffer: Buffer): Promise<{ bytesRead: number; buffer: Buffer }>;
  writeI2cBlock(addr: number, cmd: number, length: number, buffer: Buffer): Promise<{ bytesWritten: number; buffer: Buffer }>;
  close(): Promise<void>;
}

/** An I2C adapter as i2c-dev lists it (/sys/class/i2c-dev/i2c-N/name). */
export interface I2cAdapter {
  bus: number;
  name: string;
  /** The controller's device-tree path (sysfs of_node), e.g. /soc/i2c@7e804000; absent for adapters not from the tree. */
  node?: string;
}

/** EI2C_BUS: a bus number i2c-dev does not list (the same words from every backend). */
export const noSuchI2cBus = (bus: number, have: I2cAdapter[]): BspError =>
  new BspError('EI2C_BUS', `no I2C bus ${bus} (/dev/i2c-${bus}): the buses are ${have.map((a) => `${a.bus} (${a.name})`).join(', ') || '(none: is the i2c-dev module loaded?)'}`);

export interface I2cBackend {
  /** The adapters with a /dev/i2c-N node, by bus number. */
  list(): I2cAdapter[];
  /** Open bus N; one not listed is EI2C_BUS. */
  open(bus: number): Promise<I2cBus>;
}

/** A serial port: what serialport's SerialPort offers that the board needs. */
export interface SerialPortLike {
  readonly path: string;
  write(data: string | Buffer, cb?: (err: Error | null | undefined) => void): boolean;
  on(event: 'data', cb: (data: Buffer) => void): this;
  on(event: 'error', cb: (err: Error) => void): this;
  on(event: 'open' | 'close', cb: () => void): this;
  close(cb?: (err: Error | null) => void): void;
}

export interface SerialBackend {
  open(path: string, baudRate: number): SerialPortLike;
  /** Serial devices present, sorted (from /sys/class/tty; NodeOS has no udevadm). */
  list(): string[];
}

/** sysfs-style LED access. */
export interface LedBackend {
  /** sysfs names, sorted. */
  list(): string[];
  read(name: string, attr: 'brightness' | 'max_brightness' | 'trigger'): string;
  write(name: string, attr: 'brightness' | 'trigger', value: string): void;
}

/** How board.system.update installs. */
export interface UpdateOptions {
  /** Install a bundle older than the running system on purpose. */
  allowDowngrade?: boolean;
}

/** EWIFI_SETTING: an SSID or passphrase WPA cannot take (the message never holds the passphrase); undefined when both are fine. */
export function badWifiSetting(ssid: string, passphrase: string, priority?: unknown): BspError | undefined {
  const bad = ssidProblem(ssid) ?? passphraseProblem(passphrase) ?? (priority !== undefined ? priorityProblem(priority) : undefined);
  return bad ? new BspError('EWIFI_SETTING', `${bad}; nothing was changed`) : undefined;
}

/** Wi-Fi (board.wifi): what init's supervisor reports, a scan, and networks added. */
export interface WifiBackend {
  status(): WifiStatus;
  /** Networks in range, strongest first. */
  scan(): Promise<WifiScanResult[]>;
  /** Add (or replace) a network and let the radio join it; refusals (EWIFI_SETTING) change nothing. */
  connect(ssid: string, passphrase: string, o?: { priority?: number }): Promise<void>;
}

/** System actions. */
export interface SystemBackend {
  reboot(): void;
  poweroff(): void;
  /** Device tree identity and /proc info. */
  readFile(path: string): Buffer | undefined;
  /** Run `fn` with the filesystem holding `path` writable (the boot partition is mounted read-only). */
  withWritable<T>(path: string, fn: () => T): T;
  /**
   * Install a signed update bundle (a path, an http(s) URL, or a stream of it) into the slot
   * not running; `log` gets the steps (default: the console). One older than the running
   * system is refused (EUPDATE_DOWNGRADE) unless `allowDowngrade`.
   */
  update(source: string | Readable, log?: (msg: string) => void, o?: UpdateOptions): Promise<InstallResult>;
}

/** The app supervisor in init (board.apps). */
export interface AppsBackend {
  list(): AppStatus[];
  control(op: 'start' | 'stop' | 'restart' | 'enable' | 'disable', name: string): Promise<AppStatus>;
  logs(name: string, lines: number): string;
}

/** Everything `board` talks to; selected in one place (`createBoard`). */
export interface Backends {
  gpio: GpioBackend;
  i2c: I2cBackend;
  serial: SerialBackend;
  leds: LedBackend;
  system: SystemBackend;
  apps: AppsBackend;
  wifi: WifiBackend;
  /** Where this system keeps its U-Boot environment, and its size; none for the mock (it never touches host files). */
  env?: { file: string; size: number };
}
