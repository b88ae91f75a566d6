/** Signed builds for the e2e layer's update scenarios (update.e2e.ts, fleet.e2e.ts), and an app that crash-loops. */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildManifest } from '../../src/index.js';
import { runCli } from './cli.js';

/** A signed build of `board` in `dir`, with its own build time (so its own build id); `more` are further build options. */
export async function signedBuild(board: string, dir: string, epoch: number, key: string, more: string[] = []): Promise<BuildManifest> {
  const saved = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = String(epoch);
  try {
    mkdirSync(dir, { recursive: true });
    const r = await runCli('build', '--board', board, '--out', dir, '--signing-key', key, ...more, '--json');
    assert.equal(r.code, 0, r.err);
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
  return JSON.parse(readFileSync(join(dir, `nodeos-${board}.manifest.json`), 'utf8')) as BuildManifest;
}

/** An npm project (in `dir`/crasher) whose app exits at once: built into a system, init sees it crash-loop. */
export function crashingApp(dir: string): string {
  const app = join(dir, 'crasher');
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'crasher', version: '1.0.0', main: 'index.js' }));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ name: 'crasher', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'crasher', version: '1.0.0' } } }));
  writeFileSync(join(app, 'index.js'), "console.error('crasher: cannot start'); process.exit(1);\n");
  return app;
}
