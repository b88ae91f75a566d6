/**
 * The CLI only parses, calls and prints: its files may read the files options name and write
 * the outputs asked for, prompt on the terminal, and call the library. Processes, hashing,
 * networking, streams and devices belong to the library, where they are tested without a
 * shell; a command's action that grows past a screen is library code waiting to move.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/index.js';

const CLI = join(packageRoot(), 'src/cli');
/** What a command may use of Node: paths, reading and writing named files, the OS name, a prompt. */
const NODE_ALLOWED: Record<string, RegExp | true> = {
  'node:path': true,
  'node:os': /^\{ release \}$/,
  'node:fs': /^\{ (?:(?:existsSync|readFileSync|writeFileSync)(?:, )?)+ \}$/,
  'node:readline/promises': true,
};
const ACTION_MAX_LINES = 60;

/** The lines of each `.action(...)` callback of a file (matched braces from the call). */
function actionLengths(text: string): { line: number; lines: number }[] {
  const lines = text.split('\n');
  const out: { line: number; lines: number }[] = [];
  lines.forEach((l, i) => {
    if (!/\.action\(/.test(l)) return;
    let depth = 0;
    let started = false;
    let j = i;
    for (; j < lines.length; j++) {
      for (const ch of lines[j]!) {
        if (ch === '{') {
          depth++;
          started = true;
        } else if (ch === '}') depth--;
      }
      if (started && depth <= 0) break;
    }
    out.push({ line: i + 1, lines: j - i + 1 });
  });
  return out;
}

describe('the CLI is thin', () => {
  const files = readdirSync(CLI).filter((f) => f.endsWith('.ts'));

  it("imports of Node's modules: paths, named files, the OS release and a prompt only", () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(join(CLI, f), 'utf8').matchAll(/^import (type )?(.+?) from '(node:[^']+)';$/gm)) {
        const rule = NODE_ALLOWED[m[3]!];
        if (!m[1] && !(rule === true || (rule && rule.test(m[2]!)))) bad.push(`src/cli/${f}: import ${m[2]} from '${m[3]}'`);
      }
    }
    assert.deepEqual(bad, [], 'move the work into the library and call it');
  });

  it(`every command's action fits in ${ACTION_MAX_LINES} lines`, () => {
    const long = files.flatMap((f) => actionLengths(readFileSync(join(CLI, f), 'utf8')).filter((a) => a.lines > ACTION_MAX_LINES).map((a) => `src/cli/${f}:${a.line} (${a.lines} lines)`));
    assert.deepEqual(long, []);
  });

  it('would see a violation: the scans find imports and actions', () => {
    const sample = "import { spawnSync } from 'node:child_process';\nprogram.action(async () => {\n" + 'x();\n'.repeat(70) + '});\n';
    assert.equal(actionLengths(sample)[0]!.lines, 72);
    const m = /^import (type )?(.+?) from '(node:[^']+)';$/m.exec(sample)!;
    assert.equal(NODE_ALLOWED[m[3]!], undefined);
    assert.equal((NODE_ALLOWED['node:fs'] as RegExp).test('{ readFileSync, writeFileSync }'), true);
    assert.equal((NODE_ALLOWED['node:fs'] as RegExp).test('{ openSync, readFileSync }'), false);
  });
});
