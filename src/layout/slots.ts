/**
 * The A/B protocol, as U-Boot environment variables (RAUC's scheme, counted in the kit's
 * boot.scr because Debian's U-Boot has no BOOTCOUNT_LIMIT):
 *
 *   nodeos_order      the slots, preferred first ("A B" or "B A")
 *   nodeos_<S>_build  the build in slot S (unset: the slot is empty or being written)
 *   nodeos_<S>_version  its version (the build's SOURCE_DATE_EPOCH, signed in its bundle): no
 *                     older one is installed over it without --allow-downgrade
 *   nodeos_<S>_ok     1 once the system in S came up and confirmed itself
 *   nodeos_<S>_left   tries an unconfirmed S has left; boot.scr counts down and saves first
 *   nodeos_failed     the last update that did not come up: "<slot> <build>"
 *
 * These pure functions are the one description of the transitions: the builder, flash,
 * update and the board's init apply them; boot.scr (boot-script.ts) is their U-Boot half and
 * {@link nextBoot} models it for tests and for `board.system`.
 */
import { SLOTS, otherSlot, type Slot } from './layout.js';

/** Variable names. */
export const SLOT_ENV = {
  order: 'nodeos_order',
  failed: 'nodeos_failed',
  build: (s: Slot): string => `nodeos_${s}_build`,
  version: (s: Slot): string => `nodeos_${s}_version`,
  ok: (s: Slot): string => `nodeos_${s}_ok`,
  left: (s: Slot): string => `nodeos_${s}_left`,
} as const;

type Vars = ReadonlyMap<string, string>;

/** One slot as the environment describes it. */
export interface SlotState {
  slot: Slot;
  /** The build in it; undefined when empty (or an install into it was interrupted). */
  build?: string;
  /** The system in it came up and confirmed itself. */
  confirmed: boolean;
  /** Tries left while unconfirmed. */
  triesLeft: number;
}

/** Both slots, the preference order, and the last update that failed. */
export interface SlotsState {
  order: [Slot, Slot];
  slots: Record<Slot, SlotState>;
  failed?: { slot: Slot; build: string };
}

const isSlot = (s: string | undefined): s is Slot => s === 'A' || s === 'B';

/** Read the slot variables (missing or odd values read as the safe choice: empty, unconfirmed, no tries). */
export function readSlots(vars: Vars): SlotsState {
  const first = vars.get(SLOT_ENV.order)?.trim().split(/\s+/)[0];
  const a: Slot = isSlot(first) ? first : 'A';
  const slots = {} as Record<Slot, SlotState>;
  for (const s of SLOTS) {
    const build = vars.get(SLOT_ENV.build(s));
    const left = Number(vars.get(SLOT_ENV.left(s)));
    slots[s] = { slot: s, ...(build ? { build } : {}), confirmed: vars.get(SLOT_ENV.ok(s)) === '1', triesLeft: Number.isInteger(left) && left > 0 ? left : 0 };
  }
  const f = /^([AB]) (\S+)$/.exec(vars.get(SLOT_ENV.failed) ?? '');
  return { order: [a, otherSlot(a)], slots, ...(f ? { failed: { slot: f[1] as Slot, build: f[2]! } } : {}) };
}

/** The version the environment records for `slot` (undefined: none recorded, a card from an older kit). */
export function slotVersion(vars: Vars, slot: Slot): number | undefined {
  const v = Number(vars.get(SLOT_ENV.version(slot)));
  return vars.has(SLOT_ENV.version(slot)) && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** The variables of a fresh card: `build` in slot A, confirmed; slot B empty. */
export function initialSlotVars(build: string, bootlimit: number, version?: number): [string, string][] {
  return [
    [SLOT_ENV.order, 'A B'],
    [SLOT_ENV.build('A'), build],
    ...(version !== undefined ? ([[SLOT_ENV.version('A'), String(version)]] as [string, string][]) : []),
    [SLOT_ENV.ok('A'), '1'],
    [SLOT_ENV.left('A'), String(bootlimit)],
    [SLOT_ENV.ok('B'), '0'],
    [SLOT_ENV.left('B'), '0'],
  ];
}

/**
 * What boot.scr does with these variables: the first slot in order that has a build and is
 * confirmed or has tries left (a try is counted); if none, both slots get `bootlimit` tries
 * again; with no build anywhere, slot A. Returns the slot and the variables after counting.
 */
export function nextBoot(vars: Vars, bootlimit: number): { slot: Slot; vars: Map<string, string>; counted: boolean } {
  const out = new Map(vars);
  const pick = (): { slot: Slot; counted: boolean } | undefined => {
    for (const s of readSlots(out).order) {
      if (!out.get(SLOT_ENV.build(s))) continue;
      if (out.get(SLOT_ENV.ok(s)) === '1') return { slot: s, counted: false };
      const left = readSlots(out).slots[s].triesLeft;
      if (left > 0) {
        out.set(SLOT_ENV.left(s), String(left - 1));
        return { slot: s, counted: true };
      }
    }
    return undefined;
  };
  const p = pick();
  if (p) return { ...p, vars: out };
  if (!SLOTS.some((s) => out.get(SLOT_ENV.build(s)))) return { slot: 'A', counted: false, vars: out };
  for (const s of SLOTS) if (out.get(SLOT_ENV.build(s))) out.set(SLOT_ENV.left(s), String(bootlimit));
  return { ...pick()!, counted: true, vars: out };
}

/** What {@link confirmBoot} decided. */
export interface Confirmation {
  vars: Map<string, string>;
  /** Something changed and must be written. */
  changed: boolean;
  /** The preferred slot did not come up and the board fell back to the booted one. */
  fellBack?: { slot: Slot; build?: string };
}

/**
 * The running system in `booted` is up: confirm it (tries back to `bootlimit`) and, when
 * U-Boot had to fall back to it, record the failed update and prefer the booted slot.
 */
export function confirmBoot(vars: Vars, booted: Slot, bootlimit: number): Confirmation {
  const out = new Map(vars);
  const st = readSlots(vars);
  let fellBack: Confirmation['fellBack'];
  const preferred = st.order[0];
  if (preferred !== booted) {
    const p = st.slots[preferred];
    fellBack = { slot: preferred, ...(p.build ? { build: p.build } : {}) };
    if (p.build) out.set(SLOT_ENV.failed, `${preferred} ${p.build}`);
    out.set(SLOT_ENV.ok(preferred), '0');
    out.set(SLOT_ENV.left(preferred), '0');
    out.set(SLOT_ENV.order, `${booted} ${preferred}`);
  }
  out.set(SLOT_ENV.ok(booted), '1');
  out.set(SLOT_ENV.left(booted), String(bootlimit));
  const changed = [...out].some(([k, v]) => vars.get(k) !== v) || vars.size !== out.size;
  return { vars: out, changed, ...(fellBack ? { fellBack } : {}) };
}

/**
 * Before writing `slot`: it is emptied in the environment first (no build, no tries, not
 * preferred), so a write cut short leaves a slot U-Boot never picks.
 */
export function beginInstall(vars: Vars, slot: Slot): Map<string, string> {
  const out = new Map(vars);
  out.delete(SLOT_ENV.build(slot));
  out.delete(SLOT_ENV.version(slot));
  out.set(SLOT_ENV.ok(slot), '0');
  out.set(SLOT_ENV.left(slot), '0');
  out.set(SLOT_ENV.order, `${otherSlot(slot)} ${slot}`);
  return out;
}

/** After `slot` was written and verified: it holds `build`, is preferred, and gets `bootlimit` tries. */
export function activateSlot(vars: Vars, slot: Slot, build: string, bootlimit: number, version?: number): Map<string, string> {
  const out = new Map(vars);
  out.set(SLOT_ENV.build(slot), build);
  if (version !== undefined) out.set(SLOT_ENV.version(slot), String(version));
  else out.delete(SLOT_ENV.version(slot));
  out.set(SLOT_ENV.ok(slot), '0');
  out.set(SLOT_ENV.left(slot), String(bootlimit));
  out.set(SLOT_ENV.order, `${slot} ${otherSlot(slot)}`);
  return out;
}
