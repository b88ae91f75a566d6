/**
 * Hostile input for listeners: variants of valid messages (random bytes, truncations, bit
 * flips, runs of 0x00/0xff) from a seeded generator, so a failure can be replayed; and ways
 * to throw them at a UDP port or a TCP server on 127.0.0.1.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

/** A deterministic generator, so a failure can be replayed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 0x100000000);
}

/** Hostile variants of `valid`: random bytes, truncations, bit flips, and byte runs of 0x00 and 0xff. */
export function hostile(valid: Buffer[], n: number, seed: number): Buffer[] {
  const r = rng(seed);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const base = valid[Math.floor(r() * valid.length)]!;
    const kind = i % 4;
    if (kind === 0) out.push(Buffer.from(Array.from({ length: Math.floor(r() * 600) }, () => Math.floor(r() * 256))));
    else if (kind === 1) out.push(base.subarray(0, Math.floor(r() * base.length)));
    else if (kind === 2) {
      const b = Buffer.from(base);
      for (let k = 0; k < 1 + Math.floor(r() * 8); k++) {
        const at = Math.floor(r() * b.length);
        b[at] = b[at]! ^ (1 << Math.floor(r() * 8));
      }
      out.push(b);
    } else {
      const b = Buffer.from(base);
      const from = Math.floor(r() * b.length);
      b.fill(r() < 0.5 ? 0 : 0xff, from, Math.min(b.length, from + 8));
      out.push(b);
    }
  }
  return out;
}

/**
 * Send `datagrams` to 127.0.0.1:`port`, from one socket. `pace` sends them `batch` at a time
 * with `pauseMs` between batches (QEMU's user network reads one datagram per main-loop turn
 * and drops what overflows its socket: unpaced, a few thousand datagrams mostly never reach
 * an emulated board).
 */
export async function blast(port: number, datagrams: Buffer[], pace: { batch: number; pauseMs: number } = { batch: 200, pauseMs: 0 }): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  for (let i = 0; i < datagrams.length; i++) {
    await new Promise<void>((r) => s.send(datagrams[i]!, port, '127.0.0.1', () => r()));
    if ((i + 1) % pace.batch === 0) await new Promise((r) => (pace.pauseMs ? setTimeout(r, pace.pauseMs) : setImmediate(r)));
  }
  await new Promise((r) => setTimeout(r, 200));
  s.close();
}

/**
 * `n` TCP connections to 127.0.0.1:`port`, each sent one hostile variant of `valid` (or nothing,
 * held open for `holdMs`), then closed; resolves when all have ended.
 */
export async function tcpBlast(port: number, valid: Buffer[], n: number, seed: number, holdMs = 300): Promise<void> {
  const payloads = hostile(valid, n, seed);
  await Promise.all(
    payloads.map(
      (p, i) =>
        new Promise<void>((resolve) => {
          const s = connect(port, '127.0.0.1');
          s.on('error', () => resolve());
          s.on('close', () => resolve());
          s.on('connect', () => {
            if (i % 5 !== 0) s.write(p);
            setTimeout(() => s.destroy(), holdMs);
          });
        }),
    ),
  );
}
