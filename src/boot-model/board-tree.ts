/**
 * A profile's device tree and its kernel's driver tables, from the pinned, verified Debian
 * packages (fetched into the cache as a build would): what `boards modules` and `boards new
 * --dtb` read. The kit's own kernel (kernel.source: build) is not read here: its tables come
 * from the compile, which a build makes.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cache, fetchArtifacts } from '../artifacts/index.js';
import { getBoard, type BoardProfile } from '../boards/index.js';
import { scaffoldBoard, type TreeIdentity } from '../boards/scaffold.js';
import { deviceTree } from '../devicetree/index.js';
import { BspError } from '../errors.js';
import { modulesDir } from '../image/kernel-modules.js';
import { kernelFiles } from '../kernel/package-layout.js';
import { defaultBoardsDir } from '../paths.js';
import { nodeAt, parseFdt, propStrings, type FdtNode } from './fdt.js';
import { kernelTables } from './linux.js';
import { layoutFor } from '../layout/index.js';
import { boardModel, type BoardModel } from './board-model.js';
import { kitEnvSize } from './artifacts.js';
import { proposeModules, type BoardTreeSource, type ModuleProposal } from './propose.js';

/** `packagesOf`: the board whose lock pins the packages (a new board's sibling: the same kernel). */
export async function boardTree(profile: BoardProfile, o: { lockPath: string; cache?: Cache; offline?: boolean; boardsDir?: string; packagesOf?: BoardProfile }): Promise<BoardTreeSource> {
  if (profile.kernel.source === 'build') throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} builds its own kernel: its driver tables come with the compile; run nodeos-bsp build --board ${profile.id}, whose boot model reads them`);
  if (!profile.devicetree.dtb) throw new BspError('EPROFILE_INVALID', `${profile.id} has no devicetree.dtb: the firmware provides its tree, which only the running board has (/sys/firmware/fdt)`);
  const cache = o.cache ?? new Cache();
  const a = await fetchArtifacts(o.packagesOf ?? profile, { cache, lockPath: o.lockPath, offline: o.offline ?? false });
  if (!a.debs.kernel) throw new BspError('EARTIFACT', `no kernel package for ${profile.id}`);
  const k = kernelFiles(a.debs.kernel);
  const dtb = deviceTree(profile, k.dtbDir, join(o.boardsDir ?? defaultBoardsDir(), 'overlays'), cache);
  return { tree: parseFdt(dtb, profile.devicetree.dtb), tables: kernelTables(modulesDir(a.debs.kernel).dir, k.release, k.image, cache), release: k.release };
}

/** What a tree says of its board: the root's compatible and model, its CPUs. */
export function treeIdentity(root: FdtNode): TreeIdentity {
  const cpus = (nodeAt(root, '/cpus')?.children ?? []).filter((c) => c.name.startsWith('cpu@') && propStrings(c, 'device_type')[0] === 'cpu');
  const cpu = cpus.length ? propStrings(cpus[0]!, 'compatible')[0] : undefined;
  const model = propStrings(root, 'model')[0];
  return { compatible: propStrings(root, 'compatible'), ...(model ? { model } : {}), ...(cpu ? { cpu: { compatible: cpu, count: cpus.length } } : {}) };
}

/** What the board's tree asks of its kernel: the proposal, and the module dependencies it was made with. */
export async function boardModules(profile: BoardProfile, o: Parameters<typeof boardTree>[1]): Promise<{ release: string; proposal: ModuleProposal; dep: Record<string, string[]> }> {
  const t = await boardTree(profile, o);
  const proposal = proposeModules(t.tree, t.tables, { ...(profile.boot.card ? { card: profile.boot.card, ...(profile.boot.cardPlatform ? { cardPlatform: profile.boot.cardPlatform } : {}) } : {}), ...(profile.functions ? { functions: profile.functions } : {}) });
  return { release: t.release, proposal, dep: t.tables.dep };
}

/**
 * `boards new --dtb`: a profile scaffolded from a sibling with its own tree (and card node),
 * and what that tree asks of the sibling's kernel package. A tree that cannot be read leaves
 * the boards directory as it was (an overwritten file comes back).
 */
export async function scaffoldBoardWithTree(
  id: string,
  from: string,
  o: { boardsDir?: string; kernelConfigsDir?: string; name?: string; force?: boolean; dtb: string; card?: string; lockPath: string; offline?: boolean; cache?: Cache },
): Promise<{ file: string; board: BoardProfile; release: string; proposal: ModuleProposal; dep: Record<string, string[]> }> {
  const src = { ...(o.boardsDir ? { boardsDir: o.boardsDir } : {}), ...(o.kernelConfigsDir ? { kernelConfigsDir: o.kernelConfigsDir } : {}) };
  const target = join(o.boardsDir ?? defaultBoardsDir(), `${id}.yaml`);
  const before = existsSync(target) ? readFileSync(target) : undefined;
  // The tree is read first, as the sibling's packages give it: what it says of the board is
  // written in place of what the sibling said of itself, once; a tree that cannot be read writes nothing.
  const sibling = getBoard(from, src).profile;
  const t = await boardTree({ ...sibling, devicetree: { ...sibling.devicetree, dtb: o.dtb } }, { lockPath: o.lockPath, offline: Boolean(o.offline), packagesOf: sibling, ...(o.boardsDir ? { boardsDir: o.boardsDir } : {}), ...(o.cache ? { cache: o.cache } : {}) });
  const file = scaffoldBoard(id, from, { ...src, ...(o.name ? { name: o.name } : {}), dtb: o.dtb, ...(o.card ? { card: o.card } : {}), force: Boolean(o.force), identity: treeIdentity(t.tree) });
  try {
    const board = getBoard(id, src).profile;
    const proposal = proposeModules(t.tree, t.tables, { ...(board.boot.card ? { card: board.boot.card, ...(board.boot.cardPlatform ? { cardPlatform: board.boot.cardPlatform } : {}) } : {}), ...(board.functions ? { functions: board.functions } : {}) });
    return { file, board, release: t.release, proposal, dep: t.tables.dep };
  } catch (err) {
    if (before) writeFileSync(file, before);
    else rmSync(file, { force: true });
    throw err;
  }
}

/**
 * The board's whole boot model from its pinned packages alone, as a build would compute it
 * before writing (`boards check --model`): U-Boot's half from the U-Boot package, Linux's from
 * the kernel package's tables, the DTB with its overlays, each revision's tree.
 */
export async function packagedBoardModel(profile: BoardProfile, o: { lockPath: string; cache?: Cache; offline?: boolean; boardsDir?: string }): Promise<BoardModel> {
  if (profile.kernel.source === 'build') throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} builds its own kernel: its driver tables come with the compile; run nodeos-bsp build --board ${profile.id}, whose boot model reads them`);
  if (!profile.boot.uboot) throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} has no boot.uboot: the kit's images boot through U-Boot`);
  const cache = o.cache ?? new Cache();
  const a = await fetchArtifacts(profile, { cache, lockPath: o.lockPath, offline: o.offline ?? false });
  if (!a.debs.kernel || !a.debs.uboot) throw new BspError('EARTIFACT', `no kernel or U-Boot package for ${profile.id}`);
  const k = kernelFiles(a.debs.kernel);
  const overlays = join(o.boardsDir ?? defaultBoardsDir(), 'overlays');
  const dtb = profile.devicetree.dtb ? deviceTree(profile, k.dtbDir, overlays, cache) : undefined;
  const variants = (profile.devicetree.variants ?? []).map((v) => ({ id: v.id, dtb: v.dtb, tree: deviceTree({ devicetree: { ...profile.devicetree, dtb: v.dtb } }, k.dtbDir, overlays, cache) }));
  // The environment's file and size do not depend on the disk signature.
  const layout = layoutFor(profile, 1, { envSize: kitEnvSize(profile, a.debs.uboot) });
  return boardModel(profile, {
    ubootDir: a.debs.uboot,
    ...(dtb ? { dtb } : {}),
    envFile: layout.env.file,
    envSize: layout.env.size,
    tables: () => kernelTables(modulesDir(a.debs.kernel!).dir, k.release, k.image, cache),
    variants,
  });
}
