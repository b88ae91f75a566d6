/**
 * Init survives its services: the supervisor (fake timers), the last resort in a real Node
 * process whose socket handler throws, and each network service inside init made to throw
 * from its handler (mDNS responder, DHCP client, the gadget's DHCP server) and going on.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { DhcpClient, DhcpServer, decodeDhcp, encodeDhcp, Opt, opt, udpTransport, type DhcpTransport } from '../../src/net/index.js';
import { startMdns } from '../../src/runtime/mdns.js';
import { lastResort, restartDelayMs, supervise } from '../../src/runtime/supervise.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { freeUdpPort } from '../helpers/udp.js';
import { until } from '../helpers/until.js';

/** Timers the test fires by hand. */
function manualTimers(): { set: (fn: () => void, ms: number) => unknown; clear: (h: unknown) => void; fire: () => number[] } {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let id = 0;
  return {
    set: (fn, ms) => (pending.set(++id, { fn, ms }), id),
    clear: (h) => void pending.delete(h as number),
    fire: () => {
      const due = [...pending];
      pending.clear();
      for (const [, t] of due) t.fn();
      return due.map(([, t]) => t.ms);
    },
  };
}

describe('init survives its services', () => {
  it('a faulting service is stopped, said once per fault, and started again with backoff; a replaced instance cannot fault the new one', () => {
    const logs: string[] = [];
    const t = manualTimers();
    let clock = 0;
    const instances: { id: number; stopped: boolean; fault: (e: unknown) => void }[] = [];
    const s = supervise(
      'mdns',
      (fault) => {
        const i = { id: instances.length + 1, stopped: false, fault, stop: () => void (i.stopped = true) };
        instances.push(i);
        return i;
      },
      { log: (m) => logs.push(m), now: () => clock, setTimer: t.set, clearTimer: t.clear },
    );
    assert.equal(s.current()?.id, 1);
    instances[0]!.fault(new Error('boom\n\x1b[2J'));
    assert.equal(instances[0]!.stopped, true);
    assert.equal(s.current(), undefined);
    instances[0]!.fault(new Error('again, from the stopped one'));
    assert.deepEqual(t.fire(), [1000]);
    assert.equal(s.current()?.id, 2);
    instances[1]!.fault(new Error('boom\n\x1b[2J'));
    assert.deepEqual(t.fire(), [2000], 'doubling');
    instances[2]!.fault(new Error('other'));
    assert.deepEqual(t.fire(), [4000]);
    assert.deepEqual(logs, ['mdns: failed (boom\\n\\x1b[2J); starting it again in 1 s', 'mdns: failed (other); starting it again in 4 s']);
    // A minute without faults: back to 1 s.
    clock += 61_000;
    instances[3]!.fault(new Error('other'));
    assert.deepEqual(t.fire(), [1000]);
    assert.equal(s.starts(), 5);
    s.stop();
    assert.equal(instances[4]!.stopped, true);
    assert.deepEqual([1, 2, 3, 7, 20].map(restartDelayMs), [1000, 2000, 4000, 60_000, 60_000]);
  });

  it('a service that throws or rejects while starting is started again too', async () => {
    const t = manualTimers();
    let n = 0;
    const logs: string[] = [];
    const s = supervise(
      'x',
      async () => {
        if (++n < 3) throw new Error('not yet');
        return { ok: true, stop: () => undefined };
      },
      { log: (m) => logs.push(m), setTimer: t.set, clearTimer: t.clear },
    );
    await new Promise((r) => setImmediate(r));
    t.fire();
    await new Promise((r) => setImmediate(r));
    t.fire();
    await new Promise((r) => setImmediate(r));
    assert.equal(s.current()?.ok, true);
    assert.deepEqual(logs, ['x: failed (not yet); starting it again in 1 s']);
  });

  it('the last resort says an escaped exception or rejection once and keeps the process', () => {
    const logs: string[] = [];
    const proc = new EventEmitter();
    lastResort((m) => logs.push(m), proc as never);
    proc.emit('uncaughtException', new Error('ERR_SOCKET_BAD_PORT'));
    proc.emit('uncaughtException', new Error('ERR_SOCKET_BAD_PORT'));
    proc.emit('unhandledRejection', new Error('later'));
    assert.deepEqual(logs, ['init: an exception caught and ignored (ERR_SOCKET_BAD_PORT); init goes on', 'init: a rejection caught and ignored (later); init goes on']);
  });

  it('a real Node process with the last resort: a socket handler that throws on every datagram, and it still answers', async function () {
    this.timeout(20000);
    const script = `
      import { createSocket } from 'node:dgram';
      import { lastResort } from ${JSON.stringify(new URL('../../src/runtime/supervise.ts', import.meta.url).pathname)};
      lastResort((m) => console.log(m));
      const s = createSocket('udp4');
      s.on('message', (m, r) => { if (m.toString() === 'die') throw new Error('handler threw'); s.send('alive', r.port, r.address); });
      s.bind(0, '127.0.0.1', () => console.log('port ' + s.address().port));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(() => /port \d+/.test(out), 'the child listening', 15000);
      const port = Number(/port (\d+)/.exec(out)![1]);
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      const answers: string[] = [];
      sock.on('message', (m) => answers.push(m.toString()));
      for (const m of ['die', 'die', 'ping']) sock.send(m, port, '127.0.0.1');
      await until(() => answers.length > 0, 'an answer after two throws', 5000);
      sock.close();
      assert.deepEqual(answers, ['alive']);
      assert.equal(child.exitCode, null, 'still running');
      assert.equal(out.match(/init: an exception caught and ignored \(handler threw\); init goes on/g)?.length, 1);
    } finally {
      child.kill();
    }
  });

  it('mDNS: a responder whose answer throws is replaced by a new one, which answers', async function () {
    this.timeout(20000);
    const port = await freeUdpPort();
    let throwOnce = true;
    const addresses = (): { v4: string[]; v6: string[] } => {
      if (throwOnce) {
        throwOnce = false;
        throw new Error('no addresses right now');
      }
      return { v4: ['10.0.2.15'], v6: [] };
    };
    const logs: string[] = [];
    const s = supervise('mdns', (fault) => startMdns({ hostname: 'kitchen', addresses, probe: false, log: (m) => logs.push(m), onFault: fault, socket: { multicast: false, port, bind: '127.0.0.1', ip: '127.0.0.1', reuseAddr: true } }), { log: (m) => logs.push(m) });
    try {
      await until(() => s.current() !== undefined, 'started');
      const ask = (): Promise<string> =>
        new Promise((resolve) => {
          const p = spawn('dig', ['@127.0.0.1', '-p', String(port), 'kitchen.local', 'A', '+short', '+tries=1', '+time=1']);
          let o = '';
          p.stdout.on('data', (d: Buffer) => (o += d.toString()));
          p.on('close', () => resolve(o.trim()));
        });
      assert.doesNotMatch(await ask(), /10\.0\.2\.15/, 'the first query made it throw');
      await until(() => s.starts() === 2 && s.current() !== undefined, 'restarted', 10000);
      assert.equal(await ask(), '10.0.2.15');
      assert.deepEqual(logs, ['mdns: failed (no addresses right now); starting it again in 1 s']);
    } finally {
      s.stop();
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('DHCP client: a lease that cannot be applied (onBound throws) is reported, and the client starts over and binds', async () => {
    const clock = new FakeClock();
    const server = createSocket('udp4');
    server.on('message', (b, r) => {
      const m = decodeDhcp(b)!;
      const options = new Map([[Opt.SERVER_ID, opt.fromIps(['127.0.0.1'])], [Opt.LEASE_TIME, opt.fromU32(600)]]);
      server.send(encodeDhcp({ op: 2, xid: m.xid, chaddr: m.chaddr, type: m.type === 'DISCOVER' ? 'OFFER' : 'ACK', yiaddr: '10.0.2.15', options }), r.port, r.address);
    });
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    const transport = await udpTransport({ local: { address: '127.0.0.1', port: 0 }, servers: { address: '127.0.0.1', port: server.address().port } });
    const faults: string[] = [];
    let fail = true;
    const client = new DhcpClient({
      mac: '02:00:00:00:00:01',
      transport,
      clock,
      onBound: () => {
        if (fail) throw new Error('ip addr: cannot write');
      },
      onExpired: () => undefined,
      onFault: (e) => faults.push((e as Error).message),
    });
    try {
      client.start();
      await until(() => faults.length === 1, 'the fault');
      assert.equal(client.state, 'init');
      fail = false;
      clock.advance(1000);
      await until(() => client.state === 'bound', 'bound after starting over');
    } finally {
      client.stop(false);
      server.close();
    }
  });

  it("the gadget's DHCP server: a request that makes it throw is reported, and the next is served", async () => {
    const sent: Buffer[] = [];
    let deliver: (b: Buffer) => void = () => undefined;
    const transport: DhcpTransport = { send: (b) => void sent.push(b), onMessage: (cb) => void (deliver = cb), close: () => undefined };
    const faults: unknown[] = [];
    let fail = true;
    new DhcpServer({
      transport,
      serverIp: '192.168.7.1',
      prefix: 24,
      pool: { first: '192.168.7.2', last: '192.168.7.20' },
      onLease: () => {
        if (fail) throw new Error('log full');
      },
      onFault: (e) => faults.push(e),
    });
    const request = (): Buffer => encodeDhcp({ op: 1, xid: 9, chaddr: '02:00:00:00:00:09', type: 'REQUEST', broadcast: true, options: new Map([[Opt.REQUESTED_IP, opt.fromIps(['192.168.7.2'])]]) });
    deliver(request());
    assert.equal(faults.length, 1);
    fail = false;
    deliver(request());
    assert.equal(decodeDhcp(sent.at(-1)!)!.type, 'ACK');
  });
});
