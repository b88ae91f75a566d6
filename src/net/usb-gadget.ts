/**
 * USB gadget Ethernet through configfs (Documentation/usb/gadget_configfs.rst): on boards with
 * a USB OTG port (Zero 2 W, 3A+, 4B) one cable to a laptop gives the board a network. The
 * gadget offers NCM (Linux, macOS, Windows 11) or ECM; its MAC addresses are derived from
 * the board's serial number, so the laptop sees the same device on every boot.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError } from '../errors.js';

/** Options of {@link setupUsbGadget}. */
export interface UsbGadgetOptions {
  /** configfs mount point. Default /sys/kernel/config. */
  configfs?: string;
  /** Where the USB device controllers are listed. Default /sys/class/udc. */
  udcDir?: string;
  /** ncm (default) or ecm. */
  kind?: 'ncm' | 'ecm';
  /** The board's serial number (device tree serial-number), for stable MACs and the USB serial. */
  serial: string;
  /** Shown to the laptop as the product name, e.g. "NodeOS on Raspberry Pi Zero 2 W". */
  product: string;
}

/** The gadget as set up. */
export interface UsbGadget {
  dir: string;
  udc: string;
  function: string;
  /** MAC of the board's end (dev_addr) and of the laptop's (host_addr). */
  devAddr: string;
  hostAddr: string;
}

const NAME = 'nodeos';

/** A locally administered, unicast MAC from a seed (stable across boots). */
export function stableMac(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[0] = (h[0]! & 0xfe) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * Create and bind the gadget: device ids and strings, one configuration with one Ethernet
 * function, then the UDC (last: the kernel starts the gadget when it is written). EGADGET
 * when the board has no device-mode controller (no OTG port, or dr_mode = host).
 */
export function setupUsbGadget(o: UsbGadgetOptions): UsbGadget {
  const configfs = o.configfs ?? '/sys/kernel/config';
  const udcDir = o.udcDir ?? '/sys/class/udc';
  const udcs = existsSync(udcDir) ? readdirSync(udcDir).sort() : [];
  const udc = udcs[0];
  if (!udc) throw new BspError('EGADGET', `no USB device controller in ${udcDir}: this board has no OTG port in device mode (load dwc2 with dr_mode peripheral or otg)`);
  const root = join(configfs, 'usb_gadget');
  if (!existsSync(root)) throw new BspError('EGADGET', `${root} does not exist: mount configfs (mount -t configfs none ${configfs}) and load libcomposite`);
  const dir = join(root, NAME);
  const kind = o.kind ?? 'ncm';
  const fn = `${kind}.usb0`;
  const write = (rel: string, value: string): void => writeFileSync(join(dir, rel), `${value}\n`);
  mkdirSync(dir, { recursive: true });
  write('idVendor', '0x1d6b'); // Linux Foundation
  write('idProduct', '0x0104'); // Multifunction Composite Gadget
  write('bcdDevice', '0x0100');
  write('bcdUSB', '0x0200');
  mkdirSync(join(dir, 'strings/0x409'), { recursive: true });
  write('strings/0x409/serialnumber', o.serial);
  write('strings/0x409/manufacturer', 'NodeOS');
  write('strings/0x409/product', o.product);
  mkdirSync(join(dir, 'configs/c.1/strings/0x409'), { recursive: true });
  write('configs/c.1/MaxPower', '250');
  write('configs/c.1/strings/0x409/configuration', kind.toUpperCase());
  mkdirSync(join(dir, 'functions', fn), { recursive: true });
  const devAddr = stableMac(`${o.serial}:dev`);
  const hostAddr = stableMac(`${o.serial}:host`);
  write(`functions/${fn}/dev_addr`, devAddr);
  write(`functions/${fn}/host_addr`, hostAddr);
  const link = join(dir, 'configs/c.1', fn);
  if (!existsSync(link)) symlinkSync(join(dir, 'functions', fn), link);
  write('UDC', udc);
  return { dir, udc, function: fn, devAddr, hostAddr };
}
