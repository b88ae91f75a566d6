/** A board's root in a folder, for the board-side code that reads /proc, /boot and /dev (runtime/update.ts). */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { createImage, initialSlotVars, TRUSTED_KEYS_PATH, trustedKey, type ImageLayout } from '../../src/index.js';
import type { UpdateHost } from '../../src/runtime/update.js';
import { tempDir } from './tmp.js';

/** update-keys.json trusting `keys`. */
export const keysJson = (...keys: KeyObject[]): string => JSON.stringify({ keys: keys.map(trustedKey) });

/**
 * A board's root: slot A running (build b1) and confirmed unless told, slot B empty; the slots'
 * partitions are 1 MiB files /dev/mmcblk0p2 and p3 (the layout's system partitions, as
 * smallLayout makes them); `keys` is /etc/nodeos/update-keys.json (none when undefined).
 */
export function boardRoot(layout: ImageLayout, o: { keys?: string; cmdline?: string; confirmed?: boolean } = {}): { root: string; host: UpdateHost; remounts: string[]; flushed: string[] } {
  const root = tempDir();
  const at = (p: string): string => join(root, p);
  for (const d of ['proc', 'boot', 'dev', 'etc/nodeos', 'tmp']) mkdirSync(at(d), { recursive: true });
  writeFileSync(at('proc/cmdline'), o.cmdline ?? 'console=ttyS1,115200 nodeos.slot=A\n');
  writeFileSync(at('proc/mounts'), 'proc /proc proc rw 0 0\n/dev/mmcblk0p1 /boot vfat ro,relatime 0 0\n/dev/mmcblk0p2 / squashfs ro 0 0\n');
  writeFileSync(at('boot/layout.json'), JSON.stringify(layout, null, 2) + '\n');
  const vars = new Map(initialSlotVars('b1', layout.bootlimit));
  if (o.confirmed === false) vars.set('nodeos_A_ok', '0');
  const env = createImage([...vars].map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { size: layout.env.size, pad: 0 });
  writeFileSync(at(`boot/${layout.env.file}`), env);
  writeFileSync(at(`boot/${layout.env.backup}`), env);
  writeFileSync(at('dev/mmcblk0p2'), Buffer.alloc(1 << 20, 1));
  writeFileSync(at('dev/mmcblk0p3'), Buffer.alloc(1 << 20, 0xee));
  if (o.keys !== undefined) writeFileSync(at(TRUSTED_KEYS_PATH), o.keys);
  const remounts: string[] = [];
  const flushed: string[] = [];
  const host: UpdateHost = {
    root,
    writable: (path, fn) => {
      remounts.push(path);
      return fn();
    },
    flushBuffers: (dev) => void flushed.push(dev),
  };
  return { root, host, remounts, flushed };
}
