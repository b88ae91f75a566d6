/**
 * A lock between processes on this machine: a directory made with mkdir (atomic), holding
 * the owner's pid. A lock whose owner is gone is taken over; others wait for it.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Run `fn` holding the lock at `path` (a directory); wait while another live process holds it. */
export async function withDirLock<T>(path: string, fn: () => Promise<T>, pollMs = 1000): Promise<T> {
  for (;;) {
    try {
      mkdirSync(path);
      writeFileSync(join(path, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = NaN;
      let age = 0;
      try {
        age = Date.now() - statSync(path).mtimeMs;
        owner = Number(readFileSync(join(path, 'pid'), 'utf8'));
      } catch {
        /* being made or removed right now */
      }
      // A dead owner's lock is stale; so is one left without a pid (its owner died between
      // mkdir and writing it) for over a minute.
      const stale = Number.isInteger(owner) && owner > 0 ? !alive(owner) : age > 60_000;
      if (stale) rmSync(path, { recursive: true, force: true });
      else await sleep(pollMs);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}
