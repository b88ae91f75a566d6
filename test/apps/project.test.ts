import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProject } from '../../src/apps/project.js';
import { runCli } from '../helpers/cli.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

describe('project files (build --project nodeos.yaml)', () => {
  after(cleanupTemp);

  it('reads board, apps and sshKeys, with paths relative to the file', () => {
    const d = tempDir();
    mkdirSync(join(d, 'door'));
    mkdirSync(join(d, 'keys'));
    writeFileSync(join(d, 'keys/a.pub'), 'ssh-ed25519 AAAA\n');
    writeFileSync(join(d, 'nodeos.yaml'), '# mine\nboard: rpi3b\napps:\n  - .\n  - door\nsshKeys: [keys/a.pub]\n');
    assert.deepEqual(readProject(join(d, 'nodeos.yaml')), { file: join(d, 'nodeos.yaml'), board: 'rpi3b', apps: [d, join(d, 'door')], sshKeys: [join(d, 'keys/a.pub')] });
    writeFileSync(join(d, 'apps-only.yaml'), 'apps: [door]\n');
    assert.deepEqual(readProject(join(d, 'apps-only.yaml')), { file: join(d, 'apps-only.yaml'), apps: [join(d, 'door')], sshKeys: [] });
  });

  it('refuses what it does not understand, naming the file (EPROJECT)', () => {
    const d = tempDir();
    const refused = (text: string, re: RegExp): void => {
      writeFileSync(join(d, 'p.yaml'), text);
      assert.throws(() => readProject(join(d, 'p.yaml')), (e: Error & { code?: string }) => e.code === 'EPROJECT' && e.message.includes('p.yaml') && re.test(e.message), re.source);
    };
    refused('- a\n- b\n', /is a mapping/);
    refused('board: rpi3b\napp: [.]\n', /unknown key "app" \(known: board, apps, sshKeys\)/);
    refused('board: 3\n', /"board" is a board id/);
    refused('apps: .\n', /"apps" is a list of paths/);
    refused('apps: [missing]\n', /apps: missing .* is not a directory/);
    refused('sshKeys: [.]\n', /sshKeys: \. .* is not a file/);
    refused('board: [unclosed\n', /p\.yaml: /);
    assert.throws(() => readProject(join(d, 'none.yaml')), /none\.yaml: no such file/);
  });

  it('build: a --board that differs from the project\'s, or no board at all, is refused before anything is built', async () => {
    const d = tempDir();
    writeFileSync(join(d, 'nodeos.yaml'), 'board: rpi3b\n');
    writeFileSync(join(d, 'noboard.yaml'), 'apps: []\n');
    assert.match((await runCli('build', '--project', join(d, 'nodeos.yaml'), '--board', 'rpi4b', '--out', d)).err, /--board rpi4b and .*nodeos\.yaml's board rpi3b differ.*\[EUSAGE\]/);
    assert.match((await runCli('build', '--project', join(d, 'noboard.yaml'), '--out', d)).err, /say which board: --board ID or "board:" in .*noboard\.yaml.*\[EUSAGE\]/);
    assert.match((await runCli('build', '--out', d)).err, /say which board: --board ID \(nodeos-bsp boards lists them\) \[EUSAGE\]/);
  });
});
