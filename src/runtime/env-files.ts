/**
 * The card's U-Boot environment as the running system sees it: uboot.env and its copy
 * uboot.bak on /boot (the layout names them). A change is written to the copy first and then
 * to uboot.env, each whole and read back, so a power cut at any moment leaves one of them
 * readable, and boot.scr reads whichever is (U-Boot itself only ever rewrites uboot.env).
 */
import { existsSync } from 'node:fs';
import { EnvError } from '../errors.js';
import { ENV_SIZE } from '../layout/index.js';
import { fileConfig, readEnv, writeEnv, type EnvConfig, type EnvVars } from '../uboot-env/index.js';

/** Where the environment lives: the file U-Boot reads, and the copy beside it (if the card has one). */
export interface EnvFiles {
  main: EnvConfig;
  backup?: EnvConfig;
}

/** The files of a card mounted at `boot` (a card from before the A/B layout has no copy); `size` is the layout's (its U-Boot build's CONFIG_ENV_SIZE). */
export function envFiles(boot = '/boot', file = 'uboot.env', backup = 'uboot.bak', size = ENV_SIZE): EnvFiles {
  // With a copy beside it each file is overwritten where it is (a cut write leaves the other
  // readable), so no old environment survives in freed clusters; alone, it is replaced atomically.
  if (!existsSync(`${boot}/${backup}`)) return { main: fileConfig(`${boot}/${file}`, size) };
  return { main: { ...fileConfig(`${boot}/${file}`, size), inPlace: true }, backup: { ...fileConfig(`${boot}/${backup}`, size), inPlace: true } };
}

/** The variables: from uboot.env, or from the copy when uboot.env is unreadable (as boot.scr does). */
export function readEnvFiles(f: EnvFiles): { vars: EnvVars; from: 'main' | 'backup' } {
  try {
    return { vars: readEnv(f.main).vars, from: 'main' };
  } catch (err) {
    if (!f.backup || !(err instanceof EnvError)) throw err;
    return { vars: readEnv(f.backup).vars, from: 'backup' };
  }
}

/**
 * Change the environment: `change` gets the current variables and returns the new ones
 * (or undefined: nothing to write). Written sorted, copy first; `withWritable` wraps the
 * writes (the board remounts /boot read-write just for them).
 */
export function updateEnvFiles(f: EnvFiles, change: (vars: EnvVars) => EnvVars | undefined, withWritable: <T>(fn: () => T) => T = (fn) => fn()): EnvVars {
  const { vars, from } = readEnvFiles(f);
  const next = change(new Map(vars));
  if (!next && from === 'main') return vars;
  const out = next ?? vars;
  const ordered = [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  withWritable(() => {
    if (f.backup) writeEnv(f.backup, ordered);
    writeEnv(f.main, ordered);
  });
  return new Map(ordered);
}
