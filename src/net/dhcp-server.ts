/**
 * A small DHCP server for the board's side of a point-to-point link (USB gadget Ethernet):
 * one address pool, one lease per client MAC, OFFER/ACK/NAK and RELEASE. The laptop at the
 * other end of the cable gets its address from it; no router or DNS is offered unless given.
 */
import { decodeDhcp, encodeDhcp, ipToBytes, Opt, opt, type DhcpMessage } from './dhcp-packet.js';
import type { Clock, DhcpTransport } from './dhcp-client.js';
import { systemClock } from './dhcp-client.js';

/** Options of {@link DhcpServer}. */
export interface DhcpServerOptions {
  transport: DhcpTransport;
  /** The board's own address on the link (also the server id). */
  serverIp: string;
  prefix: number;
  /** First and last address handed out. */
  pool: { first: string; last: string };
  leaseSeconds?: number;
  /** Offered as the router and DNS server when set (e.g. when the board shares a connection). */
  router?: string;
  dns?: string[];
  clock?: Clock;
  onLease?: (mac: string, address: string) => void;
  /** A throw while answering a datagram (init's supervisor says it); without it the throw goes on. */
  onFault?: (err: unknown) => void;
}

const toNum = (ip: string): number => ipToBytes(ip).readUInt32BE(0);
const toIp = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export class DhcpServer {
  /** Leases by client MAC: address and expiry (ms on the server's clock). */
  readonly leases = new Map<string, { address: string; expires: number }>();
  private readonly clock: Clock;

  constructor(private readonly o: DhcpServerOptions) {
    this.clock = o.clock ?? systemClock;
    if (toNum(o.pool.first) > toNum(o.pool.last)) throw new RangeError(`pool ${o.pool.first}-${o.pool.last} is empty`);
    // Every datagram is someone else's: a throw while answering it is reported, and the next one is served.
    o.transport.onMessage((b) => {
      try {
        this.receive(b);
      } catch (err) {
        if (!o.onFault) throw err;
        o.onFault(err);
      }
    });
  }

  close(): void {
    this.o.transport.close();
  }

  /** The client's current address (unless another client holds it now), or the first free one; undefined when the pool is used up. */
  private addressFor(mac: string): string | undefined {
    const now = this.clock.now();
    // Leases that ran out free their address (and their entry, so the table stays the pool's size).
    for (const [m, l] of this.leases) if (l.expires <= now && m !== mac) this.leases.delete(m);
    const used = new Set([...this.leases].filter(([m]) => m !== mac).map(([, l]) => l.address));
    const mine = this.leases.get(mac);
    if (mine && !used.has(mine.address)) return mine.address;
    for (let n = toNum(this.o.pool.first); n <= toNum(this.o.pool.last); n++) if (!used.has(toIp(n))) return toIp(n);
    return undefined;
  }

  private reply(req: DhcpMessage, type: 'OFFER' | 'ACK' | 'NAK', address?: string): void {
    const seconds = this.o.leaseSeconds ?? 3600;
    const options = new Map<number, Buffer>([[Opt.SERVER_ID, opt.fromIps([this.o.serverIp])]]);
    if (type !== 'NAK') {
      options.set(Opt.LEASE_TIME, opt.fromU32(seconds));
      const mask = this.o.prefix === 0 ? 0 : (0xffffffff << (32 - this.o.prefix)) >>> 0;
      options.set(Opt.SUBNET_MASK, opt.fromU32(mask));
      if (this.o.router) options.set(Opt.ROUTER, opt.fromIps([this.o.router]));
      if (this.o.dns?.length) options.set(Opt.DNS, opt.fromIps(this.o.dns));
    }
    const msg: DhcpMessage = { op: 2, xid: req.xid, chaddr: req.chaddr, type, broadcast: req.broadcast ?? false, ...(address ? { yiaddr: address } : {}), ...(req.ciaddr ? { ciaddr: req.ciaddr } : {}), siaddr: this.o.serverIp, options };
    // A client with an address (renewing) gets a unicast reply; others the broadcast.
    this.o.transport.send(encodeDhcp(msg), type !== 'NAK' && req.ciaddr ? req.ciaddr : undefined);
  }

  private receive(b: Buffer): void {
    const m = decodeDhcp(b);
    if (!m || m.op !== 1) return;
    const mac = m.chaddr;
    const server = opt.ip(m.options.get(Opt.SERVER_ID));
    if (m.type === 'DISCOVER') {
      const address = this.addressFor(mac);
      if (address) this.reply(m, 'OFFER', address);
    } else if (m.type === 'REQUEST') {
      // Selecting another server's offer: not for us.
      if (server && server !== this.o.serverIp) return;
      const wanted = opt.ip(m.options.get(Opt.REQUESTED_IP)) ?? m.ciaddr;
      const address = this.addressFor(mac);
      if (!wanted || wanted !== address) return this.reply(m, 'NAK');
      const fresh = this.leases.get(mac)?.address !== address;
      this.leases.set(mac, { address, expires: this.clock.now() + (this.o.leaseSeconds ?? 3600) * 1000 });
      // Said once per new lease, not at every renewal (the console would get one every half hour).
      if (fresh) this.o.onLease?.(mac, address);
      this.reply(m, 'ACK', address);
    } else if (m.type === 'RELEASE') {
      if (this.leases.get(mac)?.address === m.ciaddr) this.leases.delete(mac);
    }
  }
}
