/**
 * A DHCP client (RFC 2131): INIT -> SELECTING -> REQUESTING -> BOUND -> RENEWING ->
 * REBINDING, with retransmission backoff, NAK handling, lease expiry and RELEASE. It only
 * speaks the protocol: sending goes through a transport, applying a lease (address, routes,
 * resolv.conf) through callbacks, and time through a clock, so tests drive every timer.
 */
import { createSocket, type Socket } from 'node:dgram';
import { decodeDhcp, DhcpType, encodeDhcp, leaseFrom, Opt, opt, type DhcpMessage, type Lease } from './dhcp-packet.js';

/** How DHCP messages leave and arrive. */
export interface DhcpTransport {
  /** Send to the servers (broadcast), or to one server (unicast) when `to` is given. */
  send(data: Buffer, to?: string): void;
  onMessage(cb: (data: Buffer) => void): void;
  close(): void;
}

/** Time, replaceable in tests. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The longest delay Node's setTimeout keeps (2^31 - 1 ms, 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 0x7fffffff;

/**
 * Node's timers, for delays of any length: one past MAX_TIMER_MS (a 30-day DHCP lease, its T1
 * and T2) is waited out in steps, so it fires when it should instead of at once.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const h: { t?: NodeJS.Timeout } = {};
    const wait = (left: number): void => {
      const step = Math.min(Math.max(left, 0), MAX_TIMER_MS);
      h.t = setTimeout(() => (left > step ? wait(left - step) : fn()), step);
      h.t.unref?.();
    };
    wait(Number.isFinite(ms) ? ms : MAX_TIMER_MS);
    return h;
  },
  clearTimeout: (h) => clearTimeout((h as { t?: NodeJS.Timeout } | undefined)?.t),
};

export type DhcpState = 'init' | 'selecting' | 'requesting' | 'bound' | 'renewing' | 'rebinding' | 'rebooting' | 'stopped';

/** What the client reports; each is said once per change, never in a loop. */
export type DhcpEvent =
  | { type: 'discovering' }
  | { type: 'no-answer'; attempts: number }
  | { type: 'bound'; lease: Lease; renewed: boolean }
  | { type: 'nak'; server?: string; message?: string }
  | { type: 'expired'; lease: Lease }
  | { type: 'released'; lease: Lease };

/** Options of {@link DhcpClient}. */
export interface DhcpClientOptions {
  /** The interface's MAC address, `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  transport: DhcpTransport;
  /** Called with a new or renewed lease: configure the address, routes and resolver. */
  onBound: (lease: Lease, renewed: boolean) => void;
  /** Called when a lease ends (expiry, NAK while bound): remove what onBound set. */
  onExpired: (lease: Lease) => void;
  onEvent?: (e: DhcpEvent) => void;
  /** Host name to send (option 12). */
  hostname?: string;
  clock?: Clock;
  /** [0, 1) random numbers for the transaction id and backoff jitter. Default Math.random. */
  random?: () => number;
  /** Attempts without an answer before a "no-answer" event. Default 3. */
  quietAttempts?: number;
  /**
   * A throw while handling a datagram or a timer (a callback, a bug, a packet nobody
   * foresaw): reported here, and the client starts over from INIT after a backoff (1 s
   * doubling to a minute). Without it the throw goes on to the caller.
   */
  onFault?: (err: unknown) => void;
}

const PARAMS = [Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS, Opt.HOSTNAME, Opt.DOMAIN, Opt.BROADCAST, Opt.NTP, Opt.LEASE_TIME, Opt.T1, Opt.T2];

/** RFC 2131 4.1: 4 s, doubling up to 64 s, each +-1 s. */
export const backoffMs = (attempt: number, random: () => number): number => Math.min(4000 * 2 ** attempt, 64000) + Math.round((random() * 2 - 1) * 1000);

/** RFC 2131 4.4.5: the wait before a RENEWING/REBINDING retransmission with `leftMs` to go; none under 60 s. */
export function retransmitDelayMs(leftMs: number): number | undefined {
  if (leftMs <= 60000) return undefined;
  return Math.max(60000, leftMs / 2);
}

export class DhcpClient {
  state: DhcpState = 'init';
  lease: Lease | undefined;
  private xid = 0;
  private timer: unknown;
  private leaseTimers: unknown[] = [];
  private attempts = 0;
  private offer: DhcpMessage | undefined;
  private boundAt = 0;
  private saidNoAnswer = false;
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(private readonly o: DhcpClientOptions) {
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
    o.transport.onMessage((b) => this.guarded(() => this.receive(b)));
  }

  private faults = 0;

  /** Run `fn`; a throw goes to onFault and the client starts over (see DhcpClientOptions.onFault). */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!this.o.onFault) throw err;
      this.o.onFault(err);
      if (this.state === 'stopped') return;
      this.clearAll();
      this.state = 'init';
      const delay = Math.min(60_000, 1000 * 2 ** this.faults++);
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.guarded(() => this.init());
      }, delay);
    }
  }

  /** Start from INIT (DISCOVER). */
  start(): void {
    this.init();
  }

  /**
   * The link came back (cable plugged in again, maybe into another network). With a lease,
   * RFC 2131 3.2's INIT-REBOOT: broadcast a REQUEST for the same address; an ACK keeps it, a
   * NAK starts over; no answer keeps the lease to its timers. Without one: DISCOVER now,
   * not at the end of the current backoff.
   */
  linkUp(): void {
    if (this.state === 'stopped') return;
    if (!this.lease) {
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.init();
      return;
    }
    const l = this.lease;
    const before = this.state;
    this.state = 'rebooting';
    this.newXid();
    const ask = (attempt: number): void => {
      this.send('REQUEST', { options: new Map([[Opt.REQUESTED_IP, opt.fromIps([l.address])]]) });
      if (attempt < 2) this.schedule(backoffMs(attempt, this.random), () => ask(attempt + 1));
      else this.schedule(backoffMs(attempt, this.random), () => (this.state = before === 'rebooting' ? 'bound' : before));
    };
    ask(0);
  }

  /** Stop: RELEASE a held lease to its server (by default) and stop every timer. */
  stop(release = true): void {
    this.clearAll();
    if (release && this.lease && (this.state === 'bound' || this.state === 'renewing' || this.state === 'rebinding' || this.state === 'rebooting')) {
      const l = this.lease;
      this.send('RELEASE', { ciaddr: l.address, options: new Map([[Opt.SERVER_ID, opt.fromIps([l.server])]]) }, l.server);
      this.o.onEvent?.({ type: 'released', lease: l });
    }
    this.state = 'stopped';
    this.o.transport.close();
  }

  private clearAll(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const t of this.leaseTimers) this.clock.clearTimeout(t);
    this.leaseTimers = [];
  }

  private newXid(): void {
    this.xid = Math.floor(this.random() * 0x100000000) >>> 0;
  }

  private send(type: keyof typeof DhcpType, fields: Partial<DhcpMessage>, to?: string): void {
    const options = new Map(fields.options ?? []);
    options.set(Opt.CLIENT_ID, Buffer.concat([Buffer.from([1]), Buffer.from(this.o.mac.split(':').map((h) => parseInt(h, 16)))]));
    if (type !== 'RELEASE' && type !== 'DECLINE') {
      options.set(Opt.PARAMS, Buffer.from(PARAMS));
      options.set(Opt.MAX_SIZE, Buffer.from([0x05, 0xdc])); // 1500
      if (this.o.hostname) options.set(Opt.HOSTNAME, Buffer.from(this.o.hostname));
    }
    const msg: DhcpMessage = { op: 1, xid: this.xid, chaddr: this.o.mac, type, options, ...(fields.ciaddr ? { ciaddr: fields.ciaddr } : {}), broadcast: !fields.ciaddr };
    this.o.transport.send(encodeDhcp(msg), to);
  }

  private schedule(ms: number, fn: () => void): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.guarded(fn);
    }, ms);
  }

  private init(): void {
    this.state = 'init';
    this.attempts = 0;
    this.saidNoAnswer = false;
    this.o.onEvent?.({ type: 'discovering' });
    this.discover();
  }

  private discover(): void {
    this.state = 'selecting';
    this.newXid();
    this.offer = undefined;
    this.send('DISCOVER', {});
    const quiet = this.o.quietAttempts ?? 3;
    this.attempts++;
    if (this.attempts === quiet && !this.saidNoAnswer) {
      this.saidNoAnswer = true;
      this.o.onEvent?.({ type: 'no-answer', attempts: this.attempts });
    }
    // Keep trying for ever (a server may come back), at most every 64 s.
    this.schedule(backoffMs(this.attempts - 1, this.random), () => this.discover());
  }

  private request(offer: DhcpMessage, attempt = 0): void {
    this.state = 'requesting';
    const server = opt.ip(offer.options.get(Opt.SERVER_ID));
    const options = new Map<number, Buffer>([[Opt.REQUESTED_IP, opt.fromIps([offer.yiaddr!])]]);
    if (server) options.set(Opt.SERVER_ID, opt.fromIps([server]));
    this.send('REQUEST', { options });
    if (attempt >= 3) this.schedule(backoffMs(attempt, this.random), () => this.init());
    else this.schedule(backoffMs(attempt, this.random), () => this.request(offer, attempt + 1));
  }

  /**
   * RENEWING (unicast to the server) or REBINDING (broadcast): RFC 2131 4.4.5's retransmission,
   * after half the time left until T2 (or the lease's end), but never sooner than 60 s; with
   * under 60 s left none is sent, and T2's (or expiry's) own timer takes over.
   */
  private extend(kind: 'renewing' | 'rebinding'): void {
    const l = this.lease!;
    this.state = kind;
    this.newXid();
    const sendOnce = (): void => {
      this.send('REQUEST', { ciaddr: l.address }, kind === 'renewing' ? l.server : undefined);
      const until = this.boundAt + (kind === 'renewing' ? l.t2 : l.leaseSeconds) * 1000;
      const wait = retransmitDelayMs(until - this.clock.now());
      if (wait !== undefined) this.schedule(wait, sendOnce);
    };
    sendOnce();
  }

  private bind(lease: Lease, renewed: boolean): void {
    this.clearAll();
    this.lease = lease;
    this.state = 'bound';
    this.boundAt = this.clock.now();
    this.o.onBound(lease, renewed);
    this.o.onEvent?.({ type: 'bound', lease, renewed });
    if (lease.leaseSeconds === 0xffffffff) return; // infinite
    this.faults = 0;
    const at = (s: number, fn: () => void): void => void this.leaseTimers.push(this.clock.setTimeout(() => this.guarded(fn), s * 1000));
    at(lease.t1, () => this.extend('renewing'));
    at(lease.t2, () => this.extend('rebinding'));
    at(lease.leaseSeconds, () => this.expire());
  }

  private expire(): void {
    const l = this.lease;
    this.clearAll();
    this.lease = undefined;
    if (l) {
      this.o.onExpired(l);
      this.o.onEvent?.({ type: 'expired', lease: l });
    }
    this.init();
  }

  private receive(b: Buffer): void {
    const m = decodeDhcp(b);
    if (!m || m.op !== 2 || m.xid !== this.xid || m.chaddr !== this.o.mac.toLowerCase()) return;
    if (this.state === 'selecting' && m.type === 'OFFER' && m.yiaddr && !this.offer) {
      this.offer = m;
      this.request(m);
      return;
    }
    const waiting = this.state === 'requesting' || this.state === 'renewing' || this.state === 'rebinding' || this.state === 'rebooting';
    if (!waiting) return;
    if (m.type === 'ACK') {
      const lease = leaseFrom(m, this.lease?.server);
      if (lease) this.bind(lease, this.state !== 'requesting');
    } else if (m.type === 'NAK') {
      const server = opt.ip(m.options.get(Opt.SERVER_ID));
      const message = opt.text(m.options.get(Opt.MESSAGE));
      this.o.onEvent?.({ type: 'nak', ...(server ? { server } : {}), ...(message ? { message } : {}) });
      const l = this.lease;
      this.clearAll();
      this.lease = undefined;
      if (l) this.o.onExpired(l);
      // RFC 2131 3.1: restart; wait a moment so a confused server is not flooded.
      this.state = 'init';
      this.schedule(1000, () => this.init());
    }
  }
}

/** A UDP transport: bound to `local`, broadcasting to `servers`; on the board 0.0.0.0:68 -> 255.255.255.255:67. */
export async function udpTransport(o: { local?: { address: string; port: number }; servers?: { address: string; port: number } } = {}): Promise<DhcpTransport> {
  const local = o.local ?? { address: '0.0.0.0', port: 68 };
  const servers = o.servers ?? { address: '255.255.255.255', port: 67 };
  const sock: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  const listeners: ((b: Buffer) => void)[] = [];
  sock.on('message', (b) => listeners.forEach((l) => l(b)));
  sock.on('error', () => undefined); // a send to an unreachable network is retried by the client
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(local.port, local.address, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  // DHCP lives on broadcasts (255.255.255.255 for a client, the link's broadcast for the
  // gadget's server, whatever its prefix); SO_BROADCAST changes nothing for unicast sends.
  sock.setBroadcast(true);
  // Closing waits for sends in flight (a RELEASE sent just before close must leave).
  let pending = 0;
  let closing = false;
  const close = (): void => {
    try {
      sock.close();
    } catch {
      /* already closed */
    }
  };
  return {
    send: (data, to) => {
      pending++;
      sock.send(data, servers.port, to ?? servers.address, () => {
        pending--;
        if (closing && pending === 0) close();
      });
    },
    onMessage: (cb) => void listeners.push(cb),
    close: () => {
      closing = true;
      if (pending === 0) close();
    },
  };
}
