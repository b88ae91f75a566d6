/**
 * The Linux backend: GPIO through onoff (sysfs), I2C through i2c-bus, UARTs through
 * serialport, LEDs through /sys/class/leds. The npm modules are loaded on first use, so
 * the board object works (and explains what is missing) even where they are not installed.
 */
import { controlApp, readAppsState } from '../app-control.js';
import { tailAppLog } from '../app-log.js';
import { GPIO_FIFO, requestGpio } from '../gpio-access.js';
import { accessSync, constants, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BspError } from '../../errors.js';
import { SYSTEM_INIT } from '../../layout/index.js';
import { syncUnmountAnd, withWritableMount } from '../busybox.js';
import { updateBoard } from '../update.js';
import type { Backends, Direction, Edge, GpioChipInfo, GpioLine, I2cBus, SerialPortLike } from './backend.js';

const require = createRequire(import.meta.url);

function load<T>(name: string): T {
  try {
    return require(name) as T;
  } catch (err) {
    throw new BspError('EMODULE_MISSING', `the ${name} module is not available (${(err as Error).message}); NodeOS images ship it in /usr/lib/node_modules`, { cause: err });
  }
}

interface OnoffGpio {
  readSync(): 0 | 1;
  read(): Promise<0 | 1>;
  writeSync(v: 0 | 1): void;
  setDirection(d: Direction): void;
  setEdge(e: Edge): void;
  direction(): Direction;
  watch(cb: (err: Error | null | undefined, value: 0 | 1) => void): void;
  unwatchAll(): void;
  unexport(): void;
}

const SYS_GPIO = '/sys/class/gpio';
const SYS_LEDS = '/sys/class/leds';

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
export function sysfsChips(root = SYS_GPIO): GpioChipInfo[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => d.startsWith('gpiochip'))
    .map((d) => ({ label: readText(join(root, d, 'label')), base: Number(readText(join(root, d, 'base'))), ngpio: Number(readText(join(root, d, 'ngpio'))) }));
}

export function linuxBackends(): Backends {
  return {
    envFile: '/boot/uboot.env',
    gpio: {
      chips: () => sysfsChips(),
      chip: (label) => sysfsChips().find((c) => c.label === label),
      open: (global, d): GpioLine => {
        const { Gpio } = load<{ Gpio: new (n: number, d: Direction | 'high' | 'low') => OnoffGpio }>('onoff');
        // An app that is not root gets the line from init (gpio-access.ts), as udev would do.
        const asApp = process.getuid?.() !== 0;
        if (asApp && !writable(join(SYS_GPIO, `gpio${global}`, 'value')) && !requestGpio('export', global) && existsSync(GPIO_FIFO)) {
          throw new BspError('EGPIO_ACCESS', `init did not hand GPIO line ${global} over to this app (not root) in time; run the app as root ("nodeos": { "root": true } in its package.json) if this persists`);
        }
        const g = new Gpio(global, d);
        let edge: Edge = 'none';
        return {
          get direction() {
            return g.direction();
          },
          read: () => g.readSync(),
          readAsync: () => g.read(),
          write: (v) => g.writeSync(v),
          setDirection: (nd) => g.setDirection(nd),
          watch: (cb, e) => {
            if (e !== edge) g.setEdge((edge = e));
            g.watch(cb);
          },
          unwatchAll: () => g.unwatchAll(),
          close: () => {
            g.unexport();
            if (asApp) requestGpio('unexport', global);
          },
        };
      },
    },
    i2c: {
      open: async (bus) => load<{ openPromisified: (n: number) => Promise<I2cBus> }>('i2c-bus').openPromisified(bus),
    },
    serial: {
      open: (path, baudRate) => {
        const { SerialPort } = load<{ SerialPort: new (o: { path: string; baudRate: number }) => SerialPortLike }>('serialport');
        return new SerialPort({ path, baudRate });
      },
      // serialport's list() needs udevadm, which NodeOS lacks: read /sys/class/tty instead.
      list: () =>
        existsSync('/sys/class/tty')
          ? readdirSync('/sys/class/tty')
              .filter((t) => existsSync(join('/sys/class/tty', t, 'device')))
              .map((t) => `/dev/${t}`)
              .sort()
          : [],
    },
    leds: {
      list: () => (existsSync(SYS_LEDS) ? readdirSync(SYS_LEDS).sort() : []),
      read: (name, attr) => readText(join(SYS_LEDS, name, attr)),
      write: (name, attr, value) => writeFileSync(join(SYS_LEDS, name, attr), value),
    },
    system: {
      reboot: () => shutdown('reboot'),
      poweroff: () => shutdown('poweroff'),
      // /boot is mounted read-only so a power cut cannot damage it; open it just for the write.
      withWritable: (path, fn) => (path.startsWith('/boot/') ? withWritableMount('/boot', fn) : fn()),
      update: (source, log) => updateBoard(source, log ?? ((m) => process.stdout.write(`nodeos: update: ${m}\n`))),
      readFile: (p) => {
        try {
          return readFileSync(p);
        } catch {
          return undefined;
        }
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
