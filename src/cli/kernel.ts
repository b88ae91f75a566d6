/** `kernel check`, `kernel config` and `kernel build`. */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { Cache, fetchArtifacts } from '../artifacts/index.js';
import { getBoard } from '../boards/index.js';
import { UsageError } from '../errors.js';
import { boardKernelConfig, buildKernel, checkKernelConfig, kernelSourceOf, mergeKernelConfig, runningKernelConfig, withKernelSource } from '../kernel/index.js';
import { buildOutputs } from '../image/index.js';
import { json, type Io } from './output.js';

export function registerKernel(program: Command, io: Io): void {
  const kernel = program
    .command('kernel')
    .description('check a kernel config against a board, or merge config fragments')
    .addHelpText(
      'after',
      `
Examples:
  $ nodeos-bsp kernel check --board rpi3b --config ./config-6.12.117+deb13-arm64
  $ nodeos-bsp kernel config --board rpi3b --base arch/arm64/configs/defconfig -o .config
  $ nodeos-bsp kernel build --board rpi3b`,
    );

  kernel
    .command('check')
    .description("tell whether a kernel config meets the board's fragments (exit 1 when not)")
    .requiredOption('-b, --board <id>', 'board id')
    .option('-c, --config <file>', 'kernel .config (default: /boot/config-$(uname -r))')
    .option('--package', "check the config of the kernel the board's build uses: Debian's package (downloaded and verified) or, for kernel.source: build, the kit's (built unless cached)")
    .option('-o, --out <dir>', 'with --package: the build output directory whose lock file pins the kernel', 'out')
    .option('--lock <file>', 'with --package: the lock file (default <out>/nodeos-<board>.lock.json)')
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
  $ nodeos-bsp kernel check --board rpi3b --package --out build/rpi3b
  $ nodeos-bsp kernel check --board rpi5b --config /boot/config-$(uname -r) --json`,
    )
    .action(async (o: { board: string; config?: string; package?: boolean; out: string; lock?: string; kernelConfigsDir?: string; boardsDir?: string; json?: boolean }, cmd: Command) => {
      const board = getBoard(o.board, o.boardsDir ? { boardsDir: o.boardsDir } : {}).profile;
      if (o.package && o.config) throw new UsageError('--package and --config name two configs: pass one');
      if (!o.package && (o.lock || cmd.getOptionValueSource('out') === 'cli')) throw new UsageError('--out and --lock say where the lock of --package is: add --package, or drop them');
      // The lock a build into --out writes and reads, so the check is of the same kernel.
      const onStep = (s: string): void => void (o.json ? undefined : io.err(`kernel build: ${s}...\n`));
      const config = o.package ? await boardKernelConfig(board, { lockPath: o.lock ?? buildOutputs(o.out, board.id).lock, onStep }) : (o.config ?? runningKernelConfig());
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

  kernel
    .command('build')
    .description("build the board's own kernel from Debian's linux-source and the board's fragments (cached)")
    .requiredOption('-b, --board <id>', 'board id')
    .option('-j, --jobs <n>', 'parallel compile jobs (default: the number of CPUs)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`--jobs ${v}: give a whole number of jobs, at least 1`);
      return n;
    })
    .option('-o, --out <dir>', 'output directory of the lock file', 'out')
    .option('--lock <file>', 'lock file pinning the source package (default <out>/nodeos-<board>.lock.json)')
    .option('--offline', 'use only the cache; fail clearly if the source package is not there')
    .option('--suite <name>', "Debian suite of the board's build (as build --suite), whose linux-source is built", 'trixie')
    .option('--cache-dir <dir>', 'cache (default $NODEOS_BSP_CACHE or $XDG_CACHE_HOME/nodeos-bsp)')
    .option('--kernel-configs-dir <dir>', "fragments directory (default: the kit's kernel-configs/)")
    .option('--boards-dir <dir>', "board profiles directory (default: the kit's boards/)")
    .option('--make-log', "print make's output as it runs (the end of it is in any failure's message anyway)")
    .option('--json', 'machine-readable result')
    .addHelpText(
      'after',
      `
The configuration is allnoconfig, then kernel-configs/source/build.config, then the board's
fragments with every module built in: no module is loaded at boot. A fragment setting that
does not survive "make olddefconfig" (a dependency is off) fails the build [EKERNEL_CONFIG].
The kernel is cached by source package, fragments and compiler; an image uses it when the
profile says kernel.source: build, or with nodeos-bsp build --kernel build.
Needs: make flex bison bc gcc gcc-aarch64-linux-gnu (apt-get install them).

Examples:
  $ nodeos-bsp kernel build --board rpi3b
  $ nodeos-bsp kernel build --board qemu-virt --jobs 2 --make-log
  $ nodeos-bsp build --board rpi3b --kernel build`,
    )
    .action(
      async (o: { board: string; jobs?: number; out: string; lock?: string; offline?: boolean; suite: string; cacheDir?: string; kernelConfigsDir?: string; boardsDir?: string; makeLog?: boolean; json?: boolean }) => {
        const board = withKernelSource(getBoard(o.board, o.boardsDir ? { boardsDir: o.boardsDir } : {}).profile, 'build');
        const cache = new Cache(o.cacheDir);
        const a = await fetchArtifacts(board, { cache, suite: o.suite, offline: Boolean(o.offline), lockPath: o.lock ?? buildOutputs(o.out, board.id).lock });
        const t = Date.now();
        const k = await buildKernel(board, {
          cache,
          source: kernelSourceOf(a),
          ...(o.jobs ? { jobs: o.jobs } : {}),
          ...(o.kernelConfigsDir ? { kernelConfigsDir: o.kernelConfigsDir } : {}),
          ...(o.makeLog ? { onLine: (l: string) => io.err(l + '\n') } : {}),
          ...(o.json ? {} : { onStep: (s: string) => io.err(`${s}...\n`) }),
        });
        if (o.json) return json(io, { ...k.info, root: k.root, cached: k.cached, key: k.key, seconds: (Date.now() - t) / 1000 });
        const mib = (k.info.imageBytes / 1048576).toFixed(1);
        io.out(
          `${k.cached ? 'cached' : `built in ${k.info.buildSeconds} s`}: ${board.id}'s kernel ${k.release} from ${k.info.source.package} ${k.info.source.version}\n` +
            `  Image ${mib} MiB, ${k.info.builtinModules} drivers built in, ${k.info.dtbs.length ? k.info.dtbs.join(' ') : 'no DTB'}\n  ${k.root}\n`,
        );
      },
    );
}
