/** `boards` and `pinout` commands. */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import {
  checkBoards,
  getBoard,
  headerPins,
  loadBoards,
  matchBoard,
  readIdentity,
  renderPinout,
  type BoardProfile,
} from '../boards/index.js';
import { scaffoldBoard, schemaText } from '../boards/scaffold.js';
import { boardModules, modelRefusal, packagedBoardModel, scaffoldBoardWithTree, withDependencies, type ModuleProposal } from '../boot-model/index.js';
import { buildOutputs } from '../image/index.js';
import { BspError, UsageError, type ProfileFinding } from '../errors.js';
import { json, table, type Io } from './output.js';

/** Options every board command takes. */
interface DirOpts {
  boardsDir?: string;
  kernelConfigsDir?: string;
}

const src = (o: DirOpts): { boardsDir?: string; kernelConfigsDir?: string } => ({
  ...(o.boardsDir ? { boardsDir: o.boardsDir } : {}),
  ...(o.kernelConfigsDir ? { kernelConfigsDir: o.kernelConfigsDir } : {}),
});

const withDirs = (c: Command): Command =>
  c
    .option('--boards-dir <dir>', 'board profiles directory (default: the kit\'s boards/)')
    .option('--kernel-configs-dir <dir>', 'kernel-config fragments directory (default: the kit\'s kernel-configs/)');

/** The proposal's modules the profile's kernel.modules does not name (dashes and underscores alike). */
export function missingModules(board: BoardProfile, p: ModuleProposal, dep: Record<string, string[]> = {}): string[] {
  // A named module brings its dependencies: they are not missing.
  const named = new Set(board.kernel.modules.flatMap((m) => withDependencies(m.replace(/-/g, '_'), dep)));
  const wanted = new Set([...(p.card ?? []), ...Object.values(p.functions).flat(), ...p.others.map((o) => o.module)]);
  return p.all.filter((m) => wanted.has(m) && !named.has(m.replace(/-/g, '_')));
}

/** The proposal as text: by what needs each module, then what kernel.modules lacks. */
export function proposalText(board: BoardProfile, p: ModuleProposal, dep: Record<string, string[]> = {}): string {
  const lines = [`modules ${board.id}'s device tree asks for:`];
  if (p.card) lines.push(`  card (stage 1): ${p.card.join(' ') || '(built in)'}`);
  for (const [f, m] of Object.entries(p.functions)) lines.push(`  ${f}: ${m.join(' ') || '(built in)'}`);
  for (const o of p.others) lines.push(`  ${o.node}: ${o.module}`);
  for (const x of p.problems) lines.push(`  problem: ${x}`);
  const missing = missingModules(board, p, dep);
  lines.push(missing.length ? `not in kernel.modules (proposed): ${missing.join(' ')}` : 'kernel.modules names them all');
  return lines.join('\n') + '\n';
}

/** Human line for a finding: `file path: message [CODE]`. */
export const formatFinding = (f: ProfileFinding): string =>
  `${f.file}${f.path ? ` ${f.path}` : ''}: ${f.message} [${f.code}]`;

export function boardsRow(p: BoardProfile): string[] {
  return [p.id, p.name, p.status, p.soc.name, p.arch.node, p.emulation ? p.emulation.qemu.machine : '-'];
}

export function registerBoards(program: Command, io: Io): void {
  const boards = program
    .command('boards')
    .description('list, show, check and scaffold board profiles')
    .addHelpText(
      'after',
      `
Examples:
  $ nodeos-bsp boards                    list the boards
  $ nodeos-bsp boards show rpi3b         the resolved profile of one board
  $ nodeos-bsp boards check              check every profile (exit 1 on findings)
  $ nodeos-bsp boards new myboard --from rpi3b
  $ nodeos-bsp boards schema -o board-profile.schema.json`,
    );

  withDirs(
    boards
      .command('list', { isDefault: true })
      .description('list the boards (not the SoC/family profiles they extend)')
      .option('--json', 'machine-readable output')
      .addHelpText('after', '\nExamples:\n  $ nodeos-bsp boards list\n  $ nodeos-bsp boards list --json | jq -r \'.[].id\''),
  ).action((o: DirOpts & { json?: boolean }) => {
    const set = loadBoards(src(o));
    if (o.json) return json(io, set.boards.map((b) => ({ id: b.profile.id, name: b.profile.name, status: b.profile.status, soc: b.profile.soc.id, file: b.file })));
    io.out(table([['ID', 'NAME', 'STATUS', 'SOC', 'NODE ARCH', 'QEMU'], ...set.boards.map((b) => boardsRow(b.profile))]));
  });

  withDirs(
    boards
      .command('show')
      .argument('<id>', 'board id')
      .description('print the resolved profile of a board (after extends)')
      .option('--json', 'print JSON instead of the summary and header')
      .addHelpText('after', '\nExamples:\n  $ nodeos-bsp boards show rpi4b\n  $ nodeos-bsp boards show rpi4b --json'),
  ).action((id: string, o: DirOpts & { json?: boolean }) => {
    const b = getBoard(id, src(o));
    if (o.json) return json(io, b.profile);
    io.out(`${b.profile.name} (${b.profile.id}) from ${b.chain.join(' <- ')}\n\n`);
    io.out(renderPinout(b.profile, { color: io.color }));
  });

  withDirs(
    boards
      .command('check')
      .argument('[ids...]', 'boards to report on (default: all)')
      .description('validate profiles: schema, extends, pins, buses, console, partitions, files')
      .option('--json', 'machine-readable findings')
      .option('--dtb-dir <dir>', 'also check that each DTB exists in this (unpacked kernel) dtb directory')
      .option('--model', "also run the boot model from each board's pinned Debian packages (fetched into the cache as a build would), without building")
      .option('-o, --out <dir>', "with --model: the build output directory whose lock files pin the packages", 'out')
      .option('--offline', 'with --model: use only the cache')
      .addHelpText(
        'after',
        `
Every finding has a code (EPROFILE_SCHEMA, EPIN_CONFLICT, ECONSOLE_CMDLINE, ...) and says how to fix it.
With --model, each board's boot model runs as a build runs it before writing (U-Boot's MMC
numbering and environment, the card's and the functions' drivers under Linux, each revision's
tree); a broken rule is an EBOOT_MODEL finding. Boards that build their own kernel are skipped
(their tables come with the compile: build them).
Exit status: 0 when clean, 1 when any finding.

Examples:
  $ nodeos-bsp boards check
  $ nodeos-bsp boards check rpi3b --json
  $ nodeos-bsp boards check rpi4b rpi5b --model
  $ nodeos-bsp boards check --boards-dir ./my-boards`,
      ),
  ).action(async (ids: string[], o: DirOpts & { json?: boolean; dtbDir?: string; model?: boolean; out: string; offline?: boolean }) => {
    const { set, findings } = checkBoards(src(o), o.dtbDir);
    const known = new Set([...set.boards, ...set.bases].map((b) => b.profile.id));
    for (const id of ids) {
      if (!known.has(id) && !findings.some((f) => f.board === id)) {
        throw new BspError('EBOARD_UNKNOWN', `unknown board "${id}"; run "nodeos-bsp boards list"`);
      }
    }
    const shown = ids.length ? findings.filter((f) => !f.board || ids.includes(f.board)) : findings;
    const checked = ids.length ? ids : set.boards.map((b) => b.profile.id);
    const model: Record<string, { ok: boolean; findings: { id: string; ok: boolean; detail: string }[] } | { skipped: string }> = {};
    if (o.model) {
      // Boards whose profile is already broken are not modelled: their findings say why.
      for (const id of checked.filter((b) => !shown.some((f) => f.board === b))) {
        const b = set.boards.find((x) => x.profile.id === id);
        if (!b) continue;
        try {
          const m = await packagedBoardModel(b.profile, { lockPath: buildOutputs(o.out, id).lock, offline: Boolean(o.offline), ...(o.boardsDir ? { boardsDir: o.boardsDir } : {}) });
          model[id] = { ok: m.findings.every((f) => f.ok), findings: m.findings.map(({ id: rule, ok, detail }) => ({ id: rule, ok, detail })) };
          const refusal = modelRefusal(b.profile, m);
          if (refusal) shown.push({ code: 'EBOOT_MODEL', file: b.file, path: '', message: refusal.message, board: id });
        } catch (err) {
          if (!(err instanceof BspError) || err.code !== 'EBOARD_UNSUPPORTED') throw err;
          model[id] = { skipped: err.message };
        }
      }
    }
    if (o.json) json(io, { ok: shown.length === 0, boards: checked, findings: shown, ...(o.model ? { model } : {}) });
    else {
      if (o.model) {
        for (const [id, m] of Object.entries(model)) io.out('skipped' in m ? `boot model: ${id}: skipped: ${m.skipped}\n` : `boot model: ${id}: ${m.ok ? `${m.findings.length} rule(s) hold` : `${m.findings.filter((f) => !f.ok).length} of ${m.findings.length} rule(s) broken`}\n`);
      }
      if (shown.length === 0) io.out(`ok: ${checked.length} board(s) checked: ${checked.join(', ')}\n`);
      else io.err(shown.map(formatFinding).join('\n') + `\n${shown.length} finding(s)\n`);
    }
    if (shown.length > 0) process.exitCode = 1;
  });

  withDirs(
    boards
      .command('new')
      .argument('<id>', 'id of the new board (lower case, digits, dashes)')
      .requiredOption('--from <existing>', 'board to copy (a sibling with the same SoC)')
      .option('--name <name>', 'human name of the new board')
      .option('-f, --force', 'overwrite an existing file')
      .option('--dtb <file>', "the new board's tree in the kernel package's dtb directory (e.g. broadcom/bcm2711-rpi-cm4-io.dtb): set as devicetree.dtb; its compatible and model name the board, and the modules it asks for are proposed")
      .option('--card <node>', "the device-tree path of the card's controller (boot.card), e.g. /emmc2bus/mmc@7e340000")
      .option('-o, --out <dir>', "with --dtb: the build output directory whose lock file pins the sibling's kernel package", 'out')
      .option('--offline', 'with --dtb: use only the cache')
      .description('scaffold a new board profile from a sibling; the result passes boards check')
      .addHelpText('after', '\nExamples:\n  $ nodeos-bsp boards new rpi3b-custom --from rpi3b --name "My Pi 3 carrier"\n  $ nodeos-bsp boards new cm4-io --from rpi4b --dtb broadcom/bcm2711-rpi-cm4-io.dtb --card /emmc2bus/mmc@7e340000\n  $ nodeos-bsp boards new rockpie --from rock64 --dtb rockchip/rk3328-rock-pi-e.dtb --card /mmc@ff500000\n  $ nodeos-bsp boards check rpi3b-custom'),
  ).action(async (id: string, o: DirOpts & { from: string; name?: string; force?: boolean; dtb?: string; card?: string; out: string; offline?: boolean }) => {
    if (o.dtb) {
      // What the new board's tree asks for, from the sibling's pinned kernel package.
      const r = await scaffoldBoardWithTree(id, o.from, { ...src(o), ...(o.name ? { name: o.name } : {}), force: Boolean(o.force), dtb: o.dtb, ...(o.card ? { card: o.card } : {}), lockPath: buildOutputs(o.out, o.from).lock, offline: Boolean(o.offline) });
      io.out(`created ${r.file}\n${proposalText(r.board, r.proposal, r.dep)}`);
    } else {
      io.out(`created ${scaffoldBoard(id, o.from, { ...src(o), ...(o.name ? { name: o.name } : {}), ...(o.card ? { card: o.card } : {}), force: Boolean(o.force) })}\n`);
    }
    io.out(`next: set detection.compatible and revisions, check the pin map, then run: nodeos-bsp boards check ${id}\n`);
  });

  withDirs(
    boards
      .command('modules')
      .argument('<id>', 'board id')
      .description("the kernel modules the board's device tree asks for (its card, its functions, every other enabled node), from its pinned kernel package, against kernel.modules")
      .option('-o, --out <dir>', 'the build output directory whose lock file pins the kernel package', 'out')
      .option('--offline', 'use only the cache')
      .option('--json', 'the proposal as JSON')
      .addHelpText(
        'after',
        `
The board's DTB (devicetree.dtb with its overlays) and the kernel package's own tables (depmod over
its modules, and the compatibles built into its image) say which module drives each node: the
card's closure (stage 1 loads it), each function the profile claims, and every other enabled
node. Modules the profile's kernel.modules lacks are listed as proposals; a build adds the card's
and the functions' by itself (the boot model), the others only if the profile names them.

Examples:
  $ nodeos-bsp boards modules rpi4b
  $ nodeos-bsp boards modules rpi5b --json`,
      ),
  ).action(async (id: string, o: DirOpts & { out: string; offline?: boolean; json?: boolean }) => {
    const board = getBoard(id, src(o)).profile;
    const m = await boardModules(board, { lockPath: buildOutputs(o.out, id).lock, offline: Boolean(o.offline), ...(o.boardsDir ? { boardsDir: o.boardsDir } : {}) });
    if (o.json) return json(io, { board: id, release: m.release, ...m.proposal, missing: missingModules(board, m.proposal, m.dep) });
    io.out(proposalText(board, m.proposal, m.dep));
  });

  boards
    .command('schema')
    .description('write the JSON Schema of a profile file (for editors)')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .addHelpText('after', '\nExamples:\n  $ nodeos-bsp boards schema -o board-profile.schema.json')
    .action((o: { output?: string }) => {
      const text = schemaText();
      if (o.output) writeFileSync(o.output, text);
      else io.out(text);
    });

  withDirs(
    program
      .command('pinout')
      .description('draw the GPIO header of a board (gpiozero-style), no hardware needed')
      .option('-b, --board <id>', 'board id (default: detect the board this runs on)')
      .option('--json', 'pins as JSON')
      .option('--no-info', 'only the header, no board summary')
      .option('--color', 'force colours')
      .addHelpText('after', '\nExamples:\n  $ nodeos-bsp pinout --board rpi3b\n  $ nodeos-bsp pinout --board rpi4b --json'),
  ).action((o: DirOpts & { board?: string; json?: boolean; info: boolean; color?: boolean }) => {
    let profile: BoardProfile;
    if (o.board) profile = getBoard(o.board, src(o)).profile;
    else {
      const d = matchBoard(loadBoards(src(o)).boards, readIdentity());
      if (!d.board) throw new UsageError('cannot detect the board this runs on: pass --board <id> (see nodeos-bsp boards list)');
      profile = d.board.profile;
    }
    if (o.json) return json(io, { board: profile.id, header: profile.header?.name, pins: headerPins(profile) });
    io.out(renderPinout(profile, { info: o.info, color: Boolean(o.color) || io.color }));
  });
}
