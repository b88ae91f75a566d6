/** Writing profiles: a new board's profile from a sibling's, and the profile files' JSON Schema. */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { isNode, isPair, parseDocument, visit, type Document } from 'yaml';
import { BspError, ProfileError, UsageError } from '../errors.js';
import { defaultBoardsDir } from '../paths.js';
import { checkBoards, getBoard, type BoardSource } from './index.js';
import { fileSchema } from './schema.js';

/** The JSON Schema text of a profile file (boards/board-profile.schema.json). */
export function schemaText(): string {
  return (
    JSON.stringify(
      { $schema: 'http://json-schema.org/draft-07/schema#', title: 'nodeos-bsp board profile', ...fileSchema() },
      null,
      2,
    ) + '\n'
  );
}

/** What a board's own device tree says it is (its root `compatible` and `model`, its CPUs). */
export interface TreeIdentity {
  /** The root's compatible strings: the board's first, the SoC's last. */
  compatible: string[];
  model?: string;
  /** The CPUs' compatible (arm,cortex-a53) and how many there are. */
  cpu?: { compatible: string; count: number };
}

/** Remove every comment: a sibling's comments describe the sibling. */
function dropComments(doc: Document): void {
  doc.comment = null;
  visit(doc, {
    Node: (_k, n) => {
      n.comment = null;
      n.commentBefore = null;
    },
    Pair: (_k, p) => {
      if (isPair(p) && isNode(p.key)) {
        p.key.comment = null;
        p.key.commentBefore = null;
      }
    },
  });
}

/**
 * Write `boards/<id>.yaml` extending the same parent as `from`, with `from`'s own fields,
 * placeholder detection and status wip; remove it again if it does not pass the checks.
 * `identity` (the new board's own tree, `boards new --dtb`) replaces what the sibling says of
 * itself: detection, name, vendor, and, where the sibling's file names its SoC, the SoC.
 */
export function scaffoldBoard(id: string, from: string, o: BoardSource & { name?: string; force?: boolean; dtb?: string; card?: string; identity?: TreeIdentity } = {}): string {
  const dir = o.boardsDir ?? defaultBoardsDir();
  if (!/^[a-z0-9][a-z0-9-]*$/.test(id)) throw new UsageError(`board id "${id}" must be lower case letters, digits and dashes`);
  const sibling = getBoard(from, o);
  const target = join(dir, `${id}.yaml`);
  if (existsSync(target) && !o.force) throw new BspError('EEXIST', `${target} exists: pick another id or pass --force`);
  const doc = parseDocument(readFileSync(join(dir, sibling.file), 'utf8'));
  dropComments(doc);
  const ident = o.identity;
  const ownSoc = doc.has('soc');
  doc.set('id', id);
  doc.set('name', o.name ?? ident?.model ?? `${sibling.profile.name} (copy for ${id})`);
  doc.set('status', 'wip');
  // Where U-Boot is the board's firmware its package has a build per board (raw pieces, its own tree): the sibling's is not this board's.
  const u = sibling.profile.boot.uboot;
  const ownBuild = u && (u.raw?.length || u.dtb) ? [`boot.uboot (${u.file.split('/').slice(0, -1).join('/')} is ${from}'s U-Boot build)`] : [];
  const toSet = [...(ident ? [] : ['detection', ...(ownSoc ? ['vendor', 'soc'] : [])]), ...ownBuild, 'the pin map', 'the devicetree'];
  doc.set('statusReason', `new profile scaffolded from ${from}: ${ownSoc && !ident ? `${from}'s vendor and SoC were copied: ` : ''}verify ${toSet.join(', ')}`);
  doc.setIn(['detection', 'compatible'], [ident?.compatible[0] ?? `vendor,${id}`]);
  if (ident && doc.has('vendor')) doc.set('vendor', ident.compatible[0]!.split(',')[0]);
  if (ident && ownSoc && ident.compatible.length > 1) {
    const soc = ident.compatible.at(-1)!;
    doc.setIn(['soc', 'id'], soc.split(',').pop()!.toLowerCase().replace(/[^a-z0-9-]/g, '-'));
    doc.setIn(['soc', 'name'], soc);
    doc.setIn(['soc', 'compatible'], soc);
    if (ident.cpu) {
      doc.setIn(['soc', 'cpu'], ident.cpu.compatible.split(',').pop()!.replace(/^cortex-/, 'Cortex-').replace(/-(a|r|m)(\d+)/i, (_m, l: string, n: string) => `-${l.toUpperCase()}${n}`));
      doc.setIn(['soc', 'cores'], ident.cpu.count);
    }
  }
  doc.setIn(['detection', 'revisions'], []);
  doc.delete('emulation');
  // Another tree: the firmware loads it by the same name (its base name), and the card may sit elsewhere.
  if (o.dtb) {
    doc.setIn(['devicetree', 'dtb'], o.dtb);
    if (sibling.profile.devicetree.firmwareName) doc.setIn(['devicetree', 'firmwareName'], o.dtb.split('/').pop());
  }
  if (o.card) doc.setIn(['boot', 'card'], o.card);
  doc.commentBefore = ` Scaffolded by "nodeos-bsp boards new ${id} --from ${from}${o.dtb ? ` --dtb ${o.dtb}` : ''}"; ${from}'s comments, about ${from}, are left out.`;
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, doc.toString());
  const { findings } = checkBoards({ boardsDir: dir, ...(o.kernelConfigsDir ? { kernelConfigsDir: o.kernelConfigsDir } : {}) });
  const mine = findings.filter((f) => f.board === id || f.file === relative(dir, target));
  if (mine.length > 0) {
    rmSync(target);
    throw new ProfileError(mine);
  }
  return target;
}
