/** nodeos-bsp as a library: everything the CLI does is callable from here, and writing cards from `nodeos-bsp/flash`. */
export * from './errors.js';
export * from './boards/index.js';
export { scaffoldBoard, schemaText } from './boards/scaffold.js';
export { boardsTable, functionsTable, generatedFiles, staleGeneratedFiles } from './boards/generated-docs.js';
export * from './kernel/index.js';
export { packageRoot, defaultBoardsDir, defaultKernelConfigsDir } from './paths.js';
export * from './uboot-env/index.js';
export * from './artifacts/index.js';
export * from './fat/index.js';
export * from './cpio/index.js';
export * from './layout/index.js';
export * from './devicetree/index.js';
export * from './image/index.js';
export * from './update/index.js';
export * from './emulate/index.js';
export * from './settings/index.js';
