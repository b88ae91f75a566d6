/**
 * fw_printenv and fw_setenv as libubootenv's tools (Debian's libubootenv-tool) behave: the
 * same options (getopt_long: "Vc:f:s:nh", options anywhere among the names), the same
 * output, messages and exit codes, on the same fw_env.config. One function for both, told
 * apart by the program name as libubootenv's single binary is by its argv[0].
 *
 *   fw_printenv [-c CONFIG] [-f DEFAULTS] [-n] [NAME...]
 *   fw_setenv   [-c CONFIG] [-f DEFAULTS] [-s SCRIPT] [NAME [VALUE] ...]

 */
import { readFileSync } from 'node:fs';
import { parseFwEnvConfig, type EnvConfig } from './config.js';
import type { EnvVars } from './format.js';
import { readEnv, writeEnv, type EnvReadResult } from './store.js';

export const TOOLS_VERSION = '0.3.2';
const DEFAULT_CONFIG = '/etc/fw_env.config';
const DEFAULT_ENV = '/etc/u-boot-initial-env';

export interface ToolIo {
  out(text: string): void;
  err(text: string): void;
  /** Read a file ("-" is standard input, for -s). */
  read(path: string): Buffer;
}

const processIo: ToolIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  read: (p) => readFileSync(p === '-' ? 0 : p),
};

/** libubootenv's exit codes: its negative errno, as the shell sees it. */
const EXIT = { EBADF: 247, EACCES: 243, ENOMEM: 244, EIO: 251 } as const;

interface Parsed {
  config?: string;
  defaults?: string;
  script?: string;
  noHeader: boolean;
  help: boolean;
  version: boolean;
  args: string[];
}

/** GNU getopt_long over "Vc:f:s:nh" and its long names; bad options are said and skipped, as getopt's callers here do. */
function getopt(program: string, argv: string[], io: ToolIo): Parsed {
  const p: Parsed = { noHeader: false, help: false, version: false, args: [] };
  const long: Record<string, string> = { version: 'V', 'no-header': 'n', help: 'h', config: 'c', defenv: 'f', script: 's' };
  const withArg = new Set(['c', 'f', 's']);
  const set = (c: string, v?: string): void => {
    if (c === 'c') p.config = v;
    else if (c === 'f') p.defaults = v;
    else if (c === 's') p.script = v;
    else if (c === 'n') p.noHeader = true;
    else if (c === 'h') p.help = true;
    else if (c === 'V') p.version = true;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      p.args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      const matches = Object.keys(long).filter((k) => k.startsWith(name));
      const exact = long[name] ? name : matches.length === 1 ? matches[0] : undefined;
      if (!exact) {
        io.err(matches.length > 1 ? `${program}: option '--${name}' is ambiguous\n` : `${program}: unrecognized option '--${name}'\n`);
        continue;
      }
      const c = long[exact]!;
      if (withArg.has(c)) {
        const v = inline ?? argv[++i];
        if (v === undefined) io.err(`${program}: option '--${exact}' requires an argument\n`);
        else set(c, v);
      } else if (inline !== undefined) io.err(`${program}: option '--${exact}' doesn't allow an argument\n`);
      else set(c);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        if (!'Vcfsnh'.includes(c)) {
          io.err(`${program}: invalid option -- '${c}'\n`);
          continue;
        }
        if (withArg.has(c)) {
          const v = j + 1 < a.length ? a.slice(j + 1) : argv[++i];
          if (v === undefined) io.err(`${program}: option requires an argument -- '${c}'\n`);
          else set(c, v);
          break;
        }
        set(c);
      }
      continue;
    }
    p.args.push(a);
  }
  return p;
}

function usage(program: string, setenv: boolean): string {
  return (
    `${program} (nodeos-bsp uboot-env)\nUsage ${program} [OPTION]\n` +
    ' -h,                              : print this help\n' +
    ' -c, --config <filename>          : configuration file (old fw_env.config)\n' +
    ' -f, --defenv <filename>          : default environment if no one found\n' +
    ' -V,                              : print version and exit\n' +
    (setenv
      ? ' -s, --script <filename>          : read variables to be set from a script\n\nScript Syntax:\n key=value\n lines starting with \'#\' are treated as comment\n lines without \'=\' are ignored\n\nScript Example:\n netdev=eth0\n kernel_addr=400000\n foo=empty empty empty    empty empty empty\n bar\n\n'
      : ' -n, --no-header                  : do not print variable name\n')
  );
}

/** libubootenv's script and default-file rules: name=value lines, '#' comments, lines without '=' ignored, an empty value unsets. */
export function applyEnvFile(vars: EnvVars, text: string): void {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[\r\n]+$/, '');
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const value = line.slice(eq + 1);
    if (value) vars.set(line.slice(0, eq), value);
    else vars.delete(line.slice(0, eq));
  }
}

const sorted = (vars: EnvVars): [string, string][] => [...vars].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** Run fw_printenv or fw_setenv (`program`, as argv[0] names it); returns the exit code. */
export function fwEnvTool(program: string, argv: string[], io: ToolIo = processIo): number {
  const setenv = program.replace(/^.*\//, '') === 'fw_setenv';
  const o = getopt(program.replace(/^.*\//, ''), argv, io);
  if (o.version) {
    io.out(`${TOOLS_VERSION}\n`);
    return 0;
  }
  if (o.help) {
    io.out(usage(program.replace(/^.*\//, ''), setenv));
    return 0;
  }
  let config: EnvConfig;
  try {
    config = parseFwEnvConfig(io.read(o.config ?? DEFAULT_CONFIG).toString('utf8'));
  } catch {
    io.err('Configuration file wrong or corrupted\n');
    return EXIT.EBADF;
  }
  // An empty default stands for "none valid": the result still says which copy and padding to write.
  let read: EnvReadResult | undefined;
  try {
    read = readEnv(config, { default: new Map() });
  } catch {
    read = undefined;
  }
  let vars: EnvVars = new Map(read?.vars);
  let usedDefault = false;
  if (!read || read.usedDefault) {
    io.err('Cannot read environment, using default\n');
    vars = new Map();
    try {
      applyEnvFile(vars, io.read(o.defaults ?? DEFAULT_ENV).toString('utf8'));
    } catch {
      io.err('Cannot read default environment from file\n');
      return EXIT.EACCES;
    }
    usedDefault = true;
  }
  if (!setenv) {
    if (!o.args.length) io.out(sorted(vars).map(([k, v]) => `${k}=${v}\n`).join(''));
    for (const name of o.args) io.out(o.noHeader ? `${vars.get(name) ?? ''}\n` : `${name}=${vars.get(name) ?? ''}\n`);
    return 0;
  }
  let changed = false;
  if (o.script !== undefined) {
    try {
      applyEnvFile(vars, io.read(o.script).toString('utf8'));
    } catch {
      // libubootenv stores what it has even when the script cannot be read.
    }
    changed = true;
  } else {
    for (let i = 0; i < o.args.length; i += 2) {
      const name = o.args[i]!;
      if (name.includes('=')) {
        io.err(`Error: illegal character '=' in variable name "${name}"\n`);
        return 1;
      }
      const value = o.args[i + 1];
      if (value === undefined || value === '') {
        if (vars.delete(name)) changed = true;
      } else if (vars.get(name) !== value) {
        vars.set(name, value);
        changed = true;
      }
    }
  }
  if (!changed && !usedDefault) return 0;
  try {
    writeEnv(config, sorted(vars), read);
  } catch (err) {
    io.err('Error storing the env\n');
    return (err as { code?: string }).code === 'EENV_FULL' ? EXIT.ENOMEM : EXIT.EIO;
  }
  return 0;
}
