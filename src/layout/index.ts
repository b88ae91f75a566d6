/**
 * The image layout and the A/B slot protocol: what the builder writes and what emulate,
 * flash, update and the board's init read, so none of them parses the card its own way.
 */
export { activateSlot, beginInstall, confirmBoot, initialSlotVars, nextBoot, readSlots, SLOT_ENV, slotVersion, type Confirmation, type SlotState, type SlotsState } from './slots.js';
export { bootScript } from './boot-script.js';
export {
  APPS_DIR,
  BOOT_FILES,
  bootPartition,
  bootPartitionIn,
  DEFAULT_BOOTLIMIT,
  DIRECT_BOOT_ENV,
  SCREEN_REPL_ENV,
  DIRECT_SYSTEM,
  ENV_SIZE,
  fatPartitionOf,
  imageBytes,
  isKitEnvVar,
  KIT_ENV,
  LAYOUT_FORMAT,
  layoutFor,
  layoutProblem,
  mbrPartitions,
  otherSlot,
  parseLayout,
  partitionBytes,
  partUuid,
  readCardEnv,
  readLayout,
  readLayoutAt,
  slotDir,
  SLOTS,
  SYSTEM_INIT,
  systemPartition,
  usersPartition,
  type ImageApp,
  type ImageLayout,
  type RawRegion,
  type LayoutPartition,
  type Slot,
} from './layout.js';
export { buildMbr, mbrEntry, mbrPartUuid, parseMbr, SECTOR, type MbrEntry, type MbrPartition, type MbrTable } from './mbr.js';
