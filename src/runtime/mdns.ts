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

export interface MdnsResponderOptions {
  hostname: string;
  addresses?: () => Addresses;
  log: (msg: string) => void;
  /** multicast-dns options (tests bind to 127.0.0.1 on a free port without multicast). */
  socket?: Options;
}

export interface MdnsResponder {
  /** Say the current addresses to the network (after a new lease). */
  announce(): void;
  stop(): Promise<void>;
}

/** Start answering for `<hostname>.local`. */
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
  mdns.on('query', (query, rinfo) => {
    const answers = mdnsAnswers(query.questions ?? [], o.hostname, addresses());
    if (!answers.length) return;
    if (rinfo.port !== 5353) {
      // Legacy unicast: answer the asker, not the group; no cache-flush bit there (6.7).
      mdns.respond({ id: query.id, questions: query.questions, answers: answers.map((a) => ({ ...a, flush: false, ttl: Math.min(TTL, 10) })) as Answer[] } as never, { port: rinfo.port, address: rinfo.address } as never);
    } else {
      mdns.respond({ answers: answers as Answer[] });
    }
  });
  return {
    announce: () => {
      const answers = mdnsAnswers([{ name: `${o.hostname}.local`, type: 'ANY' }], o.hostname, addresses());
      if (answers.length) mdns.respond({ answers: answers as Answer[] });
    },
    stop: () => new Promise((resolve) => mdns.destroy(() => resolve())),
  };
}
