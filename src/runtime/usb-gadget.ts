/**
 * USB gadget Ethernet at boot, on boards whose profile has `usbGadget` (an OTG port in
 * device mode): the configfs gadget (src/net/usb-gadget.ts), the board's address on the
 * cable, and a DHCP server that gives the laptop at the other end .2 to .20 of that /24.
 * Nothing here has a QEMU model: it is tested on a configfs tree in a temporary directory.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BoardProfile } from '../boards/schema.js';
import { waitFor } from './busybox.js';
import { DhcpServer, logText, setupUsbGadget, udpTransport, type DhcpTransport } from '../net/index.js';

export interface GadgetNetworkOptions {
  profile: BoardProfile;
  /** The board's serial number (stable MACs and USB serial). */
  serial: string;
  log: (msg: string) => void;
  /** busybox `ip` with these arguments; an error text or undefined. */
  ip: (args: string[]) => string | undefined;
  configfs?: string;
  udcDir?: string;
  /** How long to wait for the controller and the interface. Default 10 s. */
  waitMs?: number;
  /** The DHCP server's socket (tests). Default UDP 0.0.0.0:67, replies to the link's broadcast. */
  transport?: (subnetBroadcast: string) => Promise<DhcpTransport>;
}

export interface GadgetNetwork {
  iface: string;
  address: string;
  server: DhcpServer;
}

/** Set up the gadget and its link; undefined (said once) when the board cannot offer it now. */
export async function startGadgetNetwork(o: GadgetNetworkOptions): Promise<GadgetNetwork | undefined> {
  const g = o.profile.usbGadget;
  if (!g) return undefined;
  const udcDir = o.udcDir ?? '/sys/class/udc';
  const wait = o.waitMs ?? 10000;
  const udc = await waitFor(() => (existsSync(udcDir) ? readdirFirst(udcDir) : undefined), wait);
  if (!udc) {
    o.log(`usb-gadget: no USB device controller in ${udcDir} (the OTG port is in host mode, or its driver did not load): no network over the USB cable`);
    return undefined;
  }
  const kind = g.kind ?? 'ncm';
  const gadget = setupUsbGadget({ ...(o.configfs ? { configfs: o.configfs } : {}), udcDir, kind, serial: o.serial, product: `NodeOS on ${o.profile.name}` });
  // The kernel names the interface (usb0 unless taken) once the function is bound.
  const ifnameFile = join(gadget.dir, 'functions', gadget.function, 'ifname');
  const iface = await waitFor(() => {
    const n = existsSync(ifnameFile) ? readFileSync(ifnameFile, 'utf8').trim() : '';
    return n && n !== '(unnamed net_device)' ? n : undefined;
  }, wait);
  if (!iface) {
    o.log(`usb-gadget: the ${kind.toUpperCase()} function has no network interface: no network over the USB cable`);
    return undefined;
  }
  const address = g.address ?? '192.168.7.1/24';
  const ip = address.split('/')[0]!;
  const net = ip.split('.').slice(0, 3).join('.');
  for (const args of [['ip', 'addr', 'replace', address, 'dev', iface], ['ip', 'link', 'set', iface, 'up']]) {
    const err = o.ip(args);
    if (err) {
      o.log(`usb-gadget: ${args.join(' ')}: ${err}`);
      return undefined;
    }
  }
  const transport = await (o.transport ?? ((bcast: string) => udpTransport({ local: { address: '0.0.0.0', port: 67 }, servers: { address: bcast, port: 68 } })))(`${net}.255`);
  let faulted = 0;
  const server = new DhcpServer({
    transport,
    serverIp: ip,
    prefix: 24,
    pool: { first: `${net}.2`, last: `${net}.20` },
    onLease: (mac, addr) => o.log(`usb-gadget: ${addr} to ${mac} over the USB cable`),
    // A datagram that made the server throw: said once, and the next one is served.
    onFault: (err) => {
      if (faulted++ === 0) o.log(`usb-gadget: the DHCP server could not answer a request (${logText(err instanceof Error ? err.message : String(err))}); it goes on`);
    },
  });
  o.log(`usb-gadget: ${iface} ${address} (${kind.toUpperCase()}, board MAC ${gadget.devAddr}); a laptop on the USB cable gets ${net}.2-${net}.20 by DHCP`);
  return { iface, address, server };
}

function readdirFirst(dir: string): string | undefined {
  return readdirSync(dir).sort()[0];
}
