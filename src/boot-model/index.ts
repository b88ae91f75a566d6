/**
 * The boot model: what a board's boot loader and kernel will do with a card, computed from
 * the build's real artifacts (the DTB the firmware hands on, the U-Boot build's `.config`
 * and binary) instead of assumed; see docs/boot-chain.md.
 */
export { aliases, isEnabled, nodeAt, parseFdt, propStrings, walk, type FdtNode } from './fdt.js';
export { drives, envRangesOnCard, parseKconfig, ubootEnvLocation, ubootMmcNumbers, type UbootEnvLocation, type UbootMmc } from './uboot.js';
export { checkLinuxCard, checkLinuxFunctions, checkUbootModel, type FunctionClaim, type LinuxCardModel, type ModelFinding, type UbootModel, type UbootModelInput } from './check.js';
export { kitEnv, kitEnvSize, ubootModelFor, ubootBuildConfig, type KitEnv } from './artifacts.js';
export { builtKernelTables, closure, deviceOf, driverOf, functionNeeds, kernelTables, parseDepmod, withDependencies, type ClosureEntry, type Driver, type FunctionNeeds, type KernelTables } from './linux.js';
export { proposeModules, type BoardTreeSource, type ModuleProposal } from './propose.js';
export { boardModel, modelRefusal, type BoardModel, type BoardModelInput } from './board-model.js';
export { boardModules, boardTree, packagedBoardModel, scaffoldBoardWithTree } from './board-tree.js';
