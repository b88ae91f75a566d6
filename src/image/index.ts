/** The image builder: the system slot, the small initramfs, the boot partition, the disk image, its .bmap. */
export { buildImage, buildOutputs, fetchForBuild, ubootEnvironment, type BuildEvent, type BuildManifest, type BuildOptions, type BuildResult, type BuildStage } from './build.js';
export { readElfDeps, type ElfDeps } from './elf.js';
export { writeSparseImage } from './disk.js';
export { blockRanges, createBmap, BMAP_BLOCK } from './bmap-writer.js';
export { modinfo, resolveModules, type KernelModule } from './kernel-modules.js';
export { scriptImage } from './uimage.js';
export { checkBootChain, parseConfigTxt, UBOOT_ENV_SIZE, type BootRule } from './boot-chain.js';
export { TARGET_MODULES_DIR, targetModules, targetPackages, type TargetModules } from './target-modules.js';
export { squashfsImage, SQUASHFS_OPTIONS } from './squashfs.js';
export { STAGE1_INIT, STAGE1_WATCHDOG } from './stage1.js';
export { buildStage1, splitModules, systemEntries, runtimeFiles } from './initramfs.js';
