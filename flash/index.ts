/** The flasher: drive discovery, safety checks, sparse verified writes, customisation. */
export { flash, type FlashOptions, type FlashPhase, type FlashProgress, type FlashResult, type TargetResult } from './flash.js';
export { candidateDrives, listDrives, resolveTarget, SYSTEM_MOUNTS, type Drive, type ScanOptions } from './drives.js';
export { parseBmap, type Bmap } from './bmap.js';
export { detectCompression, openSource, openStream, type Compression, type Source } from './source.js';
export { applyCustomization, customizeCard, validateCustomization, type Customization } from './customize.js';
