/**
 * Each e2e file builds into its own directory under out/, so files can run in parallel
 * (`test/e2e/.mocharc.json`: one worker per core) without one build replacing an image
 * another file is booting. The artifact cache they share is safe for parallel builds.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/index.js';

export function e2eOut(suite: string): string {
  const dir = join(packageRoot(), 'out', `e2e-${suite}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
