/**
 * `<hostname>.local` over mDNS (RFC 6762), with the maintained multicast-dns package: the
 * board answers A/AAAA questions for its name with the addresses its interfaces have now,
 * announces itself when it gets a new address, and answers legacy unicast queries (from a
 * port other than 5353, e.g. `dig -p 5353 @board name.local`) directly to the asker, with
 * the question repeated and the query's id, as section 6.7 asks.
 */
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import type { Answer } from 'dns-packet';
import type { MulticastDNS, Options } from 'multicast-dns';
import { BspError } from '../errors.js';

const require = createRequire(import.meta.url);

/** Records stay valid this long (RFC 6762 recommends 120 s for host records). */
const TTL = 120;

export interface Addresses {
  v4: string[];
  v6: string[];
}

/** The board's own addresses: every non-internal interface (no loopback). */
export function interfaceAddresses(ifaces = networkInterfaces()): Addresses {
  const out: Addresses = { v4: [], v6: [] };
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') out.v4.push(a.address);
      else if (a.family === 'IPv6' && !a.address.startsWith('fe80')) out.v6.push(a.address);
    }
  }
  return out;
}

/** An A or AAAA record for the board's name. */
export interface HostRecord {
  name: string;
  type: 'A' | 'AAAA';
  class: 'IN';
  flush: boolean;
  ttl: number;
  data: string;
}

/** The answers for a query's questions about `<hostname>.local` (none when it is not about us). */
export function mdnsAnswers(questions: readonly { name: string; type: string }[], hostname: string, addrs: Addresses): HostRecord[] {
  const name = `${hostname}.local`.toLowerCase();
  const out: HostRecord[] = [];
  for (const q of questions) {
    if (q.name.toLowerCase().replace(/\.$/, '') !== name) continue;
    if (q.type === 'A' || q.type === 'ANY') for (const a of addrs.v4) out.push({ name: `${hostname}.local`, type: 'A', class: 'IN', flush: true, ttl: TTL, data: a });
    if (q.type === 'AAAA' || q.type === 'ANY') for (const a of addrs.v6) out.push({ name: `${hostname}.local`, type: 'AAAA', class: 'IN', flush: true, ttl: TTL, data: a });
  }
  return out;
}

/** Whether `address` is on one of the board's links: inside an interface's subnet (loopback too). */
export function isOnLink(address: string, ifaces = networkInterfaces()): boolean {
  const v4 = (a: string): number | undefined => {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
    if (!m) return undefined;
    const parts = m.slice(1).map(Number);
    return parts.some((x) => x > 255) ? undefined : parts.reduce((n, x) => n * 256 + x, 0);
  };
  const addr = v4(address.replace(/^::ffff:/, ''));
  for (const list of Object.values(ifaces)) {
    for (const i of list ?? []) {
      if (i.family === 'IPv4' && addr !== undefined) {
        const net = v4(i.address);
        const mask = v4(i.netmask);
        if (net === undefined || mask === undefined) continue;
        // Unsigned 32-bit AND of the two, without the sign of JavaScript's bitwise operators.
        if ((net & mask) >>> 0 === (addr & mask) >>> 0) return true;
      } else if (i.family === 'IPv6' && addr === undefined && address.includes(':')) {
        // Link-local sources are on-link by definition; otherwise the interface's /64 (or its prefix).
        if (/^fe80:/i.test(address)) return true;
        const bits = Number(i.cidr?.split('/')[1] ?? 64);
        if (ipv6Prefix(address, bits) !== undefined && ipv6Prefix(address, bits) === ipv6Prefix(i.address, bits)) return true;
      }
    }
  }
  return false;
}

/** The first `bits` bits of an IPv6 address as a bit string (undefined when it does not parse). */
function ipv6Prefix(address: string, bits: number): string | undefined {
  const a = address.split('%')[0]!;
  const halves = a.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<string>(Math.max(fill, 0)).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('').slice(0, bits);
}

/** Where a query's answer goes: the group, the asker (legacy unicast), or nowhere. */
export type ReplyTarget = { to: 'group' } | { to: 'asker'; port: number; address: string } | { to: 'none'; why: string };

/**
 * RFC 6762: a query is answered only when it comes from this link (section 11: no answers
 * to off-link sources, which spoofed queries would turn into traffic at a victim); one from
 * port 5353 gets its answer on the group, one from another valid port (a legacy unicast
 * querier) directly, and one from port 0, which no host can answer to, is dropped.
 */
export function replyTarget(rinfo: { address: string; port: number }, onLink: (address: string) => boolean): ReplyTarget {
  if (!Number.isInteger(rinfo.port) || rinfo.port < 1 || rinfo.port > 65535) return { to: 'none', why: `source port ${rinfo.port}` };
  if (!onLink(rinfo.address)) return { to: 'none', why: `off-link source ${rinfo.address}` };
  return rinfo.port === 5353 ? { to: 'group' } : { to: 'asker', port: rinfo.port, address: rinfo.address };
}

/**
 * At most `perSecond` direct answers per asker each second, and as many askers as `maxSources`
 * (a flood of forged sources cannot grow the table): a host asks a few times, a flood is cut.
 */
export function replyLimiter(perSecond = 5, maxSources = 256, now = (): number => Date.now()): (address: string) => boolean {
  let window = Math.floor(now() / 1000);
  const counts = new Map<string, number>();
  return (address) => {
    const w = Math.floor(now() / 1000);
    if (w !== window) {
      window = w;
      counts.clear();
    }
    const n = counts.get(address) ?? 0;
    if (n === 0 && counts.size >= maxSources) return false;
    if (n >= perSecond) return false;
    counts.set(address, n + 1);
    return true;
  };
}

export interface MdnsResponderOptions {
  hostname: string;
  addresses?: () => Addresses;
  /** Whether a source is on-link (default: inside one of the interfaces' subnets, loopback included). */
  onLink?: (address: string) => boolean;
  log: (msg: string) => void;
  /** A throw while answering (init's supervisor restarts the responder); without it, said once in the log. */
  onFault?: (err: unknown) => void;
  /** Probe for the name first (RFC 6762 8.1); default true. */
  probe?: boolean;
  /** multicast-dns options (tests bind to 127.0.0.1 on a free port without multicast). */
  socket?: Options;
}

export interface MdnsResponder {
  /** The name it answers for (without .local): the hostname, or hostname-N when that was taken. */
  name: string;
  /** Say the current addresses to the network (after a new lease). */
  announce(): void;
  stop(): Promise<void>;
}

/** How the name claim talks to the network: send a probe, hear responses, wait. */
export interface ProbeIo {
  probe(name: string): void;
  /** Subscribe to responses (their answers' names, types and data); returns the unsubscribe. */
  onResponse(cb: (answers: readonly { name: string; type: string; data?: unknown }[]) => void): () => void;
  sleep(ms: number): Promise<void>;
}

/**
 * RFC 6762 section 8.1: before answering for `<name>.local`, ask three times, 250 ms apart,
 * whether anyone holds it; a host that answers for it with an address that is not ours holds
 * it, and the next name is tried (`name-2`, `name-3`...). The name claimed, and whether it
 * is another than the one asked for.
 */
export async function claimName(base: string, ours: Addresses, io: ProbeIo, max = 10): Promise<{ name: string; renamed: boolean }> {
  const mine = new Set([...ours.v4, ...ours.v6]);
  for (let i = 1; i <= max; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    const fqdn = `${name}.local`.toLowerCase();
    let taken = false;
    const off = io.onResponse((answers) => {
      for (const a of answers) {
        if (typeof a.name === 'string' && a.name.toLowerCase().replace(/\.$/, '') === fqdn && (a.type === 'A' || a.type === 'AAAA') && !mine.has(String(a.data))) taken = true;
      }
    });
    try {
      for (let n = 0; n < 3 && !taken; n++) {
        io.probe(`${name}.local`);
        await io.sleep(250);
      }
    } finally {
      off();
    }
    if (!taken) return { name, renamed: i > 1 };
  }
  throw new BspError('EMDNS_NAME', `${base}.local and ${max - 1} names after it are all taken on this network: set another hostname (flash --hostname)`);
}

/** Start answering for `<hostname>.local` (or, when another host holds it, for the first free `<hostname>-N.local`). */
export async function startMdns(o: MdnsResponderOptions): Promise<MdnsResponder> {
  let factory: (opts?: Options) => MulticastDNS;
  try {
    factory = require('multicast-dns') as typeof factory;
  } catch (err) {
    throw new BspError('EMODULE_MISSING', `the multicast-dns module is not available (${(err as Error).message}); NodeOS images ship it in /usr/lib/node_modules`, { cause: err });
  }
  const addresses = o.addresses ?? (() => interfaceAddresses());
  const mdns = factory(o.socket ?? {});
  mdns.on('warning', () => undefined);
  await new Promise<void>((resolve, reject) => {
    mdns.once('ready', () => resolve());
    mdns.once('error', reject);
  });
  mdns.on('error', (err: Error) => o.log(`mdns: ${err.message}`));
  let hostname = o.hostname;
  if (o.probe !== false) {
    const claim = await claimName(o.hostname, addresses(), {
      probe: (name) => mdns.query({ questions: [{ name, type: 'ANY' }], authorities: mdnsAnswers([{ name, type: 'ANY' }], name.replace(/\.local$/, ''), addresses()) as Answer[] } as never),
      onResponse: (cb) => {
        const h = (r: { answers?: { name: string; type: string; data?: unknown }[] }): void => {
          try {
            cb(r.answers ?? []);
          } catch {
            /* a malformed response is no claim */
          }
        };
        mdns.on('response', h as never);
        return () => void mdns.removeListener('response', h as never);
      },
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    }).catch((err: unknown) => {
      mdns.destroy();
      throw err;
    });
    if (claim.renamed) o.log(`mdns: ${o.hostname}.local is taken on this network; answering as ${claim.name}.local`);
    hostname = claim.name;
  }
  const onLink = o.onLink ?? ((a: string) => isOnLink(a));
  const allowed = replyLimiter();
  let failures = 0;
  // This runs inside init (PID 1) on every datagram from the network: nothing may escape it.
  mdns.on('query', (query, rinfo) => {
    try {
      const answers = mdnsAnswers(query.questions ?? [], hostname, addresses());
      if (!answers.length) return;
      const target = replyTarget(rinfo, onLink);
      if (target.to === 'none' || !allowed(rinfo.address)) return;
      const done = (err?: Error | null): void => {
        if (err && failures++ === 0) o.log(`mdns: cannot answer: ${JSON.stringify(err.message)}`);
      };
      if (target.to === 'asker') {
        // Legacy unicast: answer the asker, not the group; no cache-flush bit there (6.7).
        mdns.respond({ id: query.id, questions: query.questions, answers: answers.map((a) => ({ ...a, flush: false, ttl: Math.min(TTL, 10) })) as Answer[] } as never, { port: target.port, address: target.address } as never, done as never);
      } else {
        mdns.respond({ answers: answers as Answer[] }, done as never);
      }
    } catch (err) {
      if (o.onFault) o.onFault(err);
      else if (failures++ === 0) o.log(`mdns: a query from the network could not be answered: ${JSON.stringify((err as Error).message)}`);
    }
  });
  return {
    name: hostname,
    announce: () => {
      const answers = mdnsAnswers([{ name: `${hostname}.local`, type: 'ANY' }], hostname, addresses());
      if (answers.length) mdns.respond({ answers: answers as Answer[] });
    },
    stop: () => new Promise((resolve) => mdns.destroy(() => resolve())),
  };
}
