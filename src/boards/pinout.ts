/** `pinout`: draw a board's header the way gpiozero's pinout does, without hardware. */
import type { BoardProfile } from './schema.js';
import { headerPins, type PinInfo } from './pins.js';

/** Extra text to show beside a pin (the REPL marks opened pins with direction/value). */
export type PinAnnotator = (pin: PinInfo) => string | undefined;

/** Options for {@link renderPinout}. */
export interface PinoutOptions {
  /** Show the board summary above the header. Default true. */
  info?: boolean;
  /** Wrap text in ANSI colours. Default false. */
  color?: boolean;
  annotate?: PinAnnotator;
}

const ANSI = { gpio: '\x1b[32m', power: '\x1b[31m', ground: '\x1b[2m', reset: '\x1b[0m' } as const;

/** Board summary lines: what `pinout` prints above the header. */
export function boardSummary(p: BoardProfile): string[] {
  const rows: [string, string][] = [
    ['Board', `${p.name} (${p.id})`],
    ['Vendor', p.vendor],
    ['Status', p.status + (p.statusReason ? ` - ${p.statusReason}` : '')],
    ['SoC', `${p.soc.name} (${p.soc.cores}x ${p.soc.cpu})`],
    ['Arch', `kernel ${p.arch.kernel}, node ${p.arch.node} (${p.arch.isa})`],
    ['Device tree', p.devicetree.dtb ?? 'from the firmware'],
    ['Console', `${p.console.device} ${p.console.baud} baud${p.console.note ? ` (${p.console.note})` : ''}`],
  ];
  for (const b of p.buses) {
    const pins = Object.entries(b.pins).map(([sig, pin]) => `${sig.toUpperCase()}=${typeof pin === 'number' ? (headerPins(p).find((x) => x.line === pin)?.label ?? `GPIO${pin}`) : pin}`).join(' ');
    rows.push([b.kind.toUpperCase(), `${b.device} ${pins}`]);
  }
  if (p.emulation) rows.push(['QEMU', `-M ${p.emulation.qemu.machine}`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)} : ${v}`);
}

/** Render the header as two columns: `GPIO17 (11) (12) GPIO18`. */
export function renderPinout(profile: BoardProfile, options: PinoutOptions = {}): string {
  const { info = true, color = false, annotate } = options;
  const lines: string[] = [];
  if (info) lines.push(...boardSummary(profile), '');
  const pins = headerPins(profile);
  if (!profile.header || pins.length === 0) {
    lines.push(`${profile.name} has no GPIO header in its profile.`);
    return lines.join('\n') + '\n';
  }
  const text = (p: PinInfo): string => {
    const note = annotate?.(p);
    return note ? `${p.label} ${note}` : p.label;
  };
  const paint = (p: PinInfo, s: string): string => (color ? `${ANSI[p.kind]}${s}${ANSI.reset}` : s);
  const left = pins.filter((p) => p.pin % 2 === 1);
  const right = pins.filter((p) => p.pin % 2 === 0);
  const lw = Math.max(...left.map((p) => text(p).length));
  const rw = Math.max(...right.map((p) => text(p).length));
  const nw = String(Math.max(...pins.map((p) => p.pin))).length + 2;
  lines.push(`${profile.header.name}:`);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const l = left[i];
    const r = right[i];
    const ls = l ? paint(l, text(l).padStart(lw)) + ' ' + `(${l.pin})`.padStart(nw) : ' '.repeat(lw + 1 + nw);
    const rs = r ? `(${r.pin})`.padEnd(nw) + ' ' + paint(r, text(r).padEnd(rw)) : '';
    lines.push(`${ls} ${rs}`.trimEnd());
  }
  return lines.join('\n') + '\n';
}
