/** Writing profiles: a new board's profile from a sibling's, and the profile files' JSON Schema. */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parseDocument } from 'yaml';
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

/**
 * Write `boards/<id>.yaml` extending the same parent as `from`, with `from`'s own fields,
 * placeholder detection and status wip; remove it again if it does not pass the checks.
 */
export function scaffoldBoard(id: string, from: string, o: BoardSource & { name?: string; force?: boolean; dtb?: string; card?: string } = {}): string {
  const dir = o.boardsDir ?? defaultBoardsDir();
  if (!/^[a-z0-9][a-z0-9-]*$/.test(id)) throw new UsageError(`board id "${id}" must be lower case letters, digits and dashes`);
  const sibling = getBoard(from, o);
  const target = join(dir, `${id}.yaml`);
  if (existsSync(target) && !o.force) throw new BspError('EEXIST', `${target} exists: pick another id or pass --force`);
  const doc = parseDocument(readFileSync(join(dir, sibling.file), 'utf8'));
  doc.set('id', id);
  doc.set('name', o.name ?? `${sibling.profile.name} (copy for ${id})`);
  doc.set('status', 'wip');
  doc.set('statusReason', `new profile scaffolded from ${from}: set detection, verify the pin map and devicetree`);
  doc.setIn(['detection', 'compatible'], [`vendor,${id}`]);
  doc.setIn(['detection', 'revisions'], []);
  doc.delete('emulation');
  // Another tree: the firmware loads it by the same name (its base name), and the card may sit elsewhere.
  if (o.dtb) {
    doc.setIn(['devicetree', 'dtb'], o.dtb);
    if (sibling.profile.devicetree.firmwareName) doc.setIn(['devicetree', 'firmwareName'], o.dtb.split('/').pop());
  }
  if (o.card) doc.setIn(['boot', 'card'], o.card);
  doc.commentBefore = ` Scaffolded by "nodeos-bsp boards new ${id} --from ${from}".`;
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
