/** Images: the initramfs, the FAT32 boot partition, the MBR disk image, its .bmap. */
export { bootScript, buildImage, ubootEnvironment, BOOT_NAMES, type BuildEvent, type BuildManifest, type BuildOptions, type BuildResult, type BuildStage } from './build.js';
export { writeCpio, type CpioEntry } from './cpio.js';
export { readElfDeps, type ElfDeps } from './elf.js';
export { buildFat32, fat32Geometry, shortName, type Extent, type FatFile, type Fat32Options, type ShortName } from './fat.js';
export { Fat32Reader, type FatDirEntry } from './fat-read.js';
export { buildMbr, writeSparseImage, SECTOR, type MbrPartition } from './disk.js';
export { blockRanges, createBmap, BMAP_BLOCK } from './bmap.js';
export { modinfo, resolveModules, type KernelModule } from './modules.js';
export { deviceTree } from './devicetree.js';
export { scriptImage } from './uimage.js';
export { checkBootChain, parseConfigTxt, UBOOT_ENV_SIZE, type BootRule } from './boot-chain.js';
export { TARGET_PACKAGES, targetModules, type TargetModules } from './target-modules.js';
