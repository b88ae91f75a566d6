/**
 * Board revisions whose firmware loads one DTB name and applies an overlay of its own on top
 * (the Pi 5: `bcm2712-rpi-5-b.dtb` on every stepping, then `overlays/bcm2712d0.dtbo` on D0
 * boards), while the kernel package describes the revision as a tree of its own (Linux's
 * `bcm2712-d-rpi-5-b.dtb`). The kit computes that overlay from the two trees: every property
 * the revision's tree has that differs from, or is missing in, the board's; an overlay can set
 * properties but not remove nodes or properties, so trees that differ so are refused.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFdt, walk, type FdtNode } from '../boot-model/fdt.js';
import { BspError } from '../errors.js';

/** The overlay source (dts) that turns `base` into `variant`; EDTB_VARIANT when no overlay can. */
export function variantOverlaySource(base: Buffer, variant: Buffer, what = 'the revision\'s tree'): string {
  const b = parseFdt(base, 'the board\'s DTB');
  const v = parseFdt(variant, what);
  const byPath = new Map([...walk(b)].map((n) => [n.path, n]));
  const vPaths = new Set([...walk(v)].map((n) => n.path));
  const problems: string[] = [];
  for (const n of byPath.values()) if (!vPaths.has(n.path)) problems.push(`${what} has no node ${n.path}`);
  const fragments: string[] = [];
  for (const n of walk(v)) {
    const old = byPath.get(n.path);
    if (!old) {
      problems.push(`${what} adds the node ${n.path}`);
      continue;
    }
    for (const name of old.props.keys()) if (!n.props.has(name)) problems.push(`${what} has no ${n.path}:${name}`);
    // References are phandle numbers: a node numbered otherwise would leave them pointing elsewhere.
    if (n.props.has('phandle') && old.props.has('phandle') && !n.props.get('phandle')!.equals(old.props.get('phandle')!)) problems.push(`${n.path} has another phandle in ${what}`);
    const set = [...n.props].filter(([name, value]) => name !== 'phandle' && !old.props.get(name)?.equals(value));
    if (set.length === 0) continue;
    const props = set.map(([name, value]) => `\t\t\t${name}${value.length ? ` = [${[...value].map((x) => x.toString(16).padStart(2, '0')).join(' ')}]` : ''};`);
    fragments.push(`\tfragment@${fragments.length} {\n\t\ttarget-path = "${n.path}";\n\t\t__overlay__ {\n${props.join('\n')}\n\t\t};\n\t};`);
  }
  if (problems.length > 0) throw new BspError('EDTB_VARIANT', `an overlay cannot turn the board's DTB into ${what}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}: give that revision a DTB name of its own instead`);
  return ['/dts-v1/;', '/plugin/;', '', '/ {', ...fragments, '};', ''].join('\n');
}

/** A tree's properties by node path, in a canonical order. */
function content(tree: FdtNode): string {
  return [...walk(tree)].map((n) => `${n.path}\n${[...n.props].map(([k, x]) => `  ${k}=${x.toString('hex')}`).sort().join('\n')}`).sort().join('\n');
}

/**
 * The overlay (a .dtbo, compiled with dtc) that turns `base` into `variant`, proven with the
 * reference tool: fdtoverlay applies it to `base` and the result must be `variant`, property by
 * property (EDTB_VARIANT otherwise).
 */
export function variantOverlay(base: Buffer, variant: Buffer, scratch: string, what?: string): Buffer {
  const dts = variantOverlaySource(base, variant, what);
  mkdirSync(scratch, { recursive: true });
  try {
    const src = join(scratch, 'variant.dtso');
    const dtbo = join(scratch, 'variant.dtbo');
    const baseFile = join(scratch, 'base.dtb');
    const merged = join(scratch, 'merged.dtb');
    writeFileSync(src, dts);
    writeFileSync(baseFile, base);
    const c = spawnSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', '-o', dtbo, src]);
    if (c.error || c.status !== 0) throw new BspError('ETOOL', `dtc: ${c.error?.message ?? c.stderr.toString()} (apt-get install device-tree-compiler)`);
    const o = spawnSync('fdtoverlay', ['-i', baseFile, '-o', merged, dtbo]);
    if (o.error || o.status !== 0) throw new BspError('EOVERLAY', `fdtoverlay could not apply the computed overlay: ${o.error?.message ?? o.stderr.toString().trim()}`);
    if (content(parseFdt(readFileSync(merged))) !== content(parseFdt(variant))) throw new BspError('EDTB_VARIANT', `the computed overlay does not turn the board's DTB into ${what ?? 'the revision\'s tree'} (fdtoverlay's result differs)`);
    return readFileSync(dtbo);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
