/** The board's device tree: the kernel package's DTB with the profile's overlays applied at build time. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cache } from '../artifacts/index.js';
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';
import { insideRoot } from '../paths.js';

/**
 * Read `devicetree.dtb` from `dtbDir` (the kernel package's dtb directory) and apply each
 * overlay `<overlaysDir>/<name>.dtso`, compiled with dtc and merged with fdtoverlay.
 */
export function deviceTree(profile: Pick<BoardProfile, 'devicetree'>, dtbDir: string, overlaysDir: string, cache: Cache): Buffer {
  if (profile.devicetree.dtb === undefined) throw new BspError('EPROFILE_INVALID', 'devicetree.dtb is not set: the firmware provides the device tree');
  const base = insideRoot(dtbDir, profile.devicetree.dtb, 'devicetree.dtb');
  if (!existsSync(base)) throw new BspError('EARTIFACT', `${profile.devicetree.dtb} is not in the kernel package (${dtbDir}): fix devicetree.dtb in the profile`);
  return applyOverlays(readFileSync(base), profile.devicetree.overlays, overlaysDir, cache.tempPath('dtb'));
}

/** Apply overlays `<overlaysDir>/<name>.dtso` to a DTB (dtc + fdtoverlay) in a scratch dir. */
export function applyOverlays(dtb: Buffer, overlays: string[], overlaysDir: string, scratch: string): Buffer {
  if (overlays.length === 0) return dtb;
  const dir = scratch;
  mkdirSync(dir, { recursive: true });
  const base = join(dir, 'base.dtb');
  writeFileSync(base, dtb);
  try {
    const dtbos = overlays.map((name) => {
      const src = insideRoot(overlaysDir, `${name}.dtso`, `overlay ${name}`);
      if (!existsSync(src)) throw new BspError('EARTIFACT', `overlay ${name}: ${src} does not exist`);
      const out = join(dir, `${overlays.indexOf(name)}.dtbo`);
      const r = spawnSync('dtc', ['-@', '-q', '-I', 'dts', '-O', 'dtb', '-o', out, src]);
      if (r.error || r.status !== 0) throw new BspError('ETOOL', `dtc ${name}: ${r.error?.message ?? r.stderr.toString()} (apt-get install device-tree-compiler)`);
      return out;
    });
    const merged = join(dir, 'merged.dtb');
    const r = spawnSync('fdtoverlay', ['-i', base, '-o', merged, ...dtbos]);
    if (r.error || r.status !== 0) throw new BspError('EOVERLAY', `fdtoverlay could not apply ${overlays.join(', ')}: ${r.error?.message ?? r.stderr.toString().trim()}`);
    return readFileSync(merged);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export { variantOverlay, variantOverlaySource } from './variant.js';
