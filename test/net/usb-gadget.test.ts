/**
 * USB gadget Ethernet without a USB port: the configfs set-up on a configfs tree in a
 * temporary directory, and the board's DHCP server for that link against the kit's DHCP
 * client on loopback (no QEMU model exists for a gadget; the board table says so).
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError, getBoard } from '../../src/index.js';
import { startGadgetNetwork } from '../../src/runtime/usb-gadget.js';
import { decodeDhcp, DhcpClient, DhcpServer, encodeDhcp, Opt, opt, setupUsbGadget, stableMac, type DhcpTransport, type Lease } from '../../src/net/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';


describe('USB gadget Ethernet (configfs tree in a temp dir)', () => {
  after(cleanupTemp);

  it('creates the gadget, an NCM function with stable MACs, links it into c.1 and binds the UDC', () => {
    const root = tempDir();
    mkdirSync(join(root, 'config/usb_gadget'), { recursive: true });
    mkdirSync(join(root, 'udc/fe980000.usb'), { recursive: true });
    const g = setupUsbGadget({ configfs: join(root, 'config'), udcDir: join(root, 'udc'), serial: '00000000abcdef01', product: 'NodeOS on Raspberry Pi Zero 2 W' });
    const read = (rel: string): string => readFileSync(join(g.dir, rel), 'utf8').trim();
    assert.equal(g.dir, join(root, 'config/usb_gadget/nodeos'));
    assert.deepEqual([read('idVendor'), read('idProduct'), read('bcdUSB')], ['0x1d6b', '0x0104', '0x0200']);
    assert.equal(read('strings/0x409/serialnumber'), '00000000abcdef01');
    assert.equal(read('strings/0x409/product'), 'NodeOS on Raspberry Pi Zero 2 W');
    assert.equal(read('configs/c.1/strings/0x409/configuration'), 'NCM');
    assert.equal(readlinkSync(join(g.dir, 'configs/c.1/ncm.usb0')), join(g.dir, 'functions/ncm.usb0'));
    assert.equal(read('functions/ncm.usb0/dev_addr'), g.devAddr);
    assert.equal(read('functions/ncm.usb0/host_addr'), g.hostAddr);
    assert.equal(read('UDC'), 'fe980000.usb');
    // Stable across boots, different ends, locally administered unicast.
    assert.equal(g.devAddr, stableMac('00000000abcdef01:dev'));
    assert.notEqual(g.devAddr, g.hostAddr);
    for (const mac of [g.devAddr, g.hostAddr]) assert.equal(parseInt(mac.slice(0, 2), 16) & 3, 2, mac);
  });

  it('EGADGET without a device-mode controller or without configfs', () => {
    const root = tempDir();
    mkdirSync(join(root, 'config/usb_gadget'), { recursive: true });
    mkdirSync(join(root, 'udc'), { recursive: true });
    const code = (e: unknown): boolean => e instanceof BspError && e.code === 'EGADGET';
    assert.throws(() => setupUsbGadget({ configfs: join(root, 'config'), udcDir: join(root, 'udc'), serial: '1', product: 'x' }), code);
    mkdirSync(join(root, 'udc/fe980000.usb'));
    assert.throws(() => setupUsbGadget({ configfs: join(root, 'nothing'), udcDir: join(root, 'udc'), serial: '1', product: 'x' }), code);
    assert.equal(existsSync(join(root, 'nothing')), false, 'nothing was created');
  });
});

describe('USB gadget Ethernet at boot (init, on a configfs tree in a temp dir)', () => {
  after(cleanupTemp);
  const profile = getBoard('rpi0-2w').profile;

  it('binds the gadget, puts the board at .1 on the cable, and gives the laptop .2 by DHCP', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'config/usb_gadget'), { recursive: true });
    mkdirSync(join(root, 'udc/3f980000.usb'), { recursive: true });
    const net = await hub(1);
    const logs: string[] = [];
    const ran: string[][] = [];
    let sawBroadcast = '';
    // The kernel names the interface once the UDC is bound: done here by the "kernel".
    const naming = setInterval(() => {
      const dir = join(root, 'config/usb_gadget/nodeos/functions/ncm.usb0');
      if (existsSync(join(root, 'config/usb_gadget/nodeos/UDC'))) writeFileSync(join(dir, 'ifname'), 'usb0\n');
    }, 20);
    const g = await startGadgetNetwork({
      profile,
      serial: '00000000abcdef01',
      log: (m) => logs.push(m),
      ip: (args) => void ran.push(args),
      configfs: join(root, 'config'),
      udcDir: join(root, 'udc'),
      transport: async (b) => ((sawBroadcast = b), net.server),
    });
    clearInterval(naming);
    assert.ok(g);
    assert.equal(sawBroadcast, '192.168.7.255', 'replies go to the link broadcast, so they leave on usb0');
    assert.deepEqual(ran, [['ip', 'addr', 'replace', '192.168.7.1/24', 'dev', 'usb0'], ['ip', 'link', 'set', 'usb0', 'up']]);
    assert.match(logs.join('\n'), /usb-gadget: usb0 192\.168\.7\.1\/24 \(NCM, board MAC [0-9a-f:]{17}\); a laptop on the USB cable gets 192\.168\.7\.2-192\.168\.7\.20 by DHCP/);
    assert.equal(readFileSync(join(root, 'config/usb_gadget/nodeos/strings/0x409/product'), 'utf8').trim(), 'NodeOS on Raspberry Pi Zero 2 W');
    // The laptop at the other end.
    const bound: Lease[] = [];
    const laptop = new DhcpClient({ mac: '02:00:00:00:00:0a', transport: net.clients[0]!, onBound: (l) => bound.push(l), onExpired: () => undefined });
    laptop.start();
    await until(() => bound.length === 1, 'the laptop bound');
    assert.deepEqual([bound[0]!.address, bound[0]!.prefix, bound[0]!.server], ['192.168.7.2', 24, '192.168.7.1']);
    laptop.stop();
    g.server.close();
  });

  it('a board whose OTG port is in host mode says so once and goes on', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'udc'), { recursive: true });
    const logs: string[] = [];
    const g = await startGadgetNetwork({ profile, serial: '1', log: (m) => logs.push(m), ip: () => undefined, configfs: join(root, 'config'), udcDir: join(root, 'udc'), waitMs: 200 });
    assert.equal(g, undefined);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /no USB device controller .* host mode/);
    // A board without usbGadget does nothing at all.
    assert.equal(await startGadgetNetwork({ profile: getBoard('rpi3b').profile, serial: '1', log: (m) => logs.push(m), ip: () => 'not called' }), undefined);
    assert.equal(logs.length, 1);
  });
});

describe("the board's DHCP server for the gadget link, against the kit's client", () => {
  it('hands each laptop an address from the pool, frees it on RELEASE, offers nothing when the pool is used up', async () => {
    const net = await hub(3);
    const leases: [string, string][] = [];
    const dhcpd = new DhcpServer({ transport: net.server, serverIp: '192.168.7.1', prefix: 24, pool: { first: '192.168.7.2', last: '192.168.7.3' }, leaseSeconds: 600, onLease: (m, a) => leases.push([m, a]) });
    const bound: Lease[][] = [[], [], []];
    const clients = ['02:00:00:00:00:0a', '02:00:00:00:00:0b', '02:00:00:00:00:0c'].map(
      (mac, i) => new DhcpClient({ mac, transport: net.clients[i]!, onBound: (l) => bound[i]!.push(l), onExpired: () => undefined }),
    );
    clients[0]!.start();
    await until(() => clients[0]!.state === 'bound', 'the first lease');
    clients[1]!.start();
    await until(() => clients[1]!.state === 'bound', 'the second lease');
    clients[2]!.start();
    assert.deepEqual(leases, [['02:00:00:00:00:0a', '192.168.7.2'], ['02:00:00:00:00:0b', '192.168.7.3']]);
    assert.deepEqual([bound[0]![0]!.prefix, bound[0]![0]!.server, bound[0]![0]!.routers, bound[0]![0]!.leaseSeconds], [24, '192.168.7.1', [], 600]);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(clients[2]!.state, 'selecting', 'the pool is used up: no offer for a third laptop');
    clients[1]!.stop(true);
    await until(() => !dhcpd.leases.has('02:00:00:00:00:0b'), 'the RELEASE to free the address');
    clients[0]!.stop(false);
    clients[2]!.stop(false);
    dhcpd.close();
  });

  it('NAKs a request for an address that is not the client\'s', async () => {
    const net = await hub(1);
    const link = { server: net.server, client: net.clients[0]! };
    const dhcpd = new DhcpServer({ transport: link.server, serverIp: '192.168.7.1', prefix: 24, pool: { first: '192.168.7.2', last: '192.168.7.9' } });
    const replies: string[] = [];
    link.client.onMessage((b) => replies.push(decodeDhcp(b)?.type ?? '?'));
    link.client.send(encodeDhcp({ op: 1, xid: 7, chaddr: '02:00:00:00:00:0d', type: 'REQUEST', broadcast: true, options: new Map([[Opt.REQUESTED_IP, opt.fromIps(['10.9.9.9'])]]) }));
    await until(() => replies.length === 1, 'the answer');
    assert.deepEqual(replies, ['NAK']);
    assert.equal(dhcpd.leases.size, 0);
    dhcpd.close();
    link.client.close();
  });
});

describe("the gadget's DHCP server over time (a fake clock)", () => {
  it('an address whose lease ran out goes to the next laptop, and never to two at once; a renewal is not said again', async () => {
    const net = await hub(1);
    const clock = new FakeClock();
    const said: string[] = [];
    const dhcpd = new DhcpServer({ transport: net.server, serverIp: '192.168.7.1', prefix: 24, pool: { first: '192.168.7.2', last: '192.168.7.2' }, leaseSeconds: 600, clock, onLease: (m, a) => said.push(`${a} ${m}`) });
    const replies: { type?: string; yiaddr?: string }[] = [];
    net.clients[0]!.onMessage((b) => replies.push(decodeDhcp(b) ?? {}));
    const ask = async (mac: string, type: 'DISCOVER' | 'REQUEST', ip?: string): Promise<{ type?: string; yiaddr?: string }> => {
      const n = replies.length;
      const options = new Map(ip ? [[Opt.REQUESTED_IP, opt.fromIps([ip])]] : []);
      net.clients[0]!.send(encodeDhcp({ op: 1, xid: 9, chaddr: mac, type, broadcast: true, options }));
      await until(() => replies.length > n || type === 'DISCOVER', 'the answer', 2000).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
      return replies[n] ?? {};
    };
    const [a, b] = ['02:00:00:00:00:0a', '02:00:00:00:00:0b'];
    assert.equal((await ask(a, 'REQUEST', '192.168.7.2')).type, 'ACK');
    assert.equal((await ask(a, 'REQUEST', '192.168.7.2')).type, 'ACK', 'renewed');
    assert.deepEqual(said, ['192.168.7.2 02:00:00:00:00:0a'], 'a renewal is not a new lease');
    assert.deepEqual(await ask(b, 'DISCOVER'), {}, 'the one address is taken: no offer');
    clock.advance(601_000);
    assert.equal((await ask(b, 'DISCOVER')).yiaddr, '192.168.7.2', "a's lease ran out: its address is free");
    assert.equal((await ask(b, 'REQUEST', '192.168.7.2')).type, 'ACK');
    // a comes back with its old address, now b's: refused, not shared.
    assert.equal((await ask(a, 'REQUEST', '192.168.7.2')).type, 'NAK');
    assert.deepEqual(await ask(a, 'DISCOVER'), {});
    assert.deepEqual([...dhcpd.leases.keys()], [b], 'the ended lease left the table');
    dhcpd.close();
    net.clients[0]!.close();
  });
});

/** A server and clients on loopback: the server's sends reach every client (a broadcast domain), clients reach the server. */
async function hub(n: number): Promise<{ server: DhcpTransport; clients: DhcpTransport[] }> {
  const bind = async (): Promise<Socket> => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return s;
  };
  const srv = await bind();
  const cls = await Promise.all(Array.from({ length: n }, bind));
  const t = (s: Socket, to: () => number[]): DhcpTransport => {
    // As udpTransport: closing waits for the sends in flight (a RELEASE right before close).
    let pending = 0;
    let closing = false;
    return {
      send: (data) =>
        to().forEach((port) => {
          pending++;
          s.send(data, port, '127.0.0.1', () => {
            if (--pending === 0 && closing) s.close();
          });
        }),
      onMessage: (cb) => void s.on('message', (m) => cb(m)),
      close: () => {
        closing = true;
        if (pending === 0) s.close();
      },
    };
  };
  return { server: t(srv, () => cls.map((c) => c.address().port)), clients: cls.map((c) => t(c, () => [srv.address().port])) };
}
