/**
 * Which system slot is running and what the card's environment says about both: the running
 * side of the A/B protocol (layout/slots.ts). init confirms the slot once the system is up;
 * `board.system` reports it.
 */
import { readFileSync } from 'node:fs';
import { confirmBoot, readSlots, type Confirmation, type ImageLayout, type Slot, type SlotsState } from '../layout/index.js';
import { readEnvFiles, updateEnvFiles, type EnvFiles } from './env-files.js';

/** The slot the kernel was started from (`nodeos.slot=`, added by boot.scr), if any. */
export function runningSlot(cmdline: string): Slot | undefined {
  const m = /(?:^|\s)nodeos\.slot=([AB])(?:\s|$)/.exec(cmdline);
  return m ? (m[1] as Slot) : undefined;
}

/** What `board.system` shows. */
export interface SystemState {
  /** The running slot (undefined: a direct boot, no card). */
  slot?: Slot;
  /** The running build. */
  build: string;
  /** The running slot is confirmed in the environment. */
  confirmed: boolean;
  /** The other slot: its build (undefined: empty) and whether it is confirmed. */
  other?: { slot: Slot; build?: string; confirmed: boolean };
  /** The slot U-Boot boots next. */
  next?: Slot;
  /** The last update that did not come up (the board fell back from it). */
  lastFailedUpdate?: { slot: Slot; build: string };
}

/** Read the state (slots from the environment; undefined environment: only what the kernel says). */
export function systemState(build: string, cmdline: string, env?: EnvFiles): SystemState {
  const slot = runningSlot(cmdline);
  let st: SlotsState | undefined;
  try {
    st = env ? readSlots(readEnvFiles(env).vars) : undefined;
  } catch {
    st = undefined;
  }
  if (!slot || !st) return { ...(slot ? { slot } : {}), build, confirmed: false };
  const o = slot === 'A' ? 'B' : 'A';
  return {
    slot,
    build,
    confirmed: st.slots[slot].confirmed,
    other: { slot: o, ...(st.slots[o].build ? { build: st.slots[o].build } : {}), confirmed: st.slots[o].confirmed },
    next: st.order[0],
    ...(st.failed ? { lastFailedUpdate: st.failed } : {}),
  };
}

/** Confirm the running slot (the system came up); returns what changed, or undefined without a slot. */
export function confirmRunningSlot(layout: ImageLayout, env: EnvFiles, withWritable: <T>(fn: () => T) => T, cmdline = readFileSync('/proc/cmdline', 'utf8')): Confirmation | undefined {
  const slot = runningSlot(cmdline);
  if (!slot) return undefined;
  let result: Confirmation | undefined;
  updateEnvFiles(
    env,
    (vars) => {
      result = confirmBoot(vars, slot, layout.bootlimit);
      return result.changed ? result.vars : undefined;
    },
    withWritable,
  );
  return result;
}
