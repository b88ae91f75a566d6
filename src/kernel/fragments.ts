/** Which fragments a board's kernel is checked or built against, and reading them. */
import { readFileSync } from 'node:fs';
import type { BoardProfile } from '../boards/index.js';
import { BspError, KernelConfigError } from '../errors.js';
import { insideRoot } from '../paths.js';

/** Where a board's kernel comes from: Debian's package, or the kit builds it. */
export type KernelSource = 'debian' | 'build';

/** The kernel source a profile names. */
export const profileKernelSource = (profile: BoardProfile): KernelSource => (profile.kernel.source === 'build' ? 'build' : 'debian');

/**
 * Modules every image ships whatever the profile lists: the system slot's filesystem, and
 * loop for direct boots (the initramfs mounts the slot from a file). Fragments may name
 * them in `[module: x]`.
 */
export const ALWAYS_SHIPPED_MODULES = ['squashfs', 'loop'];

/**
 * The fragments of a board's kernel, in order: what the kernel's source brings
 * (`source/debian.config`: modules; `source/build.config`: the kit's small base), then the
 * profile's `kernel.fragments` (a later one wins).
 */
export function kernelFragments(profile: BoardProfile, source: KernelSource = profileKernelSource(profile)): string[] {
  return [`source/${source}.config`, ...profile.kernel.fragments];
}

/** A fragment's text (EPROFILE_PATH if the name points outside the directory, EFRAGMENT_MISSING if unreadable). */
export function readFragment(name: string, dir: string): string {
  const path = insideRoot(dir, name, 'kernel.fragments');
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new KernelConfigError('EFRAGMENT_MISSING', `kernel-configs/${name} (named by the board profile) cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The profile with its kernel source replaced (`build --kernel`): "build" (the kit builds the
 * board's kernel) or a Debian kernel package, optionally from another suite
 * (linux-image-arm64@trixie-backports).
 */
export function withKernelSource(profile: BoardProfile, source: string): BoardProfile {
  if (source === 'build') return { ...profile, kernel: { ...profile.kernel, source: 'build' } };
  const m = /^(linux-image-[a-z0-9][a-z0-9.+-]*)(?:@([a-z][a-z0-9-]*))?$/.exec(source);
  if (!m) {
    throw new BspError('EUSAGE', `--kernel ${JSON.stringify(source)}: say "build" (the kit builds the board's kernel) or a Debian kernel package such as linux-image-arm64, optionally @SUITE (linux-image-arm64@trixie-backports)`);
  }
  return { ...profile, kernel: { ...profile.kernel, source: { debian: m[1]!, ...(m[2] ? { suite: m[2] } : {}) } } };
}
