/**
 * The U-Boot environment: parse and write the binary format U-Boot, mkenvimage and
 * fw_printenv/fw_setenv use, on files, disk images and block devices.
 */
export { crc32 } from './crc32.js';
export { bytesToText, checkName, currentCopy, hasControl, decodeEnv, encodeEnv, headerSize, nextFlags, textToBytes, type EnvBlock, type EnvVars, type EncodeOptions, type FlagScheme } from './format.js';
export { createImage, fromText, parseScript, textToData, toText, type CreateImageOptions } from './text.js';
export { fileConfig, parseFwEnvConfig, type EnvConfig, type EnvLocation } from './config.js';
export { readEnv, readRaw, storageSize, updateEnv, writeEnv, type EnvChange, type EnvReadResult, type ReadOptions, type UpdateOptions, type WritePlan } from './store.js';
export { openEnv, type EnvWhere, type UbootEnv } from './handle.js';
export { applyEnvFile, fwEnvTool, TOOLS_VERSION, type ToolIo } from './tools.js';
