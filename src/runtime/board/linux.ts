/**
 * The Linux backend: GPIO and LEDs through sysfs files (onoff only to watch edges), I2C
 * through i2c-bus, UARTs through serialport. The npm modules are loaded on first use, so
 * the board object works (and explains what is missing) even where they are not installed.
 * Where sysfs is can be given, so the contract tests run it on a temporary tree.
 */
import { controlApp, readAppsState } from '../app-control.js';
import { tailAppLog } from '../app-log.js';
import { GPIO_FIFO, requestGpio, sleepSync } from '../gpio-access.js';
import { accessSync, constants, existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BspError } from '../../errors.js';
import { ENV_SIZE, SYSTEM_INIT } from '../../layout/index.js';
import { syncUnmountAnd, withWritableMount } from '../busybox.js';
import { updateBoard } from '../update.js';
import { readWifiState, wifiConnect, wifiScan } from '../wifi.js';
import { badWifiSetting, noSuchI2cBus, noSuchLed, noSuchLine, writeToInput, type Backends, type Direction, type Edge, type GpioBackend, type GpioChipInfo, type GpioLine, type I2cAdapter, type I2cBackend, type I2cBus, type LedBackend, type SerialPortLike } from './backend.js';

const require = createRequire(import.meta.url);

function load<T>(name: string): T {
  try {
    return require(name) as T;
  } catch (err) {
    throw new BspError('EMODULE_MISSING', `the ${name} module is not available (${(err as Error).message}); NodeOS images ship it in /usr/lib/node_modules`, { cause: err });
  }
}

/** The part of onoff's Gpio used for edge interrupts (epoll on the value file). */
interface OnoffGpio {
  setEdge(e: Edge): void;
  watch(cb: (err: Error | null | undefined, value: 0 | 1) => void): void;
  unwatchAll(): void;
  unexport(): void;
}

function writable(p: string): boolean {
  try {
    accessSync(p, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function readText(p: string): string {
  return readFileSync(p, 'utf8').trim();
}

/** Chips from /sys/class/gpio/gpiochip*: label, base, ngpio. */
export function sysfsChips(root = '/sys/class/gpio'): GpioChipInfo[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => d.startsWith('gpiochip'))
    .map((d) => ({ label: readText(join(root, d, 'label')), base: Number(readText(join(root, d, 'base'))), ngpio: Number(readText(join(root, d, 'ngpio'))) }));
}

/**
 * GPIO lines through sysfs files under `sys` (/sys on the board): export, direction and
 * value are plain file I/O; onoff (epoll on the value file) is loaded only to watch edges.
 */
export function sysfsGpio(sys: string): GpioBackend {
  const root = join(sys, 'class/gpio');
  return {
    chips: () => sysfsChips(root),
    chip: (label) => sysfsChips(root).find((c) => c.label === label),
    open: (global, d): GpioLine => {
      const chips = sysfsChips(root);
      if (!chips.some((c) => global >= c.base && global < c.base + c.ngpio)) throw noSuchLine(global, chips);
      const dir = join(root, `gpio${global}`);
      const file = (n: string): string => join(dir, n);
      // An app that is not root gets the line from init (gpio-access.ts), as udev would do.
      const asApp = process.getuid?.() !== 0;
      if (asApp && !writable(file('value')) && !requestGpio('export', global, { sys: root }) && existsSync(GPIO_FIFO)) {
        throw new BspError('EGPIO_ACCESS', `init did not hand GPIO line ${global} over to this app (not root) in time; run the app as root ("nodeos": { "root": true } in its package.json) if this persists`);
      }
      if (!existsSync(dir)) writeFileSync(join(root, 'export'), String(global));
      // The kernel makes the line's files as it exports it; wait until they can be written.
      for (let tries = 0; !writable(file('value')) || !writable(file('direction')); tries++) {
        if (tries === 200) throw new BspError('EGPIO_ACCESS', `GPIO line ${global} was exported but ${file('value')} cannot be written`);
        sleepSync(10);
      }
      const direction = (): Direction => (readText(file('direction')) === 'out' ? 'out' : 'in');
      if (direction() !== d) writeFileSync(file('direction'), d);
      let watcher: OnoffGpio | undefined;
      let edge: Edge = 'none';
      return {
        get direction() {
          return direction();
        },
        read: () => (readText(file('value')) === '1' ? 1 : 0),
        readAsync: async () => ((await readFile(file('value'), 'utf8')).trim() === '1' ? 1 : 0),
        write: (v) => {
          if (direction() !== 'out') throw writeToInput(global);
          writeFileSync(file('value'), v ? '1' : '0');
        },
        setDirection: (nd) => writeFileSync(file('direction'), nd),
        watch: (cb, e) => {
          if (!watcher) {
            const { Gpio } = load<{ Gpio: new (n: number, d: Direction, o: { reconfigureDirection: boolean }) => OnoffGpio }>('onoff');
            watcher = new Gpio(global, direction(), { reconfigureDirection: false });
          }
          if (e !== edge) watcher.setEdge((edge = e));
          watcher.watch(cb);
        },
        unwatchAll: () => watcher?.unwatchAll(),
        close: () => {
          // An app (not root) cannot write unexport: init does it. A line already gone is no error (as onoff).
          if (watcher) watcher.unexport();
          else if (!asApp) {
            try {
              writeFileSync(join(root, 'unexport'), String(global));
            } catch {
              // Unexported by someone else meanwhile.
            }
          }
          if (asApp) requestGpio('unexport', global, { sys: root });
        },
      };
    },
  };
}

/** LEDs under `sys`/class/leds, by their sysfs names. */
export function sysfsLeds(sys: string): LedBackend {
  const root = join(sys, 'class/leds');
  const led = (name: string): string => {
    const dir = join(root, name);
    if (name.includes('/') || !existsSync(dir)) throw noSuchLed(name, sysfsLedNames(root));
    return dir;
  };
  return {
    list: () => sysfsLedNames(root),
    read: (name, attr) => readText(join(led(name), attr)),
    write: (name, attr, value) => writeFileSync(join(led(name), attr), value),
  };
}

const sysfsLedNames = (root: string): string[] => (existsSync(root) ? readdirSync(root).sort() : []);

/** Serial devices present: ttys with a device behind them in `sys`/class/tty (NodeOS has no udevadm). */
export function sysfsTtys(sys: string): string[] {
  const root = join(sys, 'class/tty');
  return existsSync(root)
    ? readdirSync(root)
        .filter((t) => existsSync(join(root, t, 'device')))
        .map((t) => `/dev/${t}`)
        .sort()
    : [];
}

/** The interface init's Wi-Fi supervisor runs on; EWIFI when it runs on none. */
function wifiInterface(): string {
  const st = readWifiState();
  if (!st.iface) throw new BspError('EWIFI', `Wi-Fi is not running: ${st.problem ?? st.state}`);
  return st.iface;
}

/** The device-tree path an of_node link points to (`.../devicetree/base/soc/i2c@7e804000` -> `/soc/i2c@7e804000`). */
function ofNode(link: string): { node?: string } {
  try {
    const m = /\/devicetree\/base(\/.*)$/.exec(realpathSync(link));
    return m ? { node: m[1]! } : {};
  } catch {
    return {};
  }
}

/** I2C adapters as i2c-dev lists them under `sys`/class/i2c-dev (with their device-tree node); buses opened through i2c-bus. */
export function sysfsI2c(sys: string): I2cBackend {
  const root = join(sys, 'class/i2c-dev');
  const list = (): I2cAdapter[] =>
    existsSync(root)
      ? readdirSync(root)
          .filter((d) => /^i2c-\d+$/.test(d))
          .map((d) => ({ bus: Number(d.slice(4)), name: readText(join(root, d, 'name')), ...ofNode(join(root, d, 'device/of_node')) }))
          .sort((a, b) => a.bus - b.bus)
      : [];
  return {
    list,
    open: async (bus) => {
      const have = list();
      if (!have.some((a) => a.bus === bus)) throw noSuchI2cBus(bus, have);
      return load<{ openPromisified: (n: number) => Promise<I2cBus> }>('i2c-bus').openPromisified(bus);
    },
  };
}

/** The board's backends; `sys` is where sysfs is (a temporary tree in the contract tests), `env` the card's environment (the image's layout names it). */
export function linuxBackends(o: { sys?: string; env?: { file: string; size: number } } = {}): Backends {
  const sys = o.sys ?? '/sys';
  return {
    env: o.env ?? { file: '/boot/uboot.env', size: ENV_SIZE },
    gpio: sysfsGpio(sys),
    i2c: sysfsI2c(sys),
    serial: {
      open: (path, baudRate) => {
        const { SerialPort } = load<{ SerialPort: new (o: { path: string; baudRate: number }) => SerialPortLike }>('serialport');
        return new SerialPort({ path, baudRate });
      },
      // serialport's list() needs udevadm, which NodeOS lacks: read /sys/class/tty instead.
      list: () => sysfsTtys(sys),
    },
    leds: sysfsLeds(sys),
    system: {
      reboot: () => shutdown('reboot'),
      poweroff: () => shutdown('poweroff'),
      // /boot is mounted read-only so a power cut cannot damage it; open it just for the write.
      withWritable: (path, fn) => (path.startsWith('/boot/') ? withWritableMount('/boot', fn) : fn()),
      update: (source, log, opts) => updateBoard(source, log ?? ((m) => process.stdout.write(`nodeos: update: ${m}\n`)), undefined, opts),
      readFile: (p) => {
        try {
          return readFileSync(p);
        } catch {
          return undefined;
        }
      },
    },
    wifi: {
      status: () => readWifiState(),
      scan: async () => wifiScan(wifiInterface()),
      connect: async (ssid, passphrase, opts) => {
        // Refused before anything is looked at: the same answer with Wi-Fi running or not.
        const bad = badWifiSetting(ssid, passphrase, opts?.priority);
        if (bad) throw bad;
        wifiConnect(wifiInterface(), ssid, passphrase, opts);
      },
    },
    apps: {
      list: () => readAppsState()?.apps ?? [],
      control: (op, name) => controlApp(op, name),
      logs: (name, lines) => {
        const st = readAppsState();
        if (!st?.apps.some((a) => a.name === name)) throw new BspError('EAPP_UNKNOWN', `no app named ${name}: the apps are ${st?.apps.map((a) => a.name).join(', ') || '(none)'}`);
        return tailAppLog(st.logDir, name, lines);
      },
    },
  };
}

/**
 * Reboot or power off. Under NodeOS's init (PID 1 is node), ask it, as busybox's reboot and
 * poweroff do (SIGTERM, SIGUSR2): it releases the DHCP lease and stops its servers first.
 * Otherwise sync, unmount what NodeOS mounted from the card, and do it directly.
 */
function shutdown(how: 'reboot' | 'poweroff'): void {
  let init: string[] = [];
  try {
    init = readFileSync('/proc/1/cmdline', 'latin1').split('\0');
  } catch {
    // No /proc: do it here.
  }
  // NodeOS's init is the script SYSTEM_INIT run by /bin/node.
  if (init[0]?.endsWith('/node') && init[1] === SYSTEM_INIT) {
    try {
      process.kill(1, how === 'reboot' ? 'SIGTERM' : 'SIGUSR2');
      return;
    } catch {
      // Not allowed: do it here.
    }
  }
  syncUnmountAnd(how);
}
