/** The flasher: drive discovery, safety checks, sparse verified writes, customisation. */
export { flash, type FlashOptions, type FlashPhase, type FlashProgress, type FlashResult, type TargetResult } from './flash.js';
export { candidateDrives, drivesFromLsblk, listDrives, resolveTarget, SYSTEM_MOUNTS, type Drive, type LsblkNode, type LsblkTree, type ScanOptions, type SystemContext } from './drives.js';
export { parseBmap, BMAP_CHECKSUMS, type Bmap, type BmapChecksum } from './bmap-reader.js';
export { detectCompression, openSource, openStream, readDigest, type Compression, type Source, type SourceDigest } from './source.js';
export { applyCustomization, customizeCard, planCustomization, validateCustomization, KERNEL_CMDLINE_MAX, type Customization, type CustomizationPlan } from './customize.js';
export { updateCard, type CardUpdateOptions } from './update.js';
