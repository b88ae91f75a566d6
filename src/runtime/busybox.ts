/** The board's busybox, for what Node cannot do itself (addresses and routes, the clock, mounts). */
import { spawnSync } from 'node:child_process';

export const BUSYBOX = '/bin/busybox';

/** Run a busybox applet quietly; its error text (or exit status) when it fails, undefined when it worked. */
export function busybox(args: string[]): string | undefined {
  const r = spawnSync(BUSYBOX, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return r.status === 0 ? undefined : r.stderr?.toString().trim() || `exit ${r.status}`;
}

/** Poll `get` until it gives a value or `ms` have passed (devices that appear late: interfaces, UDCs). */
export async function waitFor<T>(get: () => T | undefined, ms: number, everyMs = 100): Promise<T | undefined> {
  const end = Date.now() + ms;
  let v = get();
  while (v === undefined && Date.now() < end) {
    await new Promise((r) => setTimeout(r, everyMs).unref());
    v = get();
  }
  return v;
}

/** The end of every shutdown: sync, unmount what NodeOS mounted from the card, then reboot or power off. */
export function syncUnmountAnd(how: 'reboot' | 'poweroff'): void {
  spawnSync(BUSYBOX, ['sync']);
  for (const m of ['/home', '/boot']) spawnSync(BUSYBOX, ['umount', m], { stdio: 'ignore' });
  spawnSync(BUSYBOX, [how, '-f']);
}

/** Run `fn` with `mount` (read-only so a power cut cannot damage it) remounted read-write, synced and read-only again after. */
export function withWritableMount<T>(mount: string, fn: () => T): T {
  spawnSync(BUSYBOX, ['mount', '-o', 'remount,rw', mount]);
  try {
    return fn();
  } finally {
    spawnSync(BUSYBOX, ['sync']);
    spawnSync(BUSYBOX, ['mount', '-o', 'remount,ro', mount]);
  }
}

/**
 * Load kernel modules in order with one shell (a spawn per module, each a fork of the calling
 * Node process, took seconds under QEMU). "File exists" means already loaded or built in: not a
 * failure. Returns "name (insmod's message)" for each module that did not load.
 */
export function insmodAll(modules: { name: string; path: string }[], shell: string[] = [BUSYBOX, 'sh'], env?: NodeJS.ProcessEnv): string[] {
  if (!modules.length) return [];
  const script = 'for m; do out=$(insmod "$m" 2>&1) || case "$out" in *[Ee]xists*) ;; *) printf "%s\\t%s\\n" "$m" "$out" ;; esac; done';
  const r = spawnSync(shell[0]!, [...shell.slice(1), '-c', script, 'insmod', ...modules.map((m) => m.path)], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  if (r.error || r.status !== 0) return [`all (${r.error?.message ?? (r.stderr?.toString().trim() || `exit ${r.status}`)})`];
  const names = new Map(modules.map((m) => [m.path, m.name]));
  const failed: string[] = [];
  for (const line of r.stdout.toString().split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0 && names.has(line.slice(0, tab))) failed.push(`${names.get(line.slice(0, tab))} (${line.slice(tab + 1).trim()})`);
  }
  return failed;
}
