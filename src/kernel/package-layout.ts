/**
 * Where an unpacked kernel package keeps its files. Debian's 6.x packages (and the kernels
 * the kit builds) use boot/vmlinuz-REL, boot/config-REL and usr/lib/linux-image-REL/ for the
 * DTBs; the split packaging of Debian's 7.x kernels (linux-binary-*, linux-modules-*,
 * linux-base-*) keeps all of it under usr/lib/modules/REL/: vmlinuz, config, dtb/.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BspError } from '../errors.js';

export interface KernelFiles {
  release: string;
  /** The kernel Image (uncompressed arm64 Image). */
  image: string;
  /** Its .config. */
  config: string;
  /** The directory the DTBs are under (broadcom/...). */
  dtbDir: string;
}

/** The kernel's files inside an unpacked (or merged) kernel package. EARTIFACT when there is no kernel. */
export function kernelFiles(root: string): KernelFiles {
  const boot = join(root, 'boot');
  const v = existsSync(boot) ? readdirSync(boot).find((f) => /^vmlinu[xz]-/.test(f)) : undefined;
  if (v) {
    const release = v.replace(/^vmlinu[xz]-/, '');
    return { release, image: join(boot, v), config: join(boot, `config-${release}`), dtbDir: join(root, 'usr/lib', `linux-image-${release}`) };
  }
  const mods = join(root, 'usr/lib/modules');
  const release = existsSync(mods) ? readdirSync(mods).find((r) => existsSync(join(mods, r, 'vmlinuz'))) : undefined;
  if (release) {
    const dir = join(mods, release);
    return { release, image: join(dir, 'vmlinuz'), config: join(dir, 'config'), dtbDir: join(dir, 'dtb') };
  }
  throw new BspError('EARTIFACT', `no kernel in ${root}: neither boot/vmlinuz-* nor usr/lib/modules/*/vmlinuz`);
}
