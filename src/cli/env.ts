/** `env print`, `env set`, `env create`: fw_printenv, fw_setenv and mkenvimage, compatible. */
import { readFileSync } from 'node:fs';
import { replaceFileAtomically } from '../atomic-file.js';
import { Command } from 'commander';
import { EnvError, UsageError } from '../errors.js';
import {
  checkName,
  createImage,
  fileConfig,
  fromText,
  parseFwEnvConfig,
  parseScript,
  readEnv,
  updateEnv,
  type EnvChange,
  type EnvConfig,
} from '../uboot-env/index.js';
import { json, type Io } from './output.js';

interface WhereOpts {
  config?: string;
  file?: string;
  size: string;
  redundant?: boolean;
}

/** A C-style integer: 0x hex, leading-0 octal, or decimal (mkenvimage's xstrtol). */
export function parseCInt(text: string, what: string): number {
  const t = text.trim();
  let v = NaN;
  if (/^0x[0-9a-f]+$/i.test(t)) v = parseInt(t, 16);
  else if (/^0[0-7]+$/.test(t)) v = parseInt(t, 8);
  else if (/^\d+$/.test(t)) v = parseInt(t, 10);
  if (!Number.isSafeInteger(v)) throw new UsageError(`${what} "${text}" is not a number (use 0x4000 or 16384)`);
  return v;
}

function where(o: WhereOpts): EnvConfig {
  if (o.file && o.config) throw new UsageError('give --file or --config, not both');
  if (o.file) return fileConfig(o.file, parseCInt(o.size, '--size'), Boolean(o.redundant));
  const path = o.config ?? '/etc/fw_env.config';
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new EnvError('EENV_CONFIG', `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): pass --config <fw_env.config> or --file <uboot.env>`, { cause: err });
  }
  return parseFwEnvConfig(text);
}

const withWhere = (c: Command): Command =>
  c
    .option('-c, --config <file>', 'fw_env.config describing where the environment is (default /etc/fw_env.config)')
    .option('-f, --file <file>', 'an environment file such as uboot.env (instead of --config)')
    .option('--size <bytes>', 'environment size with --file', '0x4000')
    .option('-r, --redundant', 'with --file: two copies back to back (flags byte in each)')
    .option('--default <textfile>', 'name=value text to use when the stored environment is corrupt (never implicit)');

function defaults(path: string | undefined): { default?: Map<string, string> } {
  return path ? { default: fromText(readFileSync(path)) } : {};
}

const byName = (a: [string, string], b: [string, string]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

export function registerEnv(program: Command, io: Io): void {
  const env = program
    .command('env')
    .description('read, change and create U-Boot environments (fw_printenv / fw_setenv / mkenvimage compatible)')
    .addHelpText(
      'after',
      `
Examples:
  $ nodeos-bsp env print --file /boot/uboot.env
  $ nodeos-bsp env set --file /boot/uboot.env bootdelay=0 fdtfile=
  $ nodeos-bsp env create -s 0x4000 -o uboot.env uboot.txt`,
    );

  withWhere(
    env
      .command('print')
      .argument('[names...]', 'variables to print (default: all)')
      .description('print variables as name=value lines, sorted, like fw_printenv')
      .option('-n, --noheader', 'print only the value (one name)')
      .option('--json', 'variables, the copy used and its flags as JSON')
      .addHelpText(
        'after',
        `
Examples:
  $ nodeos-bsp env print --file out/boot/uboot.env
  $ nodeos-bsp env print --file uboot.env -n bootcmd
  $ nodeos-bsp env print --config /etc/fw_env.config --json
  $ nodeos-bsp env print -c fw_env.config --default defaults.txt    # corrupt env: use defaults.txt`,
      ),
  ).action((names: string[], o: WhereOpts & { noheader?: boolean; json?: boolean; default?: string }) => {
    if (o.noheader && names.length !== 1) throw new UsageError('-n needs exactly one variable name');
    const r = readEnv(where(o), defaults(o.default));
    if (r.usedDefault) io.err('Warning: bad environment, using the given default environment\n');
    for (const s of r.skipped ?? []) io.err(`Warning: skipped a stored entry that is not name=value: ${JSON.stringify(s.slice(0, 60))}\n`);
    for (const n of names) {
      if (!r.vars.has(n)) throw new EnvError('EENV_NOT_FOUND', `"${n}" is not defined in the environment`);
    }
    if (o.json) {
      return json(io, { vars: Object.fromEntries(r.vars), copy: r.copy, flags: r.flags ?? null, usedDefault: r.usedDefault });
    }
    if (o.noheader) return io.out(`${r.vars.get(names[0]!)}\n`);
    const entries = names.length ? names.map((n): [string, string] => [n, r.vars.get(n)!]) : [...r.vars].sort(byName);
    io.out(entries.map(([k, v]) => `${k}=${v}\n`).join(''));
  });

  withWhere(
    env
      .command('set')
      .argument('[assignments...]', 'name=value to set, name= to delete')
      .description('set or delete variables; a redundant environment gets its inactive copy rewritten')
      .option('-s, --script <file>', 'fw_setenv script: "name value" or "name=value" per line, a bare name deletes ("-" for stdin)')
      .addHelpText(
        'after',
        `
The environment is written sorted by name, as U-Boot's saveenv and fw_setenv write it.
Nothing is written when the result would not fit (EENV_FULL) or a name is invalid.

Examples:
  $ nodeos-bsp env set --file uboot.env bootdelay=0 'bootargs=console=ttyS1,115200 TERM=dumb'
  $ nodeos-bsp env set --file uboot.env bootdelay=          # delete
  $ nodeos-bsp env set -c fw_env.config -s changes.txt`,
      ),
  ).action((assignments: string[], o: WhereOpts & { script?: string; default?: string }) => {
    const changes: EnvChange[] = [];
    if (o.script) changes.push(...parseScript(readFileSync(o.script === '-' ? 0 : o.script, 'utf8')));
    for (const a of assignments) {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new UsageError(`"${a}" is not name=value (use name= to delete)`);
      checkName(a.slice(0, eq));
      changes.push([a.slice(0, eq), a.slice(eq + 1) || undefined]);
    }
    if (changes.length === 0) throw new UsageError('nothing to set: give name=value arguments or --script');
    const { plan } = updateEnv(where(o), changes, defaults(o.default));
    io.out(`wrote ${changes.length} change(s) to copy ${plan.copy}${plan.flags !== undefined ? ` (flags ${plan.flags})` : ''}\n`);
  });

  env
    .command('create')
    .argument('[input]', 'name=value text file, "-" or nothing for stdin')
    .description('create an environment image from text; the same bytes as mkenvimage')
    .requiredOption('-s, --size <bytes>', 'environment size (CONFIG_ENV_SIZE, 0x4000 on the Raspberry Pi)')
    .requiredOption('-o, --output <file>', 'image to write ("-" for stdout)')
    .option('-r, --redundant', 'add the flags byte of a redundant copy')
    .option('-p, --pad <byte>', 'padding byte (default 0xff, as mkenvimage)')
    .addHelpText(
      'after',
      `
Input rules (mkenvimage's): one name=value per line; blank lines skipped; "#" in column 1
is a comment; a trailing backslash continues the value on the next line (with a newline).
Unlike mkenvimage, a line without "=" is an error (EENV_FORMAT). Reading is lenient like
fw_printenv: a stored entry without "=" is skipped with a warning (and not written back).

Examples:
  $ nodeos-bsp env create -s 0x4000 -o uboot.env uboot.txt
  $ printf 'bootdelay=0\\n' | nodeos-bsp env create -s 16384 -r -p 0 -o env.bin -`,
    )
    .action((input: string | undefined, o: { size: string; output: string; redundant?: boolean; pad?: string }) => {
      const text = readFileSync(input === undefined || input === '-' ? 0 : input);
      const pad = o.pad === undefined ? 0xff : parseCInt(o.pad, '--pad') & 0xff;
      const image = createImage(text, { size: parseCInt(o.size, '--size'), redundant: Boolean(o.redundant), pad });
      if (o.output === '-') process.stdout.write(image);
      else writeAtomically(o.output, image);
    });
}

/** Write a new file via an exclusive temporary sibling and rename, so a failure leaves the old file. */
function writeAtomically(path: string, data: Buffer): void {
  try {
    replaceFileAtomically(path, data);
  } catch (err) {
    throw new EnvError('EENV_IO', `cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}
