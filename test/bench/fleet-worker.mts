/**
 * One process of the fleet scale bench: runs the real FleetAgent for a slice of the
 * simulated boards (SimBoard: updates, reboots and U-Boot's fallback simulated), and prints
 * its message counts as one JSON line when told to stop (SIGTERM).
 */
import { readFileSync } from 'node:fs';
import { SimBoard, startSimAgent, type SimAgent } from '../helpers/fleet-sim.js';

interface WorkerSpec {
  url: string;
  ca: string;
  fleet: string;
  trusted: { id: string; pem: string }[];
  boards: { board: string; password: string; crashLoops: boolean }[];
  badBuild: string;
}

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as WorkerSpec;
const agents: SimAgent[] = [];
for (const b of spec.boards) {
  agents.push(startSimAgent({ url: spec.url, ca: Buffer.from(spec.ca), fleet: spec.fleet, board: new SimBoard(b.board, 'build-1', new Set(b.crashLoops ? [spec.badBuild] : []), 2000), groups: ['all'], trusted: spec.trusted, password: b.password }));
  // Connections come in steps, as boards do: not a thousand TLS handshakes in one tick.
  if (agents.length % 25 === 0) await new Promise((r) => setTimeout(r, 100));
}
process.stdout.write('started\n');
process.on('SIGTERM', () => {
  const counts = agents.map((a) => a.totals());
  const sum = (k: 'connects' | 'published' | 'received'): number => counts.reduce((n, c) => n + c[k], 0);
  process.stdout.write(`${JSON.stringify({ boards: agents.length, connects: sum('connects'), published: sum('published'), received: sum('received'), reboots: agents.reduce((n, a) => n + a.board.updates, 0) })}\n`);
  process.exit(0);
});
