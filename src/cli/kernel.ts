/** `kernel check` and `kernel config`. */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { fetchArtifacts } from '../artifacts/index.js';
import { getBoard, type BoardProfile } from '../boards/index.js';
import { BspError, UsageError } from '../errors.js';
import { checkKernelConfig, mergeKernelConfig } from '../kernel/index.js';
import { json, type Io } from './output.js';

/** The running kernel's config, where Debian puts it. */
function runningKernelConfig(): string {
  const p = `/boot/config-${release()}`;
  if (!existsSync(p)) throw new UsageError(`no --config given and ${p} does not exist: pass --config <kernel .config>`);
  return p;
}

/**
 * The config inside the kernel package a build of the board uses: fetched and verified like
 * a build's (same cache, same lock file in out/), so the check is about what gets shipped.
 */
async function packageKernelConfig(board: BoardProfile): Promise<string> {
  const a = await fetchArtifacts(board, { lockPath: join('out', `nodeos-${board.id}.lock.json`) });
  const boot = join(a.debs.kernel, 'boot');
  const name = existsSync(boot) ? readdirSync(boot).find((f) => f.startsWith('config-')) : undefined;
  if (!name) throw new BspError('EARTIFACT', `the kernel package ${a.lock.debian.kernel?.package ?? ''} has no boot/config-*`);
  return join(boot, name);
}

export function registerKernel(program: Command, io: Io): void {
  const kernel = program
    .command('kernel')
    .description('check a kernel config against a board, or merge config fragments')
    .addHelpText(
      'after',
      `
Examples:
  $ nodeos-bsp kernel check --board rpi3b --config ./config-6.12.117+deb13-arm64
  $ nodeos-bsp kernel config --board rpi3b --base arch/arm64/configs/defconfig -o .config`,
    );

  kernel
    .command('check')
    .description("tell whether a kernel config meets the board's fragments (exit 1 when not)")
    .requiredOption('-b, --board <id>', 'board id')
    .option('-c, --config <file>', 'kernel .config (default: /boot/config-$(uname -r))')
    .option('--package', "check the config of the kernel package the board's build uses (downloaded and verified, cached)")
    .option('--kernel-configs-dir <dir>', "fragments directory (default: the kit's kernel-configs/)")
    .option('--boards-dir <dir>', "board profiles directory (default: the kit's boards/)")
    .option('--json', 'machine-readable result')
    .addHelpText(
      'after',
      `
A "=y" requirement is also met by "=m" when the fragment names the module ([module: x])
and the board ships it in kernel.modules.

Examples:
  $ nodeos-bsp kernel check --board rpi3b --config test/fixtures/config-6.12.117+deb13-arm64
  $ nodeos-bsp kernel check --board rpi4b --package
  $ nodeos-bsp kernel check --board rpi5b --config /boot/config-$(uname -r) --json`,
    )
    .action(async (o: { board: string; config?: string; package?: boolean; kernelConfigsDir?: string; boardsDir?: string; json?: boolean }) => {
      const board = getBoard(o.board, o.boardsDir ? { boardsDir: o.boardsDir } : {}).profile;
      if (o.package && o.config) throw new UsageError('--package and --config name two configs: pass one');
      const config = o.package ? await packageKernelConfig(board) : (o.config ?? runningKernelConfig());
      const r = o.kernelConfigsDir ? checkKernelConfig(board, config, o.kernelConfigsDir) : checkKernelConfig(board, config);
      if (o.json) json(io, { board: board.id, config, ...r });
      else if (r.ok) io.out(`ok: ${config} meets all ${r.checked} settings of ${board.id}'s fragments\n`);
      else {
        for (const u of r.unmet) {
          io.err(`${u.symbol}: want ${u.wanted}, have ${u.actual} (kernel-configs/${u.fragment}:${u.line}${u.why ? `: ${u.why}` : ''})${u.hint ? `; ${u.hint}` : ''}\n`);
        }
        io.err(`${r.unmet.length} of ${r.checked} settings unmet for ${board.id} [EKCONFIG_UNMET]\n`);
      }
      if (!r.ok) process.exitCode = 1;
    });

  kernel
    .command('config')
    .description("merge a base config with the board's fragments (like merge_config.sh -m)")
    .requiredOption('-b, --board <id>', 'board id')
    .requiredOption('--base <file>', 'base defconfig or .config')
    .requiredOption('-o, --output <file>', 'merged config to write')
    .option('--kernel-configs-dir <dir>', "fragments directory (default: the kit's kernel-configs/)")
    .option('--boards-dir <dir>', "board profiles directory (default: the kit's boards/)")
    .addHelpText(
      'after',
      `
Later fragments win; each overridden value is reported on stderr, as merge_config.sh does.
Run "make olddefconfig" on the result in the kernel tree to fill in dependencies.

Examples:
  $ nodeos-bsp kernel config --board rpi4b --base arch/arm64/configs/defconfig -o .config`,
    )
    .action((o: { board: string; base: string; output: string; kernelConfigsDir?: string; boardsDir?: string }) => {
      const board = getBoard(o.board, o.boardsDir ? { boardsDir: o.boardsDir } : {}).profile;
      const r = o.kernelConfigsDir ? mergeKernelConfig(board, o.base, o.kernelConfigsDir) : mergeKernelConfig(board, o.base);
      for (const w of r.warnings) io.err(w + '\n');
      writeFileSync(o.output, r.text);
      io.out(`wrote ${o.output} (${board.kernel.fragments.length} fragment(s), ${r.warnings.length} value(s) overridden)\n`);
    });
}
