/** FAT32: the boot partition's filesystem, written and read by the kit's own code. */
export { buildFat32, fat32Geometry, shortName, type Extent, type FatFile, type Fat32Geometry, type Fat32Options, type ShortName } from './writer.js';
export { Fat32Reader, fileReadAt, readFullyAt, type FatDirEntry, type ReadAt } from './reader.js';
