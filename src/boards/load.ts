/**
 * Loading profiles: read every file under `boards/`, check each file against the file
 * schema, resolve `extends` chains (scalars override, lists change only by add/remove),
 * then check each resolved board against the full schema.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import type { ProfileFinding } from '../errors.js';
import { BoardProfileSchema, fileSchema, type BoardProfile } from './schema.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

/** A profile file as written, before `extends` is resolved. */
export interface ProfileFile {
  id: string;
  /** Path of the file, relative to the boards directory. */
  file: string;
  data: JsonObject;
}

/** A resolved profile plus where it came from. */
export interface ResolvedProfile {
  profile: BoardProfile;
  file: string;
  /** Files of the `extends` chain, the profile's own first. */
  chain: string[];
}

/** Everything found in a boards directory. */
export interface ProfileSet {
  dir: string;
  boards: ResolvedProfile[];
  /** Abstract (SoC/family) profiles, resolved but not validated as boards. */
  bases: ResolvedProfile[];
  findings: ProfileFinding[];
}

// Compiled on first use: the env and kernel commands never pay for the schema.
let validators: { file: ValidateFunction; board: ValidateFunction } | undefined;
function getValidators(): { file: ValidateFunction; board: ValidateFunction } {
  if (!validators) {
    const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
    validators = { file: ajv.compile(fileSchema()), board: ajv.compile(BoardProfileSchema) };
  }
  return validators;
}

function listProfileFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listProfileFiles(p));
    else if (/\.(ya?ml|json)$/.test(entry.name) && !entry.name.endsWith('.schema.json')) out.push(p);
  }
  return out.sort();
}

function schemaFindings(errors: ErrorObject[] | null | undefined, file: string, board?: string): ProfileFinding[] {
  const seen = new Set<string>();
  const out: ProfileFinding[] = [];
  const all = errors ?? [];
  // A list may also be written as {add, remove}; when the list form has a deeper error, the
  // other branch's "must be object" at the list itself is noise.
  const hasDeeper = (path: string): boolean => all.some((x) => x.instancePath.startsWith(`${path}/`));
  for (const e of all) {
    if (e.keyword === 'anyOf') continue;
    if (e.keyword === 'type' && hasDeeper(e.instancePath)) continue;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      message = `unknown field "${String(e.params.additionalProperty)}": remove it or fix its spelling (see nodeos-bsp boards schema)`;
    } else if (e.keyword === 'required') {
      message = `missing field "${String(e.params.missingProperty)}": add it here or in the profile it extends`;
    } else if (e.keyword === 'enum' || e.keyword === 'const') {
      message = `${message} ${JSON.stringify(e.params.allowedValues ?? e.params.allowedValue)}`;
    }
    const key = `${e.instancePath}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ code: 'EPROFILE_SCHEMA', file, path: e.instancePath, message, ...(board ? { board } : {}) });
  }
  return out;
}

/** Read and parse the profile files of `dir`; parse and file-schema errors become findings. */
export function readProfileFiles(dir: string): { files: ProfileFile[]; findings: ProfileFinding[] } {
  const files: ProfileFile[] = [];
  const findings: ProfileFinding[] = [];
  for (const path of listProfileFiles(dir)) {
    const file = relative(dir, path);
    let data: unknown;
    try {
      const text = readFileSync(path, 'utf8');
      if (path.endsWith('.json')) data = JSON.parse(text);
      else {
        const doc = parseDocument(text, { prettyErrors: true });
        if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('; '));
        data = doc.toJS();
      }
    } catch (err) {
      findings.push({ code: 'EPROFILE_PARSE', file, path: '', message: `cannot parse: ${(err as Error).message}` });
      continue;
    }
    const validateFile = getValidators().file;
    if (!validateFile(data)) {
      findings.push(...schemaFindings(validateFile.errors, file));
      continue;
    }
    const obj = data as JsonObject;
    files.push({ id: obj.id as string, file, data: obj });
  }
  return { files, findings };
}

const LIST_KEYS = ['id', 'pin', 'name', 'path'] as const;

function keyOf(item: Json): string | number | undefined {
  if (typeof item === 'string' || typeof item === 'number') return item;
  if (item && typeof item === 'object' && !Array.isArray(item)) {
    for (const k of LIST_KEYS) {
      const v = item[k];
      if (typeof v === 'string' || typeof v === 'number') return v;
    }
  }
  return undefined;
}

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const isListOp = (v: Json | undefined): v is JsonObject =>
  isObject(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k === 'add' || k === 'remove');

interface MergeCtx {
  file: string;
  board: string;
  findings: ProfileFinding[];
}

function mergeList(parent: Json[] | undefined, child: Json, path: string, ctx: MergeCtx): Json[] {
  if (Array.isArray(child)) {
    if (parent !== undefined && parent.length > 0) {
      ctx.findings.push({
        code: 'EPROFILE_LIST_OVERRIDE',
        file: ctx.file,
        path,
        board: ctx.board,
        message: 'this list replaces the inherited one; write { add: [...], remove: [...] } to change an inherited list',
      });
    }
    return child;
  }
  const op = child as JsonObject;
  const out = [...(parent ?? [])];
  for (const key of (op.remove as Json[] | undefined) ?? []) {
    const i = out.findIndex((item) => keyOf(item) === key);
    if (i < 0) {
      ctx.findings.push({
        code: 'EPROFILE_LIST_REMOVE',
        file: ctx.file,
        path: `${path}/remove`,
        board: ctx.board,
        message: `cannot remove ${JSON.stringify(key)}: the inherited list has no such entry`,
      });
    } else out.splice(i, 1);
  }
  for (const item of (op.add as Json[] | undefined) ?? []) {
    const key = keyOf(item);
    if (key !== undefined && out.some((x) => keyOf(x) === key)) {
      ctx.findings.push({
        code: 'EPROFILE_LIST_DUPLICATE',
        file: ctx.file,
        path: `${path}/add`,
        board: ctx.board,
        message: `${JSON.stringify(key)} is already in the inherited list; remove it first to replace it`,
      });
      continue;
    }
    out.push(item);
  }
  return out;
}

function merge(parent: JsonObject, child: JsonObject, path: string, ctx: MergeCtx): JsonObject {
  const out: JsonObject = { ...parent };
  for (const [k, v] of Object.entries(child)) {
    const p = `${path}/${k}`;
    const prev = parent[k];
    if (Array.isArray(v) || isListOp(v)) {
      out[k] = mergeList(Array.isArray(prev) ? prev : undefined, v, p, ctx);
    } else if (isObject(v) && isObject(prev)) {
      out[k] = merge(prev, v, p, ctx);
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** Strip `{add, remove}` list operations that had nothing to apply to (top of a chain). */
function finalizeLists(v: Json): Json {
  if (Array.isArray(v)) return v.map(finalizeLists);
  if (isListOp(v)) return ((v.add as Json[] | undefined) ?? []).map(finalizeLists);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, finalizeLists(x)]));
  return v;
}

/** Load, resolve and schema-check every profile under `dir`. */
export function loadProfiles(dir: string): ProfileSet {
  const { files, findings } = readProfileFiles(dir);
  const byId = new Map<string, ProfileFile>();
  for (const f of files) {
    const other = byId.get(f.id);
    if (other) {
      findings.push({
        code: 'EPROFILE_DUPLICATE_ID',
        file: f.file,
        path: '/id',
        message: `id "${f.id}" is already used by ${other.file}; give each profile its own id`,
      });
      continue;
    }
    byId.set(f.id, f);
  }

  const resolved = new Map<string, { data: JsonObject; chain: string[] } | null>();
  const resolve = (f: ProfileFile, stack: string[]): { data: JsonObject; chain: string[] } | null => {
    if (resolved.has(f.id)) return resolved.get(f.id) ?? null;
    const parentId = f.data.extends as string | undefined;
    let result: { data: JsonObject; chain: string[] } | null;
    if (parentId === undefined) {
      result = { data: finalizeLists(f.data) as JsonObject, chain: [f.file] };
    } else if (stack.includes(parentId)) {
      findings.push({
        code: 'EPROFILE_EXTENDS_CYCLE',
        file: f.file,
        path: '/extends',
        board: f.id,
        message: `extends cycle: ${[...stack, f.id, parentId].join(' -> ')}; a profile cannot extend itself or a descendant`,
      });
      result = null;
    } else {
      const parentFile = byId.get(parentId);
      if (!parentFile) {
        findings.push({
          code: 'EPROFILE_EXTENDS_UNKNOWN',
          file: f.file,
          path: '/extends',
          board: f.id,
          message: `extends "${parentId}", which no profile declares; known: ${[...byId.keys()].sort().join(', ')}`,
        });
        result = null;
      } else {
        const parent = resolve(parentFile, [...stack, f.id]);
        if (!parent) result = null;
        else {
          const { id: _id, abstract: _abstract, extends: _extends, ...inherited } = parent.data;
          const data = merge(inherited, f.data, '', { file: f.file, board: f.id, findings });
          result = { data: finalizeLists(data) as JsonObject, chain: [f.file, ...parent.chain] };
        }
      }
    }
    resolved.set(f.id, result);
    return result;
  };

  const boards: ResolvedProfile[] = [];
  const bases: ResolvedProfile[] = [];
  for (const f of byId.values()) {
    const r = resolve(f, []);
    if (!r) continue;
    if (r.data.abstract === true) {
      bases.push({ profile: r.data as unknown as BoardProfile, file: f.file, chain: r.chain });
      continue;
    }
    const validateBoard = getValidators().board;
    if (!validateBoard(r.data)) {
      findings.push(...schemaFindings(validateBoard.errors, f.file, f.id));
      continue;
    }
    boards.push({ profile: r.data as unknown as BoardProfile, file: f.file, chain: r.chain });
  }
  boards.sort((a, b) => a.profile.id.localeCompare(b.profile.id));
  return { dir, boards, bases, findings };
}
