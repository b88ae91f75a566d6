/**
 * GPIO lines for apps that do not run as root. The sysfs GPIO interface (what onoff and so
 * board.GPIO17 use) lets only root export a line and owns its files as root; Raspberry Pi OS
 * fixes that with udev rules, NodeOS has no udev. Instead init reads requests from a FIFO
 * only the app group may write, `export N` / `unexport N`, exports the line and opens its
 * files (direction, value, edge, active_low) to the app group, 0660. A FIFO because the
 * board API opens pins synchronously: a write to it is, and the app then waits for the
 * line's files to become writable (as onoff does for udev).
 */
import { accessSync, chmodSync, chownSync, closeSync, constants, existsSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';

export const GPIO_FIFO = '/run/nodeos/gpio';
const SYS_GPIO = '/sys/class/gpio';
const LINE_FILES = ['direction', 'value', 'edge', 'active_low'];

/** A request line, checked: only export/unexport of a line some chip has. */
export function parseGpioRequest(line: string, chips: { base: number; ngpio: number }[]): { op: 'export' | 'unexport'; gpio: number } | string {
  const m = /^(export|unexport) (\d{1,5})$/.exec(line.trim());
  if (!m) return `not a GPIO request: ${JSON.stringify(line.slice(0, 40))} (export N or unexport N)`;
  const gpio = Number(m[2]);
  if (!chips.some((c) => gpio >= c.base && gpio < c.base + c.ngpio)) return `GPIO ${gpio} is on no GPIO chip`;
  return { op: m[1] as 'export' | 'unexport', gpio };
}

/** Do one request as root: export (or unexport) and open the line's files to `gid`. */
export function grantGpio(req: { op: 'export' | 'unexport'; gpio: number }, gid: number, sys = SYS_GPIO): void {
  const dir = join(sys, `gpio${req.gpio}`);
  if (req.op === 'unexport') {
    if (existsSync(dir)) writeFileSync(join(sys, 'unexport'), String(req.gpio));
    return;
  }
  if (!existsSync(dir)) writeFileSync(join(sys, 'export'), String(req.gpio));
  for (const f of LINE_FILES) {
    const p = join(dir, f);
    if (!existsSync(p)) continue;
    chownSync(p, 0, gid);
    chmodSync(p, 0o660);
  }
}

/** Serve the FIFO in init (made with mknod by the caller); requests are logged only when refused or failed. */
export function serveGpioRequests(fifo: string, chips: () => { base: number; ngpio: number }[], gid: number, log: (msg: string) => void): Socket {
  // Read-write: the FIFO never reaches end-of-file when the last writer closes.
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  const sock = new Socket({ fd, readable: true, writable: false });
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const req = parseGpioRequest(line, chips());
      if (typeof req === 'string') {
        log(`gpio: refused: ${req}`);
        continue;
      }
      try {
        grantGpio(req, gid);
      } catch (err) {
        log(`gpio: ${req.op} ${req.gpio} for the apps failed: ${(err as Error).message}`);
      }
    }
    if (buf.length > 256) buf = '';
  });
  sock.on('error', (err) => log(`gpio: requests from apps stopped: ${err.message}`));
  return sock;
}

/** Sleep without spinning (the board API is synchronous here). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * In an app (not root): ask init for a line and wait until its files are ours to write.
 * Returns false when there is no init to ask (not NodeOS, or an old image): the caller goes
 * on and the permission error, if any, says the rest.
 */
export function requestGpio(op: 'export' | 'unexport', gpio: number, o: { fifo?: string; sys?: string; timeoutMs?: number } = {}): boolean {
  const fifo = o.fifo ?? GPIO_FIFO;
  if (!existsSync(fifo)) return false;
  let fd: number;
  try {
    fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    writeSync(fd, `${op} ${gpio}\n`);
  } finally {
    closeSync(fd);
  }
  if (op === 'unexport') return true;
  const dir = join(o.sys ?? SYS_GPIO, `gpio${gpio}`);
  // Generous: at boot init may be busy for seconds before it reads the FIFO (a single slow
  // core starting several apps; under QEMU beside another emulated board, 15 s was not enough).
  const end = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    try {
      accessSync(join(dir, 'direction'), constants.W_OK);
      accessSync(join(dir, 'value'), constants.W_OK);
      return true;
    } catch {
      if (Date.now() > end) return false;
      sleepSync(10);
    }
  }
}
