/**
 * Kernel `.config` and fragment files: parse, check a config against fragments, and merge
 * fragments onto a base the way `scripts/kconfig/merge_config.sh -m` does.
 */
import { readFileSync } from 'node:fs';
import { KernelConfigError } from '../errors.js';

/** One setting in a config or fragment. `value` is undefined for `# CONFIG_X is not set`. */
export interface ConfigSetting {
  symbol: string;
  value: string | undefined;
  /** 1-based line number in its file. */
  line: number;
  /** The comment lines right above it (why it is needed). */
  why: string;
  /** Module that provides the symbol when built as `=m` (`[module: name]` in the comment; `a|b`: either name). */
  module?: string;
  /**
   * Modules that are parts of this one when it is built in (`[built in with it: a, b]`):
   * brcmfmac=y links its vendor parts, which =m makes brcmfmac-wcc.ko and the like.
   */
  builtInWith?: string[];
}

/** A parsed config or fragment file. */
export interface ConfigFile {
  file: string;
  settings: ConfigSetting[];
}

const SET_RE = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET_RE = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;
/** `[module: name]`, or `[module: a|b]` when kernels name the module differently (6.12's crc32c_generic is 7.x's crc32c-cryptoapi). */
const MODULE_RE = /\[module: ([A-Za-z0-9_|-]+)\]/;
const BUILT_IN_WITH_RE = /\[built in with it: ([A-Za-z0-9_, -]+)\]/;

/** Parse Kconfig text; lines that are neither settings nor comments are errors. */
export function parseConfig(text: string, file: string): ConfigFile {
  const settings: ConfigSetting[] = [];
  let why: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    const set = SET_RE.exec(line);
    const unset = UNSET_RE.exec(line);
    if (set || unset) {
      const comment = why.join(' ');
      const mod = MODULE_RE.exec(comment)?.[1];
      const parts = BUILT_IN_WITH_RE.exec(comment)?.[1]?.split(/,\s*/).filter(Boolean);
      settings.push({
        symbol: (set ?? unset)![1]!,
        value: set ? set[2] : undefined,
        line: i + 1,
        why: comment.replace(MODULE_RE, '').replace(BUILT_IN_WITH_RE, '').replace(/\s+/g, ' ').trim(),
        ...(mod ? { module: mod } : {}),
        ...(parts?.length ? { builtInWith: parts } : {}),
      });
      why = [];
    } else if (line.startsWith('#')) {
      why.push(line.replace(/^#\s?/, ''));
    } else if (line.trim() === '') {
      why = [];
    } else {
      throw new KernelConfigError('EKCONFIG_SYNTAX', `${file}:${i + 1}: not a Kconfig setting or comment: "${line}"`);
    }
  });
  return { file, settings };
}

/** Read and parse a config file from disk. */
export function readConfig(path: string, name = path): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KernelConfigError('EKCONFIG_READ', `cannot read kernel config ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, name);
}

/** Symbol -> value (undefined = explicitly not set); later settings win. */
export function configValues(cfg: ConfigFile): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const s of cfg.settings) m.set(s.symbol, s.value);
  return m;
}

/** A fragment requirement the config does not meet. */
export interface UnmetSymbol {
  symbol: string;
  wanted: string;
  /** What the config has: a value, 'is not set', or 'absent'. */
  actual: string;
  fragment: string;
  line: number;
  why: string;
  /** Set when the config builds it as a module the board does not ship. */
  hint?: string;
}

/** Result of checking a config against a board's fragments. */
export interface KernelCheckResult {
  ok: boolean;
  checked: number;
  unmet: UnmetSymbol[];
}

/**
 * Check `config` against `fragments`. `=y` is met by `y`, or by `m` when the fragment names
 * the module and `shippedModules` contains it; `=m` is met by `m` or `y`; `is not set` by
 * anything but `y`/`m`; other values must match exactly. Later fragments win.
 */
export function checkConfig(config: ConfigFile, fragments: ConfigFile[], shippedModules: Iterable<string>): KernelCheckResult {
  const have = configValues(config);
  const shipped = new Set([...shippedModules].map(normalizeModule));
  const wanted = new Map<string, { s: ConfigSetting; fragment: string }>();
  for (const f of fragments) for (const s of f.settings) wanted.set(s.symbol, { s, fragment: f.file });
  const unmet: UnmetSymbol[] = [];
  for (const { s, fragment } of wanted.values()) {
    const actual = have.get(s.symbol);
    const actualText = have.has(s.symbol) ? (actual ?? 'is not set') : 'absent';
    const fail = (hint?: string): void => {
      unmet.push({ symbol: s.symbol, wanted: s.value ?? 'is not set', actual: actualText, fragment, line: s.line, why: s.why, ...(hint ? { hint } : {}) });
    };
    if (s.value === undefined) {
      if (actual === 'y' || actual === 'm') fail();
    } else if (s.value === 'y') {
      if (actual === 'y') continue;
      if (actual === 'm' && s.module && s.module.split('|').some((m) => shipped.has(normalizeModule(m)))) continue;
      if (actual === 'm') {
        fail(s.module ? `built as module ${s.module.split('|').join(' or ')}: add it to the board's kernel.modules` : 'built as a module; the fragment names no [module: ...] the board could ship');
      } else fail();
    } else if (s.value === 'm') {
      if (actual !== 'm' && actual !== 'y') fail();
    } else if (actual !== s.value) fail();
  }
  return { ok: unmet.length === 0, checked: wanted.size, unmet };
}

/** Module names treat `-` and `_` alike, as modprobe does. */
export const normalizeModule = (name: string): string => name.replace(/-/g, '_');

/** Merge result: the merged text and one warning per overridden value. */
export interface MergeResult {
  text: string;
  warnings: string[];
}

/**
 * Merge fragments onto a base like `merge_config.sh -m`: for each fragment setting, drop
 * the symbol's earlier line and append the fragment; warn when a value changes.
 */
export function mergeConfigs(base: { file: string; text: string }, fragments: { file: string; text: string }[]): MergeResult {
  parseConfig(base.text, base.file);
  let lines = base.text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const warnings: string[] = [];
  const current = configValues(parseConfig(lines.join('\n'), base.file));
  for (const frag of fragments) {
    const parsed = parseConfig(frag.text, frag.file);
    const symbols = new Set(parsed.settings.map((s) => s.symbol));
    for (const s of parsed.settings) {
      if (current.has(s.symbol)) {
        const prev = current.get(s.symbol);
        if (prev !== s.value) {
          warnings.push(
            `Value of ${s.symbol} is redefined by fragment ${frag.file}:\nPrevious value: ${render(s.symbol, prev)}\nNew value:      ${render(s.symbol, s.value)}`,
          );
        }
      }
      current.set(s.symbol, s.value);
    }
    lines = lines.filter((l) => {
      const m = SET_RE.exec(l) ?? UNSET_RE.exec(l);
      return !(m && symbols.has(m[1]!));
    });
    const fl = frag.text.split('\n');
    if (fl.at(-1) === '') fl.pop();
    lines.push(...fl);
  }
  return { text: lines.join('\n') + '\n', warnings };
}

function render(symbol: string, value: string | undefined): string {
  return value === undefined ? `# ${symbol} is not set` : `${symbol}=${value}`;
}
