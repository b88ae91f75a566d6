/**
 * Which board is this? Read the device tree's `compatible` and, on a Raspberry Pi, the
 * revision code, and match them against the profiles (as Blinka and gpiozero do).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedProfile } from './load.js';

/** What the running system says about itself. */
export interface SystemIdentity {
  /** Device-tree compatible strings, most specific first. */
  compatible: string[];
  /** Raspberry Pi revision code, lower-case hex without 0x, if any. */
  revision?: string;
  /** Device-tree model string. */
  model?: string;
}

/** Result of matching a system against the profiles. */
export interface Detection {
  board?: ResolvedProfile;
  /** What matched: 'revision', 'compatible', or undefined when nothing did. */
  by?: 'revision' | 'compatible';
  identity: SystemIdentity;
}

const readOr = (path: string): Buffer | undefined => {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
};

/** Read identity from a root (default `/`; tests pass a fake tree). */
export function readIdentity(root = '/'): SystemIdentity {
  const dt = join(root, 'proc/device-tree');
  const compat = readOr(join(dt, 'compatible'));
  const id: SystemIdentity = {
    compatible: compat ? compat.toString('latin1').split('\0').filter(Boolean) : [],
  };
  const model = readOr(join(dt, 'model'));
  if (model) id.model = model.toString('latin1').replace(/\0+$/, '');
  const rev = readOr(join(dt, 'system/linux,revision'));
  if (rev && rev.length >= 4) id.revision = rev.readUInt32BE(0).toString(16);
  else {
    const cpuinfo = readOr(join(root, 'proc/cpuinfo'))?.toString('latin1');
    const m = cpuinfo && /^Revision\s*:\s*([0-9a-fA-F]+)/m.exec(cpuinfo);
    if (m?.[1]) id.revision = m[1].toLowerCase().replace(/^0+(?=.)/, '');
  }
  return id;
}

/**
 * A revision code without its flag bits: bits 24-31 carry the warranty-void, OTP and
 * overvoltage flags (new style; bit 24 is the warranty bit of old-style codes), which
 * say nothing about the model. gpiozero decodes such codes the same way.
 */
export const normRev = (r: string): string => ((parseInt(r, 16) & 0xffffff) >>> 0).toString(16);

/** Match an identity against profiles: a revision code first, then compatible strings in order. */
export function matchBoard(boards: readonly ResolvedProfile[], identity: SystemIdentity): Detection {
  if (identity.revision) {
    const want = normRev(identity.revision);
    const hit = boards.find((b) => (b.profile.detection.revisions ?? []).some((r) => normRev(r) === want));
    if (hit) return { board: hit, by: 'revision', identity };
  }
  for (const c of identity.compatible) {
    const hit = boards.find((b) => b.profile.detection.compatible.includes(c));
    if (hit) return { board: hit, by: 'compatible', identity };
  }
  return { identity };
}
