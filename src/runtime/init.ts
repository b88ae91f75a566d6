/**
 * NodeOS init: PID 1 inside the initramfs. Mounts what Node needs, loads the board's
 * kernel modules, then keeps a REPL running on the console; if the REPL exits (`.exit`,
 * a crash), it is started again, so the kernel never sees PID 1 die.
 *
 * Runs on the device under the target's Node.js; it only uses Node's built-ins and the
 * busybox that the image ships for what Node cannot do (mount, insmod).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

const BUSYBOX = '/bin/busybox';
const ETC = '/etc/nodeos';

/** The image's board profile and module list, written at build time. */
interface ImageInfo {
  board: { id: string; name: string };
  build: string;
  modules: { name: string; path: string }[];
}

function log(msg: string): void {
  process.stdout.write(`nodeos: ${msg}\n`);
}

/** Mount a filesystem; failures are reported, never fatal (the REPL must come up). */
function mount(type: string, target: string, options?: string): boolean {
  mkdirSync(target, { recursive: true });
  const args = ['mount', '-t', type, ...(options ? ['-o', options] : []), type, target];
  const r = spawnSync(BUSYBOX, args, { stdio: ['ignore', 'inherit', 'pipe'] });
  if (r.status !== 0) log(`cannot mount ${type} on ${target}: ${r.stderr?.toString().trim() || `exit ${r.status}`}`);
  return r.status === 0;
}

function loadModules(info: ImageInfo): void {
  const failed: string[] = [];
  for (const m of info.modules) {
    const r = spawnSync(BUSYBOX, ['insmod', m.path], { stdio: ['ignore', 'ignore', 'pipe'] });
    // "File exists" means it is already loaded (or built in): not a failure.
    if (r.status !== 0 && !/exists/i.test(r.stderr?.toString() ?? '')) failed.push(`${m.name} (${r.stderr?.toString().trim()})`);
  }
  if (failed.length) log(`modules that did not load: ${failed.join(', ')}`);
}

function startRepl(): void {
  const started = Date.now();
  const child = spawn(process.execPath, ['/usr/lib/nodeos/repl.js'], { stdio: 'inherit', env: process.env });
  child.on('exit', (code, signal) => {
    // A REPL that dies at once repeatedly is throttled instead of spinning.
    const delay = Date.now() - started < 1000 ? 1000 : 0;
    log(`REPL ended (${signal ?? `exit ${code}`}); starting a new one`);
    setTimeout(startRepl, delay);
  });
}

function main(): void {
  mount('proc', '/proc');
  mount('sysfs', '/sys');
  // Debian kernels do not auto-mount devtmpfs in an initramfs.
  mount('devtmpfs', '/dev');
  mount('tmpfs', '/tmp', 'mode=1777');
  mount('tmpfs', '/run', 'mode=0755');
  const info = JSON.parse(readFileSync(`${ETC}/image.json`, 'utf8')) as ImageInfo;
  loadModules(info);
  process.env.HOME ??= '/root';
  process.env.PATH ??= '/bin:/usr/bin';
  if (!existsSync(process.env.HOME)) mkdirSync(process.env.HOME, { recursive: true });
  log(`${info.board.name} (${info.board.id}), Node.js ${process.version} ${process.arch}, build ${info.build}`);
  // PID 1 ignores the signals that would otherwise end it.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(sig, () => undefined);
  startRepl();
}

main();
