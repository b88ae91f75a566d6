/** A board variant as a user adds one: the kit's boards/ copied, one profile file added, `boards check` passed. */
import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultBoardsDir } from '../../src/index.js';
import { runCli } from './cli.js';
import { tempDir } from './tmp.js';

/** The boards directory holding the kit's profiles and `id`.yaml with `yaml`, checked. */
export async function boardVariant(id: string, yaml: string): Promise<string> {
  const boards = tempDir();
  cpSync(defaultBoardsDir(), boards, { recursive: true });
  writeFileSync(join(boards, `${id}.yaml`), yaml);
  const check = await runCli('boards', 'check', id, '--boards-dir', boards);
  assert.equal(check.code, 0, check.err);
  return boards;
}
