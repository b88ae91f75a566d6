/**
 * A project file (`nodeos-bsp build --project nodeos.yaml`): what a firmware is made of, kept
 * next to the app in its repository instead of on the command line, as a Nerves project's
 * mix.exs is:
 *
 *   board: <board id>      # nodeos-bsp boards lists them
 *   apps:            # npm projects, relative to this file
 *     - .
 *     - ../door-opener
 *   sshKeys:         # public keys allowed to log in (relative to this file)
 *     - keys/deploy.pub
 *
 * Command-line flags add to it (--app, --ssh-key); a --board that differs is refused.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { BspError } from '../errors.js';

export interface Project {
  file: string;
  board?: string;
  /** Absolute app directories. */
  apps: string[];
  /** Absolute public key files. */
  sshKeys: string[];
}

const KEYS = ['board', 'apps', 'sshKeys'];

export function readProject(file: string): Project {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BspError('EPROJECT', `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new BspError('EPROJECT', `${file}: ${doc.errors[0]!.message}`);
  const data = doc.toJS() as unknown;
  const bad = (what: string): never => {
    throw new BspError('EPROJECT', `${file}: ${what}`);
  };
  if (!data || typeof data !== 'object' || Array.isArray(data)) bad('a project file is a mapping, e.g. "board: <board id>" and "apps: [.]"');
  const o = data as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) bad(`unknown key "${k}" (known: ${KEYS.join(', ')})`);
  if (o.board !== undefined && (typeof o.board !== 'string' || !o.board)) bad('"board" is a board id (nodeos-bsp boards lists them)');
  const dir = dirname(path);
  const paths = (key: 'apps' | 'sshKeys', kind: 'directory' | 'file'): string[] => {
    const v = o[key] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x)) bad(`"${key}" is a list of paths (relative to the project file)`);
    return (v as string[]).map((p) => {
      const abs = resolve(dir, p);
      if (!existsSync(abs) || statSync(abs).isDirectory() !== (kind === 'directory')) bad(`${key}: ${p} (${abs}) is not a ${kind}`);
      return abs;
    });
  };
  return { file: path, ...(o.board !== undefined ? { board: o.board as string } : {}), apps: paths('apps', 'directory'), sshKeys: paths('sshKeys', 'file') };
}
