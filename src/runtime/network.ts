/**
 * The board's network, run by init in the background (the REPL never waits for it): the
 * first Ethernet-like interface comes up, gets its address by DHCP (src/net), and the lease
 * becomes the address, the default route and /etc/resolv.conf through busybox `ip`. What
 * happens is said once per change on the console, never in a loop.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { busybox, waitFor } from './busybox.js';
import { applyLeaseCommands, broadcastRouteCommand, DhcpClient, expireLeaseCommands, ipArgument, logText, parseIpConfig, hostsFile, NSSWITCH_CONF, resolvConf, udpTransport, type Lease } from '../net/index.js';

/** What the network part of init needs from it. */
export interface NetworkOptions {
  hostname: string;
  log: (msg: string) => void;
  /** How long to wait for a network interface to appear. Default 15 s (USB adapters enumerate late). */
  waitMs?: number;
  /** Called with each new lease (not renewals), after the address is set: the clock starts here. */
  onLease?: (lease: Lease) => void;
  /** The kernel command line (its `ip=` chooses DHCP, a static address or none). Default /proc/cmdline. */
  cmdline?: string;
}

/** The first interface that is not loopback, not virtual, with a MAC (eth0, end0, usb0...). */
export function pickInterface(sysClassNet = '/sys/class/net'): string | undefined {
  if (!existsSync(sysClassNet)) return undefined;
  return readdirSync(sysClassNet)
    .filter((n) => n !== 'lo' && !/^(wlan|wl|sit|tun|tap|dummy|bond|br)/.test(n))
    .filter((n) => existsSync(`${sysClassNet}/${n}/address`) && readFileSync(`${sysClassNet}/${n}/address`, 'utf8').trim() !== '00:00:00:00:00:00')
    .sort()[0];
}

/**
 * Follows an interface's carrier (`/sys/class/net/<if>/carrier`: 1 up, 0 down, unreadable
 * while the interface is administratively down) and calls back once per change.
 */
export class CarrierWatch {
  private last: boolean | undefined;

  constructor(
    private readonly read: () => boolean | undefined,
    private readonly onChange: (up: boolean) => void,
  ) {
    this.last = read();
  }

  /** Read the carrier now; returns whether it changed. */
  check(): boolean {
    const now = this.read();
    if (now === undefined || now === this.last) return false;
    this.last = now;
    this.onChange(now);
    return true;
  }
}

/** The carrier of `iface` from sysfs (undefined when it cannot be read). */
export function readCarrier(iface: string, sysClassNet = '/sys/class/net'): boolean | undefined {
  try {
    return readFileSync(`${sysClassNet}/${iface}/carrier`, 'utf8').trim() === '1';
  } catch {
    return undefined;
  }
}

/** Bring up loopback and the names files, then the first interface (or ip='s device) with DHCP or ip='s static address. */
export async function startNetwork(o: NetworkOptions): Promise<DhcpClient | undefined> {
  busybox(['ip', 'link', 'set', 'lo', 'up']);
  writeFileSync('/etc/hosts', hostsFile(o.hostname));
  writeFileSync('/etc/nsswitch.conf', NSSWITCH_CONF);
  writeFileSync('/etc/resolv.conf', resolvConf(undefined));
  let config = parseIpConfig(ipArgument(o.cmdline ?? readFileSync('/proc/cmdline', 'utf8')));
  if ('error' in config) {
    o.log(`network: ${config.error}; using DHCP`);
    config = { mode: 'dhcp' };
  }
  if (config.mode === 'off') {
    o.log('network: off (ip=off on the kernel command line)');
    return undefined;
  }
  const wanted = config.device;
  const find = (): string | undefined => (wanted ? (existsSync(`/sys/class/net/${wanted}`) ? wanted : undefined) : pickInterface());
  const iface = await waitFor(find, o.waitMs ?? 15000, 250);
  if (!iface) {
    o.log(wanted ? `network: no interface ${wanted} (named by ip= on the kernel command line)` : 'network: no Ethernet interface (no driver for one, or none on this board)');
    return undefined;
  }
  const mac = readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim();
  const up = busybox(['ip', 'link', 'set', iface, 'up']);
  if (up) o.log(`network: cannot bring ${iface} up: ${up}`);
  if (config.mode === 'static') {
    const l = config.lease;
    for (const c of applyLeaseCommands(iface, l)) {
      const err = busybox(c);
      if (err) o.log(`network: ${c.join(' ')}: ${err}`);
    }
    writeFileSync('/etc/resolv.conf', resolvConf(l));
    o.log(`network: ${iface} ${l.address}/${l.prefix}${l.routers[0] ? ` via ${l.routers[0]}` : ''} (static, from ip= on the kernel command line)`);
    o.onLease?.(l);
    return undefined;
  }
  // Without an address the kernel has no route for 255.255.255.255: give DHCP one.
  busybox(broadcastRouteCommand(iface));
  const transport = await udpTransport();
  const run = (cmds: string[][]): void => {
    for (const c of cmds) {
      const err = busybox(c);
      if (err) o.log(`network: ${c.join(' ')}: ${err}`);
    }
  };
  const faults = new Set<string>();
  const client = new DhcpClient({
    mac,
    transport,
    hostname: o.hostname,
    // A throw while handling the network (or applying a lease): said once, and the client starts over.
    onFault: (err) => {
      const m = logText(err instanceof Error ? err.message : String(err));
      if (faults.has(m)) return;
      if (faults.size < 100) faults.add(m);
      o.log(`network: DHCP failed (${m}); starting over`);
    },
    onBound: (l: Lease, renewed: boolean) => {
      if (!renewed) run(applyLeaseCommands(iface, l));
      writeFileSync('/etc/resolv.conf', resolvConf(l));
      writeFileSync('/etc/hosts', hostsFile(o.hostname, l.domain));
      if (!renewed) o.onLease?.(l);
    },
    onExpired: (l: Lease) => {
      run(expireLeaseCommands(iface, l));
      writeFileSync('/etc/resolv.conf', resolvConf(undefined));
    },
    onEvent: (e) => {
      if (e.type === 'bound' && !e.renewed) o.log(`network: ${iface} ${e.lease.address}/${e.lease.prefix}${e.lease.routers[0] ? ` via ${e.lease.routers[0]}` : ''} from DHCP server ${e.lease.server} (lease ${e.lease.leaseSeconds} s)`);
      else if (e.type === 'no-answer') o.log(`network: no DHCP answer on ${iface} yet; still asking`);
      else if (e.type === 'expired') o.log(`network: the lease of ${e.lease.address} ended; asking again`);
      else if (e.type === 'released') o.log(`network: released ${e.lease.address} to DHCP server ${e.lease.server}`);
      else if (e.type === 'nak') o.log(`network: the DHCP server refused the address${e.message ? ` (${logText(e.message)})` : ''}; asking again`);
    },
  });
  client.start();
  // Cable out and back in (or a switch restarting): said once each way; on return the lease
  // is confirmed at once (INIT-REBOOT) instead of waiting for a timer.
  const watch = new CarrierWatch(
    () => readCarrier(iface),
    (up) => {
      if (!up) return o.log(`network: ${iface} link down`);
      o.log(`network: ${iface} link up; ${client.lease ? `confirming ${client.lease.address}` : 'asking DHCP'}`);
      client.linkUp();
    },
  );
  setInterval(() => watch.check(), 2000).unref();
  return client;
}
