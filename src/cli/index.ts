/** The `nodeos-bsp` command: a thin layer over the library in `src/`. */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { processIo, reportError, type Io } from './output.js';

const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };

type Register = (program: Command, io: Io) => void;

/**
 * Command groups, loaded on demand: `env` on the board should not pay for the profile
 * schema's start-up, nor `pinout` for the environment code.
 */
const GROUPS: Record<string, () => Promise<Register>> = {
  boards: async () => (await import('./boards.js')).registerBoards,
  pinout: async () => (await import('./boards.js')).registerBoards,
  kernel: async () => (await import('./kernel.js')).registerKernel,
  env: async () => (await import('./env.js')).registerEnv,
  docs: async () => (await import('./docs.js')).registerDocs,
  build: async () => (await import('./build.js')).registerBuild,
  fetch: async () => (await import('./build.js')).registerBuild,
  emulate: async () => (await import('./build.js')).registerBuild,
  flash: async () => (await import('./flash.js')).registerFlash,
  drives: async () => (await import('./flash.js')).registerFlash,
  repl: async () => (await import('./repl.js')).registerRepl,
  update: async () => (await import('./update.js')).registerUpdate,
  keys: async () => (await import('./update.js')).registerUpdate,
  deploy: async () => (await import('./deploy.js')).registerDeploy,
  settings: async () => (await import('./settings.js')).registerSettings,
  fleet: async () => (await import('./fleet.js')).registerFleet,
  completion: completionGroup,
  __complete: completionGroup,
};

/** Completion needs the whole program (every group) to walk. */
let completionRegister: Register | undefined;
async function completionGroup(): Promise<Register> {
  const { registerCompletion } = await import('./completion.js');
  return (completionRegister ??= (program, io) => registerCompletion(program, io, () => buildProgram(io, [])));
}

/** Build the program with the command groups `argv` needs (all of them for top-level help). */
export async function buildProgram(io: Io, argv: string[] = []): Promise<Command> {
  const program = new Command('nodeos-bsp')
    .version(version)
    .description('Board support kit for NodeOS: board profiles, kernel configs, images, flashing')
    .option('-v, --verbose', 'show stack traces on errors')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  $ nodeos-bsp build --board rpi3b            build out/nodeos-rpi3b.img
  $ nodeos-bsp emulate out/nodeos-rpi3b.img   boot it under QEMU
  $ nodeos-bsp boards                         list supported boards
  $ nodeos-bsp pinout --board rpi3b           draw the 40-pin header
  $ nodeos-bsp boards check                   validate every profile
  $ nodeos-bsp kernel check --board rpi3b --config /boot/config-6.12.117+deb13-arm64`,
    );
  const first = argv.find((a) => !a.startsWith('-'));
  const loaders = first && GROUPS[first] ? [GROUPS[first]] : Object.values(GROUPS);
  const registered = new Set<Register>();
  for (const load of loaders) {
    const register = await load();
    if (registered.has(register)) continue;
    registered.add(register);
    register(program, io);
  }
  for (const c of program.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
  }
  return program;
}

/** Edit distance (Levenshtein), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length]![b.length]!;
}

/** The known word nearest to `word`, if near enough to be a typo. */
export function closest(word: string, known: string[]): string | undefined {
  const [best] = known.map((k) => [k, distance(word, k)] as const).sort((x, y) => x[1] - y[1]);
  return best && best[1] <= Math.max(1, Math.floor(word.length / 3)) ? best[0] : undefined;
}

/** Run the CLI; sets process.exitCode instead of exiting. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  // An unknown command says so (even with --help, which would otherwise print the top-level help).
  const first = argv.find((a) => !a.startsWith('-'));
  if (first !== undefined && !GROUPS[first] && first !== 'help') {
    const near = closest(first, Object.keys(GROUPS));
    io.err(`nodeos-bsp: unknown command "${first}"${near ? ` (did you mean "${near}"?)` : ''}; nodeos-bsp --help lists the commands\n`);
    process.exitCode = 2;
    return 2;
  }
  const program = await buildProgram(io, argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exitCode 0.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
    } else {
      reportError(io, err, Boolean(program.opts().verbose) || argv.includes('--verbose') || argv.includes('-v'));
      // Bad usage found by a command itself (EUSAGE) is still bad usage. Matched by shape, as
      // reportError does: a loader may hold a second copy of the error classes.
      process.exitCode = (err as { code?: unknown } | null)?.code === 'EUSAGE' ? 2 : 1;
    }
  }
  return Number(process.exitCode ?? 0);
}
