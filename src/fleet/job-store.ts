/**
 * The agent's memory on the users' partition: the ids of jobs it saw (so a retained or
 * replayed job runs once; the newest 1000 are kept) and the job a reboot interrupts. Files
 * are replaced atomically; one that is unreadable or damaged counts as empty, never as a
 * reason for init to stop. Device-safe: Node's built-ins only.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFileAtomically } from '../atomic-file.js';
import type { JobStore, PendingJob } from './agent.js';

/** How many job ids are remembered. */
export const SEEN_KEPT = 1000;

const readJson = (file: string): unknown => {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
};

const str = (v: unknown, max = 80): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** A pending job read back, or undefined when the file holds none (or something else). */
export function parsePending(v: unknown): PendingJob | undefined {
  const o = v as Partial<PendingJob> | undefined;
  if (!o || typeof o !== 'object' || !str(o.job) || (o.kind !== 'update' && o.kind !== 'reboot') || !str(o.fromBuild) || !str(o.bootId)) return undefined;
  if (o.kind === 'update' && !str(o.toBuild)) return undefined;
  return { job: o.job, kind: o.kind, fromBuild: o.fromBuild, bootId: o.bootId, ...(str(o.rollout) ? { rollout: o.rollout } : {}), ...(str(o.toBuild) ? { toBuild: o.toBuild } : {}) };
}

export class FileJobStore implements JobStore {
  private readonly seenFile: string;
  private readonly pendingFile: string;
  private readonly ids: string[];
  private readonly set: Set<string>;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.seenFile = join(dir, 'jobs-seen.json');
    this.pendingFile = join(dir, 'job-pending.json');
    const v = readJson(this.seenFile);
    this.ids = Array.isArray(v) ? v.filter((x): x is string => str(x, 100)).slice(-SEEN_KEPT) : [];
    this.set = new Set(this.ids);
  }

  seen(id: string): boolean {
    return this.set.has(id);
  }

  remember(id: string): void {
    if (this.set.has(id)) return;
    this.ids.push(id);
    this.set.add(id);
    while (this.ids.length > SEEN_KEPT) this.set.delete(this.ids.shift()!);
    replaceFileAtomically(this.seenFile, Buffer.from(JSON.stringify(this.ids)), 0o600);
  }

  pending(): PendingJob | undefined {
    return parsePending(readJson(this.pendingFile));
  }

  setPending(p: PendingJob | undefined): void {
    replaceFileAtomically(this.pendingFile, Buffer.from(p ? JSON.stringify(p) : 'null'), 0o600);
  }
}
