/**
 * What a lease turns into on the board: the `ip` commands (busybox's, already in the image:
 * no new userland, no native addon) that set the address and routes, and the files glibc's
 * resolver reads so Node's dns.lookup (what npm uses) works: /etc/resolv.conf, /etc/hosts
 * (localhost and the board's own name resolve without DNS) and /etc/nsswitch.conf.
 */
import { isDnsName, type Lease } from './dhcp-packet.js';

/** busybox `ip` argument lists that apply a lease to `iface` (address first, then the default route). */
export function applyLeaseCommands(iface: string, l: Lease, o: { metric?: number } = {}): string[][] {
  const cmds = [['ip', 'addr', 'replace', `${l.address}/${l.prefix}`, 'dev', iface]];
  const router = l.routers[0];
  // A router outside the subnet (some hosted networks) needs a host route to it first.
  // A second link (Wi-Fi beside Ethernet) gives its default route a higher metric.
  if (router) cmds.push(['ip', 'route', 'replace', 'default', 'via', router, 'dev', iface, ...(o.metric !== undefined ? ['metric', String(o.metric)] : []), 'onlink']);
  return cmds;
}

/** busybox `ip` argument lists that take a lease off `iface` again. */
export function removeLeaseCommands(iface: string, l: Lease): string[][] {
  return [
    ...(l.routers[0] ? [['ip', 'route', 'del', 'default', 'via', l.routers[0], 'dev', iface]] : []),
    ['ip', 'addr', 'del', `${l.address}/${l.prefix}`, 'dev', iface],
  ];
}

/**
 * Without an address the kernel has no route for 255.255.255.255, and removing an interface's
 * last address flushes the one added at start: DHCP's broadcasts need it back after every
 * expiry or NAK, or every later DISCOVER fails with ENETUNREACH.
 */
export const broadcastRouteCommand = (iface: string): string[] => ['ip', 'route', 'replace', '255.255.255.255/32', 'dev', iface];

/** A lease ending (expiry, NAK): its address and route taken off, the broadcast route put back for the next DISCOVER. */
export function expireLeaseCommands(iface: string, l: Lease): string[][] {
  return [...removeLeaseCommands(iface, l), broadcastRouteCommand(iface)];
}

/** /etc/resolv.conf from a lease (and configured servers first); empty servers: lookups fail at once. */
export function resolvConf(l: Pick<Lease, 'dns' | 'domain'> | undefined, configured: string[] = []): string {
  const servers = [...new Set([...configured, ...(l?.dns ?? [])])].slice(0, 3); // glibc reads at most 3
  return [
    '# Written by NodeOS from the DHCP lease; rewritten on every lease change.',
    ...(l?.domain && isDnsName(l.domain) ? [`search ${l.domain}`] : []),
    ...servers.map((s) => `nameserver ${s}`),
    'options timeout:2 attempts:2',
    '',
  ].join('\n');
}

/** /etc/hosts: localhost for IPv4 and IPv6, and the board's own name. */
export function hostsFile(hostname: string, domain?: string): string {
  const names = domain && isDnsName(domain) ? `${hostname}.${domain} ${hostname}` : hostname;
  return ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `127.0.1.1\t${names}`, ''].join('\n');
}

/** /etc/nsswitch.conf: files, then DNS (glibc resolves both without NSS modules of its own). */
export const NSSWITCH_CONF = ['# NodeOS: /etc/hosts first, then the DNS servers in /etc/resolv.conf.', 'hosts: files dns', 'networks: files', ''].join('\n');
