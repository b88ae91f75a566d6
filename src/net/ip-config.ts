/**
 * How the board gets its address, from the kernel command line in the kernel's own `ip=`
 * syntax (Documentation/admin-guide/nfs/nfsroot.rst), which Debian's kernel does not act on
 * (no CONFIG_IP_PNP) and NodeOS's init does:
 *
 *   ip=dhcp (also on, any, both, bootp; the default)   ip=off (also none: no address)
 *   ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>
 *
 * A static address is a client-ip with autoconf off/none/empty; the netmask may instead be
 * given as client-ip/prefix. Set it when flashing: `flash --cmdline ip=192.168.1.50::192.168.1.1:255.255.255.0::eth0:off:192.168.1.1`.
 */
import type { Lease } from './dhcp-packet.js';

export type IpConfig =
  | { mode: 'dhcp'; device?: string }
  | { mode: 'off' }
  | { mode: 'static'; device?: string; lease: Lease };

const DHCP = ['on', 'any', 'dhcp', 'both', 'bootp'];
const OFF = ['off', 'none'];

const ipv4 = (s: string): boolean => /^(\d{1,3})(\.\d{1,3}){3}$/.test(s) && s.split('.').every((p) => Number(p) <= 255);

/** Prefix length of a dotted netmask, or undefined when it is not a contiguous mask. */
export function netmaskPrefix(mask: string): number | undefined {
  if (!ipv4(mask)) return undefined;
  const n = mask.split('.').reduce((a, p) => a * 256 + Number(p), 0);
  const bits = n.toString(2).padStart(32, '0');
  return /^1*0*$/.test(bits) ? bits.indexOf('0') === -1 ? 32 : bits.indexOf('0') : undefined;
}

/** The last `ip=` argument of a command line (undefined: none, DHCP). */
export function ipArgument(cmdline: string): string | undefined {
  let last: string | undefined;
  for (const m of cmdline.matchAll(/(?:^|\s)ip=(\S*)/g)) last = m[1];
  return last;
}

/** Parse an `ip=` value; an error says what is wrong and shows the form. */
export function parseIpConfig(value: string | undefined): IpConfig | { error: string } {
  if (value === undefined) return { mode: 'dhcp' };
  const v = value.trim();
  if (DHCP.includes(v)) return { mode: 'dhcp' };
  if (OFF.includes(v)) return { mode: 'off' };
  const f = v.split(':');
  if (f.length < 2 && !ipv4(f[0]!.split('/')[0]!)) return { error: `ip=${value}: not dhcp, off, nor <client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>` };
  const [client = '', , gw = '', mask = '', , device = '', autoconf = '', dns0 = '', dns1 = '', ntp0 = ''] = f;
  const dev = device || undefined;
  if (DHCP.includes(autoconf)) return { mode: 'dhcp', ...(dev ? { device: dev } : {}) };
  if (autoconf && !OFF.includes(autoconf)) return { error: `ip=${value}: autoconf "${autoconf}" is not one of off, none, ${DHCP.join(', ')}` };
  if (!client) return { error: `ip=${value}: a static address needs <client-ip> (or autoconf dhcp)` };
  const [addr, cidr] = client.split('/');
  if (!ipv4(addr!)) return { error: `ip=${value}: client address ${addr} is not an IPv4 address` };
  let prefix: number | undefined;
  if (cidr !== undefined) prefix = /^\d{1,2}$/.test(cidr) && Number(cidr) <= 32 ? Number(cidr) : undefined;
  else if (mask) prefix = netmaskPrefix(mask);
  if (prefix === undefined) return { error: `ip=${value}: give the netmask (4th field, e.g. 255.255.255.0) or client-ip/prefix` };
  for (const [what, a] of [['gateway', gw], ['dns0', dns0], ['dns1', dns1], ['ntp0', ntp0]] as const) {
    if (a && !ipv4(a)) return { error: `ip=${value}: ${what} ${a} is not an IPv4 address` };
  }
  const lease: Lease = {
    address: addr!,
    prefix,
    routers: gw ? [gw] : [],
    dns: [dns0, dns1].filter(Boolean),
    ntp: ntp0 ? [ntp0] : [],
    server: '',
    leaseSeconds: 0,
    t1: 0,
    t2: 0,
  };
  return { mode: 'static', ...(dev ? { device: dev } : {}), lease };
}
