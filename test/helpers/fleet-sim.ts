/**
 * Simulated boards for fleet tests and the scale bench: the real FleetAgent over a board
 * whose update, reboot and fallback are simulated (a crash-looping build comes back on the
 * old one, as U-Boot's boot counting makes a real board do), connected with mqtt.js.
 */
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import type { TrustedKey } from '../../src/update/index.js';
import { FleetAgent, type BoardState, type FleetSystem, type JobAction, type JobStore, type PendingJob } from '../../src/fleet/index.js';

export class MemoryJobStore implements JobStore {
  private readonly ids = new Set<string>();
  private p: PendingJob | undefined;
  seen(id: string): boolean {
    return this.ids.has(id);
  }
  remember(id: string): void {
    this.ids.add(id);
  }
  pending(): PendingJob | undefined {
    return this.p;
  }
  setPending(p: PendingJob | undefined): void {
    this.p = p;
  }
}

/** A board's system: builds install after a simulated download; `crashLoops` builds fall back. */
export class SimBoard implements FleetSystem {
  build: string;
  slot = 'A';
  confirmed = true;
  bootedAt = Date.now();
  bootId = randomUUID();
  installed: string | undefined;
  updates = 0;
  /** Called when the board restarts (the harness brings a new agent up). */
  onReboot: () => void = () => undefined;

  constructor(
    readonly id: string,
    build: string,
    readonly crashLoops: ReadonlySet<string> = new Set(),
    readonly downloadMs = 200,
  ) {
    this.build = build;
  }

  async state(): Promise<Omit<BoardState, 'groups' | 'lastJob' | 'at'>> {
    return { board: this.id, profile: 'qemu-virt', build: this.build, slot: this.slot, confirmed: this.confirmed, apps: [{ name: 'sensor', state: 'running' }], addresses: ['10.0.2.15'], clockSynced: true, uptimeSeconds: Math.floor((Date.now() - this.bootedAt) / 1000), bootId: this.bootId, memAvailableMiB: 700 };
  }

  async update(a: Extract<JobAction, { type: 'update' }>, onPercent: (p: number) => void): Promise<void> {
    this.updates++;
    for (let p = 0; p <= 100; p += 25) {
      await new Promise((r) => setTimeout(r, this.downloadMs / 5));
      onPercent(p);
    }
    this.installed = a.version;
  }

  reboot(): void {
    setTimeout(() => {
      if (this.installed && !this.crashLoops.has(this.installed)) {
        this.build = this.installed;
        this.slot = this.slot === 'A' ? 'B' : 'A';
      }
      // A crash-looping build: U-Boot counted its tries and booted the old slot again.
      this.installed = undefined;
      this.confirmed = true;
      this.bootedAt = Date.now();
      this.bootId = randomUUID();
      this.onReboot();
    }, 50);
  }

  async restartApp(name: string): Promise<void> {
    if (name !== 'sensor') throw new Error(`no app ${name}`);
  }
}

/** A board on the broker: a SimBoard, its store, and the agent that is restarted with each reboot. */
export interface SimAgent {
  board: SimBoard;
  store: MemoryJobStore;
  agent(): FleetAgent;
  logs: string[];
  /** Connections made and messages published and received, over all the agents (one per boot). */
  totals: () => { connects: number; published: number; received: number };
  stop: () => Promise<void>;
}

export function startSimAgent(o: { url: string; ca: Buffer; fleet: string; board: SimBoard; groups: string[]; trusted: TrustedKey[]; password: string; stateEveryMs?: number }): SimAgent {
  const store = new MemoryJobStore();
  const logs: string[] = [];
  let agent: FleetAgent;
  const make = (): FleetAgent =>
    new FleetAgent({
      fleet: o.fleet,
      board: o.board.id,
      groups: o.groups,
      trusted: o.trusted,
      system: o.board,
      store,
      log: (l) => logs.push(l),
      syncedNow: () => Date.now(),
      ...(o.stateEveryMs ? { stateEveryMs: o.stateEveryMs } : {}),
      backoff: { baseMs: 200, capMs: 2000 },
      connect: (will) => mqtt.connect(o.url, { ca: o.ca, username: o.board.id, password: o.password, clientId: `${o.fleet}-${o.board.id}`, will, reconnectPeriod: 0, protocolVersion: 5, connectTimeout: 10_000 }),
    });
  agent = make();
  const past = { connects: 0, published: 0, received: 0 };
  o.board.onReboot = () => {
    // The old system's agent goes (saying offline), the new system's comes up.
    void agent.stop().then(() => {
      for (const k of ['connects', 'published', 'received'] as const) past[k] += agent.counts[k];
      agent = make();
      agent.start();
    });
  };
  agent.start();
  const totals = (): { connects: number; published: number; received: number } => ({ connects: past.connects + agent.counts.connects, published: past.published + agent.counts.published, received: past.received + agent.counts.received });
  return { board: o.board, store, agent: () => agent, logs, totals, stop: () => agent.stop() };
}
