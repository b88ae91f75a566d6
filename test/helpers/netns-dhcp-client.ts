/**
 * The board's DHCP client as init wires it (src/runtime/network.ts: the broadcast route, the
 * lease applied and taken off with `ip`), run inside a network namespace by the interop test
 * on `iface`. Events go to stdout as JSON lines (the client's events, and `{ type: 'state' }` on
 * each change of its state: renewing, rebinding...); stdin takes `linkup` (cable back:
 * INIT-REBOOT) and `stop` (RELEASE, then exit).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { applyLeaseCommands, broadcastRouteCommand, DhcpClient, expireLeaseCommands, udpTransport } from '../../src/net/index.js';

const iface = process.argv[2]!;
const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const run = (c: string[]): void => {
  const r = spawnSync(c[0]!, c.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) say({ error: `${c.join(' ')}: ${r.stderr.trim()}` });
};
run(['ip', 'link', 'set', iface, 'up']);
run(broadcastRouteCommand(iface));
const mac = readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim();
const transport = await udpTransport();
const client = new DhcpClient({
  mac,
  transport,
  hostname: 'nodeos-interop',
  onBound: (l, renewed) => {
    if (!renewed) applyLeaseCommands(iface, l).forEach(run);
  },
  onExpired: (l) => expireLeaseCommands(iface, l).forEach(run),
  onEvent: (e) => say(e),
  onFault: (err) => say({ fault: String(err) }),
});
// Every state change, as it happens (REBINDING may last only the server's answer time).
let state = client.state;
Object.defineProperty(client, 'state', {
  get: () => state,
  set: (s: typeof state) => {
    if (s !== state) say({ type: 'state', state: s });
    state = s;
  },
});
client.start();
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'linkup') client.linkUp();
  if (line === 'stop') {
    client.stop(true);
    setTimeout(() => process.exit(0), 500);
  }
}
