/** The text form of an environment: what `printenv` shows and `mkenvimage` reads. */
import { EnvError } from '../errors.js';
import { bytesToText, encodeData, sealBlock, type EnvVars } from './format.js';

/**
 * Turn text into environment data exactly as `mkenvimage` does, byte by byte: one
 * `name=value` per line, blank lines skipped, `#` in column 1 starts a comment, and a
 * trailing backslash becomes an embedded newline. Returns the data area contents ending
 * with the double NUL. Stricter than mkenvimage in one way: a line without `=` (or with an
 * empty name) is EENV_FORMAT instead of being copied in.
 */
export function textToData(input: Uint8Array): Buffer {
  const src = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const NL = 0x0a;
  const out: number[] = [];
  for (let fp = 0; fp < src.length; fp++) {
    const c = src[fp]!;
    const lineStart = fp === 0 || src[fp - 1] === NL;
    if (c === NL) {
      if (lineStart) continue; // blank line
      if (src[fp - 1] === 0x5c) out[out.length - 1] = NL; // "\" + newline: embedded newline
      else out.push(0);
    } else if (lineStart && c === 0x23) {
      while (fp + 1 < src.length && src[fp + 1] !== NL) fp++;
      fp++; // the comment's newline
    } else out.push(c);
  }
  // An empty input is one NUL, as mkenvimage writes it; otherwise the last entry's NUL plus the terminator.
  if (out.length > 0) {
    if (out[out.length - 1] !== 0) out.push(0);
    out.push(0);
  } else out.push(0);
  const data = Buffer.from(out);
  checkData(data);
  return data;
}

/** Every entry of encoded data must be `name=value` with a non-empty name. */
function checkData(data: Buffer): void {
  let pos = 0;
  while (pos < data.length && data[pos] !== 0) {
    const end = data.indexOf(0, pos);
    const entry = bytesToText(data, pos, end);
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      const line = entry.split('\n')[0] ?? '';
      throw new EnvError('EENV_FORMAT', `line ${JSON.stringify(line.slice(0, 60))} is not name=value: every line needs a name, "=", and a value (which may be empty)`);
    }
    pos = end + 1;
  }
}

/** Parse text (mkenvimage rules) into variables in order; later duplicates win. */
export function fromText(text: string | Uint8Array): EnvVars {
  const data = textToData(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  const vars: EnvVars = new Map();
  let pos = 0;
  while (pos < data.length && data[pos] !== 0) {
    const end = data.indexOf(0, pos);
    const entry = bytesToText(data, pos, end);
    const eq = entry.indexOf('=');
    vars.set(entry.slice(0, eq), entry.slice(eq + 1));
    pos = end + 1;
  }
  return vars;
}

/** `name=value` lines, like printenv. */
export function toText(vars: Iterable<[string, string]>): string {
  let s = '';
  for (const [k, v] of vars) s += `${k}=${v}\n`;
  return s;
}

/** Options of {@link createImage}, named after mkenvimage's flags. */
export interface CreateImageOptions {
  /** -s: block size in bytes. */
  size: number;
  /** -r: add the redundant flags byte (set to 1). */
  redundant?: boolean;
  /** -p: padding byte. Default 0xff, as mkenvimage. */
  pad?: number;
}

/** The same bytes `mkenvimage` writes for the same text and options. */
export function createImage(text: Uint8Array | string, o: CreateImageOptions): Buffer {
  const data = textToData(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  return sealBlock(data, { size: o.size, redundant: o.redundant ?? false, flags: 1, pad: o.pad ?? 0xff });
}

export { encodeData };

/**
 * A `fw_setenv -s` script, in either tool's form: `name value` (U-Boot's fw_setenv: the
 * first blank separates them) or `name=value` (libubootenv's), decided per line by which
 * comes first, `=` or a blank. A bare `name` or `name=` deletes; blank lines and lines
 * starting with `#` are skipped.
 */
export function parseScript(text: string): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trimStart();
    if (!line.trim() || line.startsWith('#')) continue;
    const m = /^([^\s=]*)(=|[ \t]+|$)(.*)$/s.exec(line)!;
    if (m[1] === '') throw new EnvError('EENV_FORMAT', `script line ${JSON.stringify(line.slice(0, 60))} has no variable name`);
    const value = m[2] === '=' ? m[3]! : m[3]!.trim() ? m[3]! : '';
    out.push([m[1]!, value === '' ? undefined : value]);
  }
  return out;
}
