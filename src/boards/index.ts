/** Board profiles: load, resolve, check, look up, and draw. */
import { ProfileError, UnknownBoardError } from '../errors.js';
import { defaultBoardsDir, defaultKernelConfigsDir } from '../paths.js';
import { checkProfiles, type CheckOptions } from './check.js';
import { loadProfiles, type ProfileSet, type ResolvedProfile } from './load.js';
import { BoardProfileSchema, fileSchema, type BoardProfile } from './schema.js';

export { checkProfiles, loadProfiles, BoardProfileSchema, fileSchema };
export type { BoardProfile, CheckOptions, ProfileSet, ResolvedProfile };
export type { BusSpec, HeaderPinSpec, PartitionSpec } from './schema.js';
export { examplePin, findPin, headerPins, pinLabel, type PinInfo, type PinLookup } from './pins.js';
export { boardSummary, renderPinout, type PinoutOptions, type PinAnnotator } from './pinout.js';

/**
 * Whether typed input reaches the REPL on the board's emulated console
 * (`emulation.qemu.serialInput`; QEMU's raspi4b delivers no UART receive interrupt): where it
 * does not, the generated e2e cases run their checks as nodeos.run= kernel arguments.
 */
export const typesUnderQemu = (p: BoardProfile): boolean => p.emulation?.qemu.serialInput !== false;

/** Where profiles and fragments come from. Defaults: the kit's `boards/` and `kernel-configs/`. */
export interface BoardSource {
  boardsDir?: string;
  kernelConfigsDir?: string;
}

/** Load every profile; throws ProfileError if any profile fails to load or resolve. */
export function loadBoards(src: BoardSource = {}): ProfileSet {
  const set = loadProfiles(src.boardsDir ?? defaultBoardsDir());
  if (set.findings.length > 0) throw new ProfileError(set.findings);
  return set;
}

/**
 * The resolved profile of one board. A board whose own profile loads is returned even if
 * unrelated profiles are broken; an unknown id throws UnknownBoardError.
 */
export function getBoard(id: string, src: BoardSource = {}): ResolvedProfile {
  const set = loadProfiles(src.boardsDir ?? defaultBoardsDir());
  const hit = set.boards.find((b) => b.profile.id === id);
  if (hit) return hit;
  // A file named after the board that failed to load is reported as such, not as an unknown id.
  const broken = set.findings.filter((f) => f.board === id || f.file.replace(/^.*\//, '').replace(/\.(ya?ml|json)$/, '') === id);
  if (broken.length > 0) throw new ProfileError(broken);
  throw new UnknownBoardError(id, set.boards.map((b) => b.profile.id));
}

/** Load and run every rule; returns the set and all findings (empty = all good). */
export function checkBoards(src: BoardSource = {}, dtbDir?: string): { set: ProfileSet; findings: ReturnType<typeof checkProfiles> } {
  const set = loadProfiles(src.boardsDir ?? defaultBoardsDir());
  const opts: CheckOptions = { boardsDir: src.boardsDir ?? defaultBoardsDir(), kernelConfigsDir: src.kernelConfigsDir ?? defaultKernelConfigsDir() };
  if (dtbDir) opts.dtbDir = dtbDir;
  return { set, findings: checkProfiles(set, opts) };
}
export { matchBoard, readIdentity, type Detection, type SystemIdentity } from './detect.js';
