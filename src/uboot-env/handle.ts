/**
 * An environment as one object: `openEnv({ file: 'uboot.env' })`, `{ config: '/etc/fw_env.config' }`
 * or `{ device: '/dev/mmcblk0', offset: 0x400000, size: 0x4000 }` (with `redundant` for a
 * pair); then get, set, delete, increment. Every change is one write (read, apply, write the
 * inactive copy or replace the file atomically), so a counter a boot script increments and
 * a value set beside it never get in each other's way.
 */
import { readFileSync } from 'node:fs';
import { EnvError } from '../errors.js';
import { fileConfig, parseFwEnvConfig, type EnvConfig } from './config.js';
import type { EnvVars } from './format.js';
import { readEnv, updateEnv, type ReadOptions } from './store.js';

export type EnvWhere =
  | { file: string; size?: number; redundant?: boolean }
  | { config: string }
  | { device: string; offset: number; size: number; redundant?: boolean };

export interface UbootEnv {
  readonly config: EnvConfig;
  /** All variables as stored (read afresh). */
  all(): EnvVars;
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  /** Several at once, in one write; undefined deletes. */
  update(changes: Record<string, string | undefined>): void;
  delete(name: string): void;
  /** Add `by` to a decimal counter (missing counts as 0); returns the new value. */
  increment(name: string, by?: number): number;
}

export function openEnv(where: EnvWhere, o: ReadOptions = {}): UbootEnv {
  const config: EnvConfig =
    'file' in where
      ? fileConfig(where.file, where.size ?? 0x4000, where.redundant ?? false)
      : 'config' in where
        ? parseFwEnvConfig(readFileSync(where.config, 'utf8'))
        : {
            copies: where.redundant
              ? [{ path: where.device, offset: where.offset, size: where.size }, { path: where.device, offset: where.offset + where.size, size: where.size }]
              : [{ path: where.device, offset: where.offset, size: where.size }],
            scheme: 'incremental',
          };
  const update = (changes: Record<string, string | undefined>): void => void updateEnv(config, Object.entries(changes), o);
  return {
    config,
    all: () => readEnv(config, o).vars,
    get: (name) => readEnv(config, o).vars.get(name),
    set: (name, value) => update({ [name]: value }),
    update,
    delete: (name) => update({ [name]: undefined }),
    increment(name, by = 1) {
      const now = readEnv(config, o).vars.get(name) ?? '0';
      if (!/^-?\d+$/.test(now)) throw new EnvError('EENV_FORMAT', `${name} is "${now}", not a number to increment`);
      const next = Number(now) + by;
      update({ [name]: String(next) });
      return next;
    },
  };
}
