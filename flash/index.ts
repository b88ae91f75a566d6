/**
 * The flasher: drive discovery, safety checks, sparse verified writes, customisation.
 * `flash()` is a pipeline of the stages exported here (plan, check, open, write, verify,
 * customise); a library user can run them one by one or give destinations of its own.
 */
export { flash, type FlashOptions, type FlashResult } from './flash.js';
export { planFlash, tooSmall, LARGE_DRIVE_BYTES, type FlashPlan, type FlashTarget, type ResolvedTarget, type SourceFacts, type StreamLimit } from './plan.js';
export { checkImage, checkedReader, HOLD_LIMIT, type CheckedImage, type CheckOptions } from './check.js';
export { createMissingFile, handleDestination, openDestination, openDestinations, unmountTarget, type Destination } from './destination.js';
export { cardFor, customizeCards, failCard, verifyImage, writeImage, type Card, type TargetResult } from './write.js';
export { phaseReporter, type FlashPhase, type FlashProgress, type PhaseReporter } from './progress.js';
export { pieceReader, walkMapped, type Piece, type Range } from './pieces.js';
export { candidateDrives, drivesFromLsblk, listDrives, resolveTarget, SYSTEM_MOUNTS, type Drive, type LsblkNode, type LsblkTree, type ScanOptions, type SystemContext } from './drives.js';
export { parseBmap, BMAP_CHECKSUMS, type Bmap, type BmapChecksum } from './bmap-reader.js';
export { detectCompression, openSource, openStream, readDigest, type Compression, type Source, type SourceDigest } from './source.js';
export { applyCustomization, customizeCard, planCustomization, validateCustomization, KERNEL_CMDLINE_MAX, type Customization, type CustomizationPlan } from './customize.js';
export { updateCard, type CardUpdateOptions } from './update.js';
