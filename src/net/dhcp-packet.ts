/**
 * DHCP messages (RFC 2131, options RFC 2132) as bytes: the BOOTP header, the magic cookie and
 * the options, with option overload (52) honoured when reading. Decoding never throws on a
 * short or odd packet from the network: it returns undefined, and the client ignores it.
 */

/** DHCP message types (option 53). */
export const DhcpType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;
export type DhcpTypeName = keyof typeof DhcpType;

/** Option codes the kit reads or writes. */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN: 15,
  BROADCAST: 28,
  NTP: 42,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMS: 55,
  MESSAGE: 56,
  MAX_SIZE: 57,
  T1: 58,
  T2: 59,
  CLIENT_ID: 61,
  END: 255,
} as const;

const COOKIE = 0x63825363;
const HEADER = 236;
/** BOOTP's minimum message size; relays and old servers drop shorter ones. */
const MIN_SIZE = 300;

/** A decoded (or to be encoded) DHCP message. */
export interface DhcpMessage {
  /** 1 = BOOTREQUEST (client), 2 = BOOTREPLY (server). */
  op: 1 | 2;
  xid: number;
  secs?: number;
  /** Ask the server to broadcast its reply (the client has no address yet). */
  broadcast?: boolean;
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  /** Client hardware (MAC) address, `aa:bb:cc:dd:ee:ff`. */
  chaddr: string;
  type: DhcpTypeName;
  /** Raw options by code (without 53, which is `type`). */
  options: Map<number, Buffer>;
}

export const ipToBytes = (ip: string): Buffer => Buffer.from(ip.split('.').map(Number));
export const bytesToIp = (b: Buffer, at = 0): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
const isIp = (s: string): boolean => /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s) && s.split('.').every((n) => Number(n) <= 255);
const macToBytes = (mac: string): Buffer => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));

/** Encode a message; `options` are written in code order, then END, padded to 300 bytes. */
export function encodeDhcp(m: DhcpMessage): Buffer {
  const h = Buffer.alloc(HEADER);
  h[0] = m.op;
  h[1] = 1; // Ethernet
  h[2] = 6;
  h.writeUInt32BE(m.xid >>> 0, 4);
  h.writeUInt16BE(m.secs ?? 0, 8);
  h.writeUInt16BE(m.broadcast ? 0x8000 : 0, 10);
  for (const [field, at] of [[m.ciaddr, 12], [m.yiaddr, 16], [m.siaddr, 20], [m.giaddr, 24]] as const) {
    if (field !== undefined) {
      if (!isIp(field)) throw new TypeError(`not an IPv4 address: ${field}`);
      ipToBytes(field).copy(h, at);
    }
  }
  const mac = macToBytes(m.chaddr);
  if (mac.length !== 6 || mac.some((b) => Number.isNaN(b))) throw new TypeError(`not a MAC address: ${m.chaddr}`);
  mac.copy(h, 28);
  const parts: Buffer[] = [h, Buffer.from([0x63, 0x82, 0x53, 0x63]), Buffer.from([Opt.MESSAGE_TYPE, 1, DhcpType[m.type]])];
  for (const [code, value] of [...m.options].sort(([a], [b]) => a - b)) {
    if (code === Opt.MESSAGE_TYPE || code === Opt.PAD || code === Opt.END) continue;
    // Values over 255 bytes are split into several instances (RFC 3396).
    for (let i = 0; i < Math.max(1, value.length); i += 255) {
      const chunk = value.subarray(i, i + 255);
      parts.push(Buffer.from([code, chunk.length]), chunk);
    }
  }
  parts.push(Buffer.from([Opt.END]));
  const out = Buffer.concat(parts);
  return out.length >= MIN_SIZE ? out : Buffer.concat([out, Buffer.alloc(MIN_SIZE - out.length)]);
}

/** Read options from `b` into `into` (concatenating repeated codes, RFC 3396); false if malformed. */
function readOptions(b: Buffer, into: Map<number, Buffer>): boolean {
  let i = 0;
  while (i < b.length) {
    const code = b[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return true;
    if (i + 1 >= b.length) return false;
    const len = b[i + 1]!;
    if (i + 2 + len > b.length) return false;
    const value = b.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    into.set(code, prev ? Buffer.concat([prev, value]) : Buffer.from(value));
    i += 2 + len;
  }
  return true;
}

/** Decode a message; undefined for anything that is not a well-formed DHCP message. */
export function decodeDhcp(b: Buffer): DhcpMessage | undefined {
  if (b.length < HEADER + 4 || (b[0] !== 1 && b[0] !== 2) || b[1] !== 1 || b[2] !== 6) return undefined;
  if (b.readUInt32BE(HEADER) !== COOKIE) return undefined;
  const options = new Map<number, Buffer>();
  if (!readOptions(b.subarray(HEADER + 4), options)) return undefined;
  // Option overload: more options in the file (1), sname (2) or both (3) fields.
  const overload = options.get(Opt.OVERLOAD)?.[0] ?? 0;
  if (overload & 1 && !readOptions(b.subarray(108, 236), options)) return undefined;
  if (overload & 2 && !readOptions(b.subarray(44, 108), options)) return undefined;
  const t = options.get(Opt.MESSAGE_TYPE);
  const type = (Object.keys(DhcpType) as DhcpTypeName[]).find((k) => t?.length === 1 && DhcpType[k] === t[0]);
  if (!type) return undefined;
  options.delete(Opt.MESSAGE_TYPE);
  const ip = (at: number): string | undefined => (b.readUInt32BE(at) === 0 ? undefined : bytesToIp(b, at));
  const m: DhcpMessage = {
    op: b[0] as 1 | 2,
    xid: b.readUInt32BE(4),
    secs: b.readUInt16BE(8),
    broadcast: (b.readUInt16BE(10) & 0x8000) !== 0,
    chaddr: [...b.subarray(28, 34)].map((x) => x.toString(16).padStart(2, '0')).join(':'),
    type,
    options,
  };
  const fields = { ciaddr: ip(12), yiaddr: ip(16), siaddr: ip(20), giaddr: ip(24) };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) (m as unknown as Record<string, string>)[k] = v;
  return m;
}

/** Option helpers: IPv4 lists, 32-bit seconds, text. */
export const opt = {
  ips: (v: Buffer | undefined): string[] => (v && v.length % 4 === 0 ? Array.from({ length: v.length / 4 }, (_, i) => bytesToIp(v, i * 4)) : []),
  ip: (v: Buffer | undefined): string | undefined => (v?.length === 4 ? bytesToIp(v) : undefined),
  u32: (v: Buffer | undefined): number | undefined => (v?.length === 4 ? v.readUInt32BE(0) : undefined),
  text: (v: Buffer | undefined): string | undefined => (v ? v.toString('utf8').replace(/\0+$/, '') : undefined),
  fromIps: (ips: string[]): Buffer => Buffer.concat(ips.map(ipToBytes)),
  fromU32: (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  },
};

/** What a lease gives the board. */
export interface Lease {
  address: string;
  /** Prefix length from the subnet mask (default 24). */
  prefix: number;
  routers: string[];
  dns: string[];
  domain?: string;
  ntp: string[];
  server: string;
  /** Seconds, from option 51 (an infinite lease is 0xffffffff). */
  leaseSeconds: number;
  /** Renewal and rebinding times in seconds (defaults 0.5 and 0.875 of the lease). */
  t1: number;
  t2: number;
}

/**
 * A host or domain name as RFC 1035 and 1123 allow it: dot-separated labels of letters,
 * digits and inner hyphens (underscores too, as service names use them), 1-63 characters
 * each, 253 in all, an optional final dot.
 */
export function isDnsName(s: string): boolean {
  const n = s.replace(/\.$/, '');
  return n.length > 0 && n.length <= 253 && n.split('.').every((l) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
}

/** The lease an ACK grants; undefined if it lacks an address or a server id. */
export function leaseFrom(ack: DhcpMessage, fallbackServer?: string): Lease | undefined {
  const address = ack.yiaddr;
  const server = opt.ip(ack.options.get(Opt.SERVER_ID)) ?? fallbackServer;
  if (!address || !server) return undefined;
  const mask = opt.u32(ack.options.get(Opt.SUBNET_MASK));
  let prefix = 24;
  if (mask !== undefined) {
    prefix = 0;
    while (prefix < 32 && mask & (0x80000000 >>> prefix)) prefix++;
  }
  const leaseSeconds = opt.u32(ack.options.get(Opt.LEASE_TIME)) ?? 3600;
  const t1 = opt.u32(ack.options.get(Opt.T1)) ?? Math.floor(leaseSeconds * 0.5);
  const t2 = opt.u32(ack.options.get(Opt.T2)) ?? Math.floor(leaseSeconds * 0.875);
  // A name from the network reaches /etc/resolv.conf and /etc/hosts: one that is not a DNS
  // name (a newline would add lines of the sender's choosing) is dropped.
  const domainText = opt.text(ack.options.get(Opt.DOMAIN));
  const domain = domainText !== undefined && isDnsName(domainText) ? domainText.replace(/\.$/, '') : undefined;
  return {
    address,
    prefix,
    routers: opt.ips(ack.options.get(Opt.ROUTER)),
    dns: opt.ips(ack.options.get(Opt.DNS)),
    ...(domain ? { domain } : {}),
    ntp: opt.ips(ack.options.get(Opt.NTP)),
    server,
    leaseSeconds,
    t1: Math.min(t1, leaseSeconds),
    t2: Math.min(Math.max(t2, t1), leaseSeconds),
  };
}
