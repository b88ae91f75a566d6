/**
 * The board's mDNS responder as init starts it (src/runtime/mdns.ts: the real multicast-dns
 * socket on 5353, probing for the name first), run by the interop test inside a network
 * namespace. Prints `{ type: 'ready', name }` once it answers, its log lines as
 * `{ type: 'log' }`; stdin takes `stop`.
 */
import { createInterface } from 'node:readline';
import { startMdns } from '../../src/runtime/mdns.js';

const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const r = await startMdns({ hostname: process.argv[2]!, log: (msg) => say({ type: 'log', msg }), onFault: (err) => say({ fault: String(err) }) });
say({ type: 'ready', name: r.name });
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'stop') {
    await r.stop();
    process.exit(0);
  }
}
