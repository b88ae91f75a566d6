/**
 * flash/, src/emulate/, src/runtime/ and the builder (src/image/) share the card's layout
 * through src/layout (and the format libraries: fat, cpio, uboot-env...), never through one
 * another: each import between them is listed here as a failure.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { packageRoot } from '../../src/paths.js';

const root = packageRoot();
const GROUPS: Record<string, string> = { flash: 'flash', emulate: 'src/emulate', runtime: 'src/runtime', builder: 'src/image' };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const groupOf = (file: string): string | undefined => Object.keys(GROUPS).find((g) => !relative(join(root, GROUPS[g]!), file).startsWith('..'));

/** Every relative import (static, dynamic, type-only, re-export) of a file, resolved to a path. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s*|import\(\s*|import\s+)['"](\.[^'"]+)['"]/g)].map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
}

describe('layers: flash, emulate, runtime and the builder import the layout module, not one another', () => {
  it('no import runs between them', () => {
    const bad: string[] = [];
    for (const [g, dir] of Object.entries(GROUPS)) {
      for (const f of files(join(root, dir))) {
        for (const target of importsOf(f)) {
          const tg = groupOf(target);
          if (tg && tg !== g) bad.push(`${relative(root, f)} imports ${relative(root, target)} (${g} -> ${tg})`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it('would see one: the scan finds each kind of import', () => {
    const probe = join(root, 'flash/check.ts');
    assert.ok(importsOf(probe).some((p) => p.endsWith('src/layout/index.ts')), 'flash reads the layout module');
    assert.equal(groupOf(join(root, 'src/image/build.ts')), 'builder');
    assert.equal(groupOf(join(root, 'src/layout/layout.ts')), undefined);
  });
});
