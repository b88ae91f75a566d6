import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/index.js';

describe('the e2e layer runs every e2e file', () => {
  it('test/e2e/.mocharc.json names each test/e2e/*.e2e.ts once (it lists them longest first, not by glob)', () => {
    const rc = JSON.parse(readFileSync(join(packageRoot(), 'test/e2e/.mocharc.json'), 'utf8')) as { spec: string[] };
    const files = readdirSync(join(packageRoot(), 'test/e2e')).filter((f) => f.endsWith('.e2e.ts')).map((f) => `test/e2e/${f}`);
    assert.deepEqual([...rc.spec].sort(), files.sort());
  });
});
