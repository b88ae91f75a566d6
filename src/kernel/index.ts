/** Kernel configuration: check a kernel against a board's fragments, merge fragments, build the board's kernel. */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { Cache, fetchArtifacts } from '../artifacts/index.js';
import type { BoardProfile } from '../boards/index.js';
import { KernelConfigError, UsageError } from '../errors.js';
import { defaultKernelConfigsDir } from '../paths.js';
import { checkConfig, mergeConfigs, parseConfig, readConfig, type KernelCheckResult, type MergeResult } from './config.js';
import { ALWAYS_SHIPPED_MODULES, kernelFragments, readFragment, type KernelSource } from './fragments.js';
import { buildKernel, kernelSourceOf } from './build.js';
import { kernelFiles } from './package-layout.js';

export { checkConfig, mergeConfigs, parseConfig, readConfig, normalizeModule } from './config.js';
export type { ConfigFile, ConfigSetting, KernelCheckResult, MergeResult, UnmetSymbol } from './config.js';
export { ALWAYS_SHIPPED_MODULES, kernelFragments, profileKernelSource, withKernelSource, type KernelSource } from './fragments.js';
export { kernelFiles, type KernelFiles } from './package-layout.js';
export { buildKernel, builtinModules, kernelSourceOf, type BuiltKernel, type BuiltKernelInfo, type KernelBuildOptions } from './build.js';

/**
 * Check a kernel `.config` file against the board's fragments (with its source's:
 * `source/debian.config` or `source/build.config`) and the modules the image ships.
 */
export function checkKernelConfig(profile: BoardProfile, configPath: string, dir = defaultKernelConfigsDir(), source?: KernelSource): KernelCheckResult {
  const config = readConfig(configPath);
  const frags = kernelFragments(profile, source).map((f) => parseConfig(readFragment(f, dir), f));
  return checkConfig(config, frags, [...profile.kernel.modules, ...ALWAYS_SHIPPED_MODULES]);
}

/** Merge a base defconfig/.config with the board's fragments (merge_config.sh -m semantics). */
export function mergeKernelConfig(profile: BoardProfile, basePath: string, dir = defaultKernelConfigsDir()): MergeResult {
  let text: string;
  try {
    text = readFileSync(basePath, 'utf8');
  } catch (err) {
    throw new KernelConfigError('EKCONFIG_READ', `cannot read base config ${basePath}: ${(err as Error).message}`, { cause: err });
  }
  const frags = kernelFragments(profile).map((f) => ({ file: f, text: readFragment(f, dir) }));
  return mergeConfigs({ file: basePath, text }, frags);
}

/** The running kernel's config, where Debian puts it (/boot/config-$(uname -r)). */
export function runningKernelConfig(): string {
  const p = `/boot/config-${release()}`;
  if (!existsSync(p)) throw new UsageError(`no --config given and ${p} does not exist: pass --config <kernel .config>`);
  return p;
}

/**
 * The config of the kernel a build of the board uses, so a check is about what gets shipped:
 * inside Debian's package (fetched and verified like a build's, pinned in `lockPath`), or of
 * the kernel the kit builds for it (built now unless cached).
 */
export async function boardKernelConfig(board: BoardProfile, o: { lockPath: string; cache?: Cache; onStep?: (step: string) => void }): Promise<string> {
  const cache = o.cache ?? new Cache();
  const a = await fetchArtifacts(board, { cache, lockPath: o.lockPath });
  if (board.kernel.source === 'build') {
    const k = await buildKernel(board, { cache, source: kernelSourceOf(a), ...(o.onStep ? { onStep: o.onStep } : {}) });
    return join(k.root, 'boot', `config-${k.release}`);
  }
  return kernelFiles(a.debs.kernel!).config;
}
