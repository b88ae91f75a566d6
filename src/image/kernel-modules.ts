/**
 * Kernel modules: find the ones a profile lists in an unpacked kernel package, follow
 * `depends=` from each module's .modinfo (Debian ships no modules.dep), and give a load
 * order where every module comes after what it depends on.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BspError } from '../errors.js';
import { normalizeModule } from '../kernel/index.js';

/** A module ready for the initramfs. */
export interface KernelModule {
  name: string;
  /** Path relative to lib/modules/<release>/, without .xz. */
  relPath: string;
  depends: string[];
  /** Decompressed .ko. */
  data: Buffer;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.ko(\.xz|\.zst|\.gz)?$/.test(e.name)) out.push(p);
  }
  return out;
}

function decompress(path: string): Buffer {
  if (path.endsWith('.ko')) return readFileSync(path);
  const tool = path.endsWith('.xz') ? ['xz', '-dc'] : path.endsWith('.zst') ? ['zstd', '-dc'] : ['gzip', '-dc'];
  const r = spawnSync(tool[0]!, [tool[1]!, path], { maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new BspError('EMODULE', `cannot decompress ${path}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** The `.modinfo` key=value strings of a module (the section is NUL-separated). */
export function modinfo(ko: Buffer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  // Section headers: find .modinfo by name.
  const shoff = Number(ko.readBigUInt64LE(40));
  const shentsize = ko.readUInt16LE(58);
  const shnum = ko.readUInt16LE(60);
  const shstrndx = ko.readUInt16LE(62);
  const sec = (i: number): { name: number; offset: number; size: number } => {
    const p = shoff + i * shentsize;
    return { name: ko.readUInt32LE(p), offset: Number(ko.readBigUInt64LE(p + 24)), size: Number(ko.readBigUInt64LE(p + 32)) };
  };
  const names = sec(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = sec(i);
    const n = ko.toString('latin1', names.offset + s.name, ko.indexOf(0, names.offset + s.name));
    if (n !== '.modinfo') continue;
    for (const kv of ko.toString('utf8', s.offset, s.offset + s.size).split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) out.set(kv.slice(0, eq), [...(out.get(kv.slice(0, eq)) ?? []), kv.slice(eq + 1)]);
    }
  }
  return out;
}

/**
 * The kernel release directory (lib/modules/<release>) inside an unpacked kernel package:
 * one with modules (kernel/), or only a modules.builtin (a kernel the kit built, whose
 * drivers are all built in).
 */
export function modulesDir(kernelRoot: string): { dir: string; release: string } {
  const usable = (d: string): boolean => existsSync(join(d, 'kernel')) || existsSync(join(d, 'modules.builtin'));
  for (const base of ['usr/lib/modules', 'lib/modules']) {
    try {
      const rels = readdirSync(join(kernelRoot, base)).filter((r) => statSync(join(kernelRoot, base, r)).isDirectory() && usable(join(kernelRoot, base, r)));
      if (rels[0]) return { dir: join(kernelRoot, base, rels[0]), release: rels[0] };
    } catch {
      /* try the next layout */
    }
  }
  throw new BspError('EMODULE', `no lib/modules/<release>/ with kernel/ or modules.builtin in ${kernelRoot}`);
}

/** Resolve `wanted` with dependencies; built-in modules are skipped. Result is in load order. */
export function resolveModules(kernelRoot: string, wanted: string[]): { release: string; modules: KernelModule[]; builtin: string[] } {
  const { dir, release } = modulesDir(kernelRoot);
  const files = new Map<string, string>();
  for (const p of existsSync(join(dir, 'kernel')) ? walk(join(dir, 'kernel')) : []) files.set(normalizeModule(p.split('/').pop()!.replace(/\.ko(\..*)?$/, '')), p);
  let builtinList: string[] = [];
  try {
    builtinList = readFileSync(join(dir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map((l) => normalizeModule(l.split('/').pop()!.replace(/\.ko$/, '')));
  } catch {
    /* no list: treat nothing as built in */
  }
  const builtin = new Set(builtinList);
  const done = new Map<string, KernelModule>();
  const order: KernelModule[] = [];
  const skipped: string[] = [];
  const visit = (name: string, chain: string[]): void => {
    const key = normalizeModule(name);
    if (done.has(key) || skipped.includes(key)) return;
    if (chain.includes(key)) throw new BspError('EMODULE', `module dependency cycle: ${[...chain, key].join(' -> ')}`);
    const path = files.get(key);
    if (!path) {
      if (builtin.has(key)) {
        skipped.push(key);
        return;
      }
      throw new BspError('EMODULE', `module ${name} is neither in ${relative(kernelRoot, dir)} nor built in: fix kernel.modules in the board profile`);
    }
    const data = decompress(path);
    const depends = (modinfo(data).get('depends')?.[0] ?? '').split(',').filter(Boolean);
    for (const d of depends) visit(d, [...chain, key]);
    const mod: KernelModule = { name: key, relPath: relative(dir, path).replace(/\.(xz|zst|gz)$/, ''), depends: depends.map(normalizeModule), data };
    done.set(key, mod);
    order.push(mod);
  };
  for (const w of wanted) visit(w, []);
  return { release, modules: order, builtin: skipped };
}
