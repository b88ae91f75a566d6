/**
 * Pin naming as gpiozero does it: a GPIO pin answers to `GPIO17`, `BCM17`, `BOARD11`,
 * `J8:11` and its aliases (`SDA`, `TXD`, ...); a bare number is the SoC line.
 */
import type { BoardProfile, HeaderPinSpec } from './schema.js';

/** A header pin with all the names it answers to. */
export interface PinInfo {
  /** Physical pin number on the header. */
  pin: number;
  kind: HeaderPinSpec['kind'];
  /** SoC GPIO line (BCM number); undefined for power and ground. */
  line?: number;
  /** Controller id from the profile's `gpio.controllers`. */
  controller?: string;
  /** Primary label: `GPIO17` (or the profile's name for it, e.g. `PL10`), `3V3`, `5V`, `GND`. */
  label: string;
  /** Every name this pin answers to, primary first. */
  names: string[];
}

/** Primary label of a header pin. */
export function pinLabel(p: HeaderPinSpec): string {
  if (p.kind === 'gpio') return p.name ?? `GPIO${p.line ?? '?'}`;
  if (p.kind === 'power') return p.supply ?? 'PWR';
  return 'GND';
}

/** All pins of the board's header with their names. */
export function headerPins(profile: BoardProfile): PinInfo[] {
  const header = profile.header;
  if (!header) return [];
  const defaultController = profile.gpio.controllers[0]?.id;
  const broadcom = profile.soc.compatible.startsWith('brcm,');
  return [...header.pins]
    .sort((a, b) => a.pin - b.pin)
    .map((p) => {
      const label = pinLabel(p);
      const names = [label, `BOARD${p.pin}`, `${header.name}:${p.pin}`];
      // BCM numbers are Broadcom's (gpiozero's BCM17): Raspberry Pis only, RP1's lines on the Pi 5 included.
      if (p.kind === 'gpio' && p.line !== undefined && broadcom) names.splice(1, 0, `BCM${p.line}`);
      names.push(...(p.aliases ?? []));
      const info: PinInfo = { pin: p.pin, kind: p.kind, label, names };
      if (p.kind === 'gpio') {
        if (p.line !== undefined) info.line = p.line;
        const c = p.controller ?? defaultController;
        if (c !== undefined) info.controller = c;
      }
      return info;
    });
}

/** The pin help and hints name: GPIO17 (a Pi's J8:11) where the board has it, else its first GPIO pin. */
export function examplePin(profile: BoardProfile): PinInfo | undefined {
  const gpio = headerPins(profile).filter((p) => p.kind === 'gpio');
  return gpio.find((p) => p.label === 'GPIO17') ?? gpio[0];
}

/** Result of looking a pin up by name. */
export type PinLookup = { ok: true; pin: PinInfo } | { ok: false; reason: 'unknown' | 'not-gpio'; pin?: PinInfo } | { ok: false; reason: 'ambiguous'; pins: PinInfo[] };

/**
 * Find a header pin by any of its names (case-insensitive), or by SoC line when given a
 * number. Power and ground pins are found but flagged, so callers can say why. A number that
 * is a line of several controllers on the header (banks numbered from 0 each) is ambiguous.
 */
export function findPin(profile: BoardProfile, name: string | number): PinLookup {
  const pins = headerPins(profile);
  let hit: PinInfo | undefined;
  if (typeof name === 'number' || /^\d+$/.test(name)) {
    const line = Number(name);
    const all = pins.filter((p) => p.line === line);
    if (all.length > 1) return { ok: false, reason: 'ambiguous', pins: all };
    hit = all[0];
  } else {
    const want = name.trim().toUpperCase();
    hit = pins.find((p) => p.kind === 'gpio' && p.names.some((n) => n.toUpperCase() === want));
    hit ??= pins.find((p) => p.names.slice(1).some((n) => n.toUpperCase() === want));
  }
  if (!hit) return { ok: false, reason: 'unknown' };
  if (hit.kind !== 'gpio') return { ok: false, reason: 'not-gpio', pin: hit };
  return { ok: true, pin: hit };
}

/** The profile's I2C buses with their numbers (from `/dev/i2c-N`), in profile order. */
export function i2cBuses(profile: BoardProfile): { id: string; bus: number; device: string; modules: string[]; node?: string }[] {
  return profile.buses.flatMap((b) => {
    const m = b.kind === 'i2c' ? /^\/dev\/i2c-(\d+)$/.exec(b.device ?? '') : null;
    return m ? [{ id: b.id, bus: Number(m[1]), device: b.device!, modules: b.modules ?? [], ...(b.node ? { node: b.node } : {}) }] : [];
  });
}
