/**
 * A flattened device tree (DTB) read into nodes and properties: what the boot model reads of
 * the tree the firmware hands U-Boot and Linux. Format: Devicetree Specification v0.4, ch. 5
 * (header, structure block of BEGIN_NODE / PROP / END_NODE tokens, strings block).
 */
import { BspError } from '../errors.js';

const MAGIC = 0xd00dfeed;
const BEGIN_NODE = 1;
const END_NODE = 2;
const PROP = 3;
const NOP = 4;
const END = 9;

/** One node of the tree. */
export interface FdtNode {
  /** Name with unit address, e.g. `mmc@7e340000`; `` for the root. */
  name: string;
  /** Full path, e.g. `/emmc2bus/mmc@7e340000`. */
  path: string;
  props: Map<string, Buffer>;
  children: FdtNode[];
  parent?: FdtNode;
}

/** Parse a DTB; EDTB when it is not one. */
export function parseFdt(b: Buffer, where = 'the DTB'): FdtNode {
  if (b.length < 40 || b.readUInt32BE(0) !== MAGIC) throw new BspError('EDTB', `${where} is not a flattened device tree (no d00dfeed magic)`);
  const total = b.readUInt32BE(4);
  const structOff = b.readUInt32BE(8);
  const stringsOff = b.readUInt32BE(12);
  if (total > b.length || structOff >= total || stringsOff >= total) throw new BspError('EDTB', `${where} is truncated (${b.length} of ${total} bytes)`);
  const cstr = (at: number): string => {
    const end = b.indexOf(0, at);
    if (end < 0) throw new BspError('EDTB', `${where}: unterminated string at ${at}`);
    return b.toString('latin1', at, end);
  };
  let p = structOff;
  const align = (n: number): number => (n + 3) & ~3;
  const root: FdtNode = { name: '', path: '/', props: new Map(), children: [] };
  const stack: FdtNode[] = [];
  for (;;) {
    if (p + 4 > total) throw new BspError('EDTB', `${where}: structure block runs past the end`);
    const token = b.readUInt32BE(p);
    p += 4;
    if (token === BEGIN_NODE) {
      const name = cstr(p);
      p = align(p + name.length + 1);
      const parent = stack.at(-1);
      const node: FdtNode = parent ? { name, path: `${parent.path === '/' ? '' : parent.path}/${name}`, props: new Map(), children: [], parent } : root;
      parent?.children.push(node);
      stack.push(node);
    } else if (token === END_NODE) {
      if (!stack.pop()) throw new BspError('EDTB', `${where}: unbalanced END_NODE`);
    } else if (token === PROP) {
      const len = b.readUInt32BE(p);
      const nameOff = b.readUInt32BE(p + 4);
      const node = stack.at(-1);
      if (!node || p + 8 + len > total) throw new BspError('EDTB', `${where}: property outside a node or past the end`);
      node.props.set(cstr(stringsOff + nameOff), b.subarray(p + 8, p + 8 + len));
      p = align(p + 8 + len);
    } else if (token === NOP) {
      continue;
    } else if (token === END) {
      if (stack.length) throw new BspError('EDTB', `${where}: ${stack.length} node(s) not closed`);
      return root;
    } else {
      throw new BspError('EDTB', `${where}: unknown token ${token} at ${p - 4}`);
    }
  }
}

/** A property's strings (a stringlist such as `compatible`); [] when absent. */
export function propStrings(n: FdtNode, name: string): string[] {
  const v = n.props.get(name);
  if (!v) return [];
  return v.toString('latin1').split('\0').slice(0, -1);
}

/** Enabled as the kernel and U-Boot read `status`: absent, "okay" or "ok". */
export const isEnabled = (n: FdtNode): boolean => {
  const s = propStrings(n, 'status')[0];
  return s === undefined || s === 'okay' || s === 'ok';
};

/** Every node, depth first in tree order (the order U-Boot binds devices in). */
export function* walk(n: FdtNode): Generator<FdtNode> {
  yield n;
  for (const c of n.children) yield* walk(c);
}

/** The node at `path`, if any. */
export function nodeAt(root: FdtNode, path: string): FdtNode | undefined {
  let n: FdtNode | undefined = root;
  for (const part of path.split('/').filter(Boolean)) n = n?.children.find((c) => c.name === part);
  return n;
}

/** `/aliases` as name -> path (string-valued properties only). */
export function aliases(root: FdtNode): Map<string, string> {
  const a = nodeAt(root, '/aliases');
  return new Map([...(a?.props ?? [])].map(([k, v]) => [k, v.toString('latin1').replace(/\0$/, '')]));
}
