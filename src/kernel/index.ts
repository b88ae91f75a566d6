/** Kernel configuration: check a kernel against a board's fragments, and merge fragments. */
import { readFileSync } from 'node:fs';
import type { BoardProfile } from '../boards/index.js';
import { KernelConfigError } from '../errors.js';
import { defaultKernelConfigsDir, insideRoot } from '../paths.js';
import { checkConfig, mergeConfigs, readConfig, type KernelCheckResult, type MergeResult } from './config.js';

export { checkConfig, mergeConfigs, parseConfig, readConfig, normalizeModule } from './config.js';
export type { ConfigFile, ConfigSetting, KernelCheckResult, MergeResult, UnmetSymbol } from './config.js';

/** A fragment named by a profile, inside kernel-configs/ (EPROFILE_PATH if it points outside). */
function fragmentPath(name: string, dir: string): string {
  return insideRoot(dir, name, 'kernel.fragments');
}

function readFragmentText(name: string, dir: string): string {
  const path = fragmentPath(name, dir);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new KernelConfigError('EFRAGMENT_MISSING', `kernel-configs/${name} (named by the board profile) cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** Check a kernel `.config` file against the board's fragments and shipped modules. */
export function checkKernelConfig(profile: BoardProfile, configPath: string, dir = defaultKernelConfigsDir()): KernelCheckResult {
  const config = readConfig(configPath);
  const frags = profile.kernel.fragments.map((f) => {
    readFragmentText(f, dir);
    return readConfig(fragmentPath(f, dir), f);
  });
  return checkConfig(config, frags, profile.kernel.modules);
}

/** Merge a base defconfig/.config with the board's fragments (merge_config.sh -m semantics). */
export function mergeKernelConfig(profile: BoardProfile, basePath: string, dir = defaultKernelConfigsDir()): MergeResult {
  let text: string;
  try {
    text = readFileSync(basePath, 'utf8');
  } catch (err) {
    throw new KernelConfigError('EKCONFIG_READ', `cannot read base config ${basePath}: ${(err as Error).message}`, { cause: err });
  }
  const frags = profile.kernel.fragments.map((f) => ({ file: f, text: readFragmentText(f, dir) }));
  return mergeConfigs({ file: basePath, text }, frags);
}
