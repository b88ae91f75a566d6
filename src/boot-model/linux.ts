/**
 * The boot model's Linux half: for each function a profile claims (the card, USB, Ethernet...),
 * the device-tree nodes it needs, the closure of what they reference (clocks, resets, power
 * domains, interrupt parents, MSI controllers, GPIOs, pin controllers, supplies, PHYs, DMA,
 * mailboxes), each provider's driver — a module from the kernel package's modules.alias, or
 * built in — and that module's dependencies (modules.dep, softdep pre:). The tables are made
 * by depmod from the package's own modules, as Debian's postinst makes them on a board.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Cache } from '../artifacts/index.js';
import { BspError } from '../errors.js';
import { isEnabled, propStrings, walk, type FdtNode } from './fdt.js';

/** A kernel package's driver tables. */
export interface KernelTables {
  release: string;
  /** `of:` aliases as compatible -> module (patterns of the form of:N*T*C<compatible>[C*]). */
  of: Record<string, string>;
  /**
   * Compatibles more than one module claims -> all of them, as modprobe loads every module a
   * modalias matches (a PMIC with one driver per bus it can sit on).
   */
  ofAll?: Record<string, string[]>;
  /** `pci:` aliases: vendor:device (lower-case hex, 4 digits each) -> module. */
  pci: Record<string, string>;
  /** `pci:` class aliases: class, subclass, interface (6 hex digits, e.g. 0c0330 for xHCI) -> module. */
  pciClass: Record<string, string>;
  /** `platform:` aliases: device name -> module (devices a driver creates, e.g. dwc3's xhci-hcd). */
  platform: Record<string, string>;
  /** `sdio:` aliases: vendor:device (lower-case hex) -> module (an SDIO radio: brcmfmac). */
  sdio: Record<string, string>;
  /** `usb:` aliases by vendor:product (lower-case hex) -> module (a USB device the tree names, `usb424,ec00`). */
  usb: Record<string, string>;
  /** The module of the USB hub driver (the `usb:` alias for device class 09: usbcore). */
  usbHub?: string;
  /** Module -> the modules it needs loaded first (modules.dep, then softdep pre:). */
  dep: Record<string, string[]>;
  /** Compatible strings the kernel image itself carries (its built-in drivers' match tables). */
  builtinCompatibles: string[];
  /** Every driver is built in (a kernel the kit built): the modules named are in the image, none is loaded. */
  allBuiltIn?: true;
}

const modName = (path: string): string => path.replace(/^.*\//, '').replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replace(/-/g, '_');

/** Parse depmod's modules.alias, modules.dep and modules.softdep. */
export function parseDepmod(alias: string, dep: string, softdep: string): Pick<KernelTables, 'of' | 'ofAll' | 'pci' | 'pciClass' | 'platform' | 'sdio' | 'usb' | 'usbHub' | 'dep'> {
  const of: Record<string, string> = {};
  const ofAll: Record<string, string[]> = {};
  const sdio: Record<string, string> = {};
  const usb: Record<string, string> = {};
  let usbHub: string | undefined;
  const platform: Record<string, string> = {};
  const pci: Record<string, string> = {};
  const pciClass: Record<string, string> = {};
  for (const line of alias.split('\n')) {
    const m = /^alias (\S+) (\S+)$/.exec(line);
    if (!m) continue;
    const [, pattern, module] = m as unknown as [string, string, string];
    const o = /^of:N\*T\*C(.+?)(C\*)?$/.exec(pattern);
    if (o) {
      const c = o[1]!;
      of[c] ??= module;
      if (module !== of[c]) {
        const all = (ofAll[c] ??= [of[c]!]);
        if (!all.includes(module)) all.push(module);
      }
    }
    const p = /^pci:v0000([0-9A-F]{4})d0000([0-9A-F]{4})sv/.exec(pattern);
    if (p) pci[`${p[1]!.toLowerCase()}:${p[2]!.toLowerCase()}`] ??= module;
    const c = /^pci:v\*d\*sv\*sd\*bc([0-9A-F]{2})sc([0-9A-F]{2})i([0-9A-F]{2})\*$/.exec(pattern);
    if (c) pciClass[`${c[1]}${c[2]}${c[3]}`.toLowerCase()] ??= module;
    const pl = /^platform:(\S+)$/.exec(pattern);
    if (pl) platform[pl[1]!] ??= module;
    const sd = /^sdio:c\*v([0-9A-F]{4})d([0-9A-F]{4})\*$/.exec(pattern);
    if (sd) sdio[`${sd[1]!.toLowerCase()}:${sd[2]!.toLowerCase()}`] ??= module;
    const us = /^usb:v([0-9A-F]{4})p([0-9A-F]{4})d\*dc\*dsc\*dp\*ic\*isc\*ip\*in\*$/.exec(pattern);
    if (us) usb[`${us[1]!.toLowerCase()}:${us[2]!.toLowerCase()}`] ??= module;
    if (pattern === 'usb:v*p*d*dc09dsc*dp*ic*isc*ip*in*') usbHub ??= module;
  }
  const deps: Record<string, string[]> = {};
  for (const line of dep.split('\n')) {
    const m = /^(\S+):\s*(.*)$/.exec(line);
    if (m) deps[modName(m[1]!)] = m[2]!.split(/\s+/).filter(Boolean).map(modName);
  }
  for (const line of softdep.split('\n')) {
    const m = /^softdep (\S+) pre: (.*?)(?: post:.*)?$/.exec(line);
    if (m) deps[modName(m[1]!)] = [...(deps[modName(m[1]!)] ?? []), ...m[2]!.split(/\s+/).filter(Boolean).map(modName)];
  }
  return { of, ofAll, pci, pciClass, platform, sdio, usb, ...(usbHub ? { usbHub } : {}), dep: deps };
}

/**
 * Compatible-looking strings of a kernel image ("vendor,name", or generic ones such as
 * "simple-bus" and "fixed-clock"), NUL-terminated as in its drivers' match tables.
 */
export function imageCompatibles(image: Buffer): string[] {
  const out = new Set<string>();
  const re = /\0([a-z0-9][a-z0-9._+-]*[,-][a-zA-Z0-9._+,-]+)\0/g;
  const text = image.toString('latin1');
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.add(m[1]!);
    re.lastIndex = m.index + m[0].length - 1;
  }
  return [...out].sort();
}

/**
 * The driver tables of an unpacked kernel: depmod run on a scratch tree whose kernel/ is the
 * package's (the package stays as verified), cached by the package's path and release.
 */
export function kernelTables(modulesDir: string, release: string, kernelImage: string, cache: Cache): KernelTables {
  const key = createHash('sha256').update(`${TABLES_FORMAT}\0${modulesDir}\0${release}\0${kernelImage}`).digest('hex').slice(0, 32);
  const json = cache.derivedFile(`kernel-tables-${key}.json`, () => {
    const base = cache.tempPath('depmod');
    const dir = join(base, 'lib/modules', release);
    mkdirSync(dir, { recursive: true });
    try {
      if (existsSync(join(modulesDir, 'kernel'))) symlinkSync(join(modulesDir, 'kernel'), join(dir, 'kernel'));
      for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) if (existsSync(join(modulesDir, f))) copyFileSync(join(modulesDir, f), join(dir, f));
      const r = spawnSync('depmod', ['-b', base, release], { encoding: 'utf8' });
      if (r.error || r.status !== 0) throw new BspError('ETOOL', `depmod -b ${base} ${release}: ${r.error?.message ?? r.stderr.trim()} (apt-get install kmod)`);
      const read = (f: string): string => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
      const tables: KernelTables = { release, ...parseDepmod(read('modules.alias'), read('modules.dep'), read('modules.softdep')), builtinCompatibles: imageCompatibles(readFileSync(kernelImage)) };
      return Buffer.from(JSON.stringify(tables));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
  return JSON.parse(json.toString('utf8')) as KernelTables;
}

/**
 * The tables of a kernel the kit built, where every driver is built in and none leaves a
 * modules.alias: Debian's modular build of the same source (`reference`) says which driver
 * takes an id (`usb424,ec00` -> smsc95xx, sdio 02d0:a9a6 -> brcmfmac, platform bcm2835-wdt ->
 * bcm2835_wdt); an id counts as driven only when that driver is in the built kernel's
 * modules.builtin. Nothing is loaded (no dependencies); compatibles are also matched against
 * the built image's own match tables.
 */
export function builtKernelTables(reference: KernelTables, built: { release: string; builtinModules: string[]; builtinCompatibles: string[] }): KernelTables {
  const have = new Set(built.builtinModules.map((m) => m.replace(/-/g, '_')));
  const keep = (table: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(table).filter(([, m]) => have.has(m.replace(/-/g, '_'))));
  return {
    release: built.release,
    of: keep(reference.of),
    ofAll: Object.fromEntries(Object.entries(reference.ofAll ?? {}).map(([c, ms]) => [c, ms.filter((m) => have.has(m.replace(/-/g, '_')))])),
    pci: keep(reference.pci),
    pciClass: keep(reference.pciClass),
    platform: keep(reference.platform),
    sdio: keep(reference.sdio),
    usb: keep(reference.usb),
    ...(reference.usbHub && have.has(reference.usbHub.replace(/-/g, '_')) ? { usbHub: reference.usbHub } : {}),
    dep: {},
    builtinCompatibles: built.builtinCompatibles,
    allBuiltIn: true,
  };
}

/** Bumped when {@link KernelTables} changes, so cached tables of an older shape are made anew. */
const TABLES_FORMAT = 5;

/** Properties holding phandles to providers, and the provider's cell-count property. */
const PHANDLE_LISTS: [RegExp, string | undefined][] = [
  [/^clocks$/, '#clock-cells'],
  [/^resets$/, '#reset-cells'],
  [/^power-domains$/, '#power-domain-cells'],
  [/^interrupts-extended$/, '#interrupt-cells'],
  [/^msi-parent$/, '#msi-cells'],
  [/^phys$/, '#phy-cells'],
  [/^dmas$/, '#dma-cells'],
  [/^mboxes$/, '#mbox-cells'],
  [/^iommus$/, '#iommu-cells'],
  [/^(.+-)?gpios?$/, '#gpio-cells'],
  [/^pinctrl-\d+$/, undefined],
  [/^.+-supply$/, undefined],
  [/^interrupt-parent$/, undefined],
  // An SDIO host's power sequence (the Pi's Wi-Fi: mmc-pwrseq-simple, its reset on a GPIO).
  [/^mmc-pwrseq$/, undefined],
];

/** Why a node is in a function's closure: which node's which property led to it. */
export interface ClosureEntry {
  node: FdtNode;
  /** `consumer property`, or `parent of consumer`; undefined for the function's own nodes. */
  via?: string;
}

const u32s = (b: Buffer): number[] => Array.from({ length: Math.floor(b.length / 4) }, (_, i) => b.readUInt32BE(i * 4));

/** The node a phandle names. */
function phandleIndex(root: FdtNode): Map<number, FdtNode> {
  const m = new Map<number, FdtNode>();
  for (const n of walk(root)) {
    const p = n.props.get('phandle') ?? n.props.get('linux,phandle');
    if (p && p.length === 4) m.set(p.readUInt32BE(0), n);
  }
  return m;
}

/** The node whose driver provides for `n`: itself if it has a compatible, else its nearest ancestor that has one. */
export function deviceOf(n: FdtNode): FdtNode | undefined {
  for (let c: FdtNode | undefined = n; c; c = c.parent) if (c.props.has('compatible')) return c;
  return undefined;
}

/** Every node `start` needs to probe: what its properties reference, their parents, and so on. */
export function closure(root: FdtNode, start: FdtNode[]): ClosureEntry[] {
  const byPhandle = phandleIndex(root);
  const seen = new Map<FdtNode, ClosureEntry>();
  const queue: ClosureEntry[] = start.map((node) => ({ node }));
  const push = (node: FdtNode | undefined, via: string): void => {
    const d = node && deviceOf(node);
    if (d && !seen.has(d) && d !== root) queue.push({ node: d, via });
  };
  while (queue.length) {
    const e = queue.shift()!;
    if (seen.has(e.node)) continue;
    seen.set(e.node, e);
    const n = e.node;
    // A disabled node is never probed: it is a finding, and what it references is not needed.
    if (!isEnabled(n)) continue;
    const clockProvider = n.props.has('#clock-cells');
    for (const [prop, value] of n.props) {
      const kind = PHANDLE_LISTS.find(([re]) => re.test(prop));
      if (!kind || prop.startsWith('#')) continue;
      // A clock provider's own clock inputs are its parents, which the clock framework takes
      // when they come (the Pi's cprman lists the DSI PLLs): not needed for it to probe.
      if (clockProvider && prop === 'clocks' && !start.includes(n)) continue;
      const cells = u32s(value);
      for (let i = 0; i < cells.length; ) {
        const provider = byPhandle.get(cells[i]!);
        push(provider, `${n.path} ${prop}`);
        const count = kind[1] && provider ? (provider.props.get(kind[1])?.readUInt32BE(0) ?? 0) : kind[1] ? cells.length : 0;
        i += 1 + count;
      }
    }
    // Interrupts go to the interrupt parent named here or by the nearest ancestor.
    if (n.props.has('interrupts') && !n.props.has('interrupt-parent')) {
      for (let a = n.parent; a; a = a.parent) {
        const ip = a.props.get('interrupt-parent');
        if (ip) {
          push(byPhandle.get(ip.readUInt32BE(0)), `${n.path} interrupts (interrupt-parent of ${a.path})`);
          break;
        }
      }
    }
    // The bus a device sits on probes first (simple-bus is built in; a PCIe host is not always).
    for (let a = n.parent; a && a !== root; a = a.parent) if (a.props.has('compatible')) push(a, `parent of ${n.path}`);
  }
  return [...seen.values()];
}

/** How a node is driven. */
export type Driver = { kind: 'module'; module: string; compatible: string; /** More modules the same compatible matches (all are loaded). */ also?: string[] } | { kind: 'builtin'; compatible: string } | { kind: 'none' };

/**
 * A node's driver: the first compatible with a module alias (a PCI function's `pciVVVV,DDDD`
 * through the pci: aliases), else one the kernel image carries (`builtin`: its compatibles as a
 * set, made once per closure rather than once per node).
 */
export function driverOf(n: FdtNode, t: Pick<KernelTables, 'of' | 'pci' | 'builtinCompatibles'> & Partial<Pick<KernelTables, 'ofAll' | 'usb' | 'usbHub'>>, builtin: ReadonlySet<string> = new Set(t.builtinCompatibles)): Driver {
  const compatibles = propStrings(n, 'compatible');
  for (const c of compatibles) {
    if (t.of[c]) {
      const also = (t.ofAll?.[c] ?? []).filter((m) => m !== t.of[c]);
      return { kind: 'module', module: t.of[c]!, compatible: c, ...(also.length ? { also } : {}) };
    }
    const pci = /^pci([0-9a-f]{4}),([0-9a-f]{1,4})$/.exec(c);
    if (pci && t.pci[`${pci[1]}:${pci[2]!.padStart(4, '0')}`]) return { kind: 'module', module: t.pci[`${pci[1]}:${pci[2]!.padStart(4, '0')}`]!, compatible: c };
    // A USB device the tree names (the Pi 3's LAN9514: usb424,ec00) by vendor and product; one
    // with devices under it is a hub, which the hub driver (class 09) takes.
    const usb = /^usb([0-9a-f]{1,4}),([0-9a-f]{1,4})$/.exec(c);
    if (usb) {
      const m = t.usb?.[`${usb[1]!.padStart(4, '0')}:${usb[2]!.padStart(4, '0')}`] ?? (n.children.length > 0 ? t.usbHub : undefined);
      if (m) return { kind: 'module', module: m, compatible: c };
    }
  }
  for (const c of compatibles) if (builtin.has(c)) return { kind: 'builtin', compatible: c };
  return { kind: 'none' };
}

/** A module and everything it needs first, dependencies before dependents. */
export function withDependencies(module: string, dep: Record<string, string[]>, out: string[] = []): string[] {
  if (out.includes(module)) return out;
  for (const d of dep[module] ?? []) withDependencies(d, dep, out);
  out.push(module);
  return out;
}

/** One function's needs. */
export interface FunctionNeeds {
  /** Modules in load order (dependencies first), each with the node that needs it. */
  modules: { module: string; node: string; via?: string }[];
  /** Nodes in the closure that are disabled (their consumers wait for ever). */
  disabled: { node: string; via?: string }[];
  /** Nodes with a compatible no driver matches. */
  undriven: { node: string; compatibles: string[]; via?: string }[];
}

/**
 * What `nodes` need, from the tree and the kernel's tables. `pci` names devices on a bus the
 * tree only sketches, as `vendor:device/class` (the Pi 4's VL805: `1106:3483/0c0330`): a driver
 * for the id, else for the class (xhci_pci takes every xHCI).
 */
export function functionNeeds(root: FdtNode, nodes: FdtNode[], t: KernelTables, pciIds: string[] = [], platformDevices: string[] = [], sdioIds: string[] = []): FunctionNeeds {
  const modules: FunctionNeeds['modules'] = [];
  const disabled: FunctionNeeds['disabled'] = [];
  const undriven: FunctionNeeds['undriven'] = [];
  const addModule = (m: string, node: string, via?: string): void => {
    for (const x of withDependencies(m, t.dep)) if (!modules.some((e) => e.module === x)) modules.push({ module: x, node, ...(via ? { via } : {}) });
  };
  const builtin = new Set(t.builtinCompatibles);
  for (const e of closure(root, nodes)) {
    const via = e.via ? { via: e.via } : {};
    if (!isEnabled(e.node)) disabled.push({ node: e.node.path, ...via });
    const d = driverOf(e.node, t, builtin);
    if (d.kind === 'module') for (const m of [d.module, ...(d.also ?? [])]) addModule(m, e.node.path, e.via);
    // A function's own node without a compatible describes a PCI function, and one the function
    // names bus ids for (an SDIO radio: brcm,bcm4329-fmac has no of: alias) is driven by id: below.
    else if (d.kind === 'none' && (e.via || (e.node.props.has('compatible') && pciIds.length + sdioIds.length === 0))) undriven.push({ node: e.node.path, compatibles: propStrings(e.node, 'compatible'), ...via });
  }
  for (const id of pciIds) {
    const [vd, cls] = id.toLowerCase().split('/');
    const m = t.pci[vd!] ?? (cls ? t.pciClass[cls] : undefined);
    if (m) addModule(m, `pci ${id}`);
    else undriven.push({ node: `pci ${id}`, compatibles: [] });
  }
  for (const id of sdioIds) {
    const m = t.sdio[id.toLowerCase()];
    if (m) addModule(m, `sdio ${id}`);
    else undriven.push({ node: `sdio ${id}`, compatibles: [] });
  }
  for (const name of platformDevices) {
    const m = t.platform[name];
    if (m) addModule(m, `platform ${name}`);
    else undriven.push({ node: `platform ${name}`, compatibles: [] });
  }
  return { modules, disabled, undriven };
}
