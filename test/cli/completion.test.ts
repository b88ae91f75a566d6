/**
 * Shell completion: the candidates come from the program itself (every command and option),
 * the boards' profiles and the drive scan; the scripts are run by bash, zsh and fish against
 * the built CLI (dist/), so what a user's TAB gets is what is tested.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../src/cli/index.js';
import { complete, completionScript } from '../../src/cli/completion.js';
import { packageRoot } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const io = { out: () => undefined, err: () => undefined, color: false };
const sources = { boards: () => ['rpi3b', 'rpi4b', 'qemu-virt'], drives: () => ['/dev/sdb', '/dev/mmcblk0'] };

describe('shell completion', function () {
  this.timeout(60_000);
  after(cleanupTemp);

  it('offers commands, subcommands, options, board ids after --board <id>, drives after --device, nothing where a file goes', async () => {
    const p = await buildProgram(io as never, []);
    const c = (...w: string[]): string[] => complete(p, w, sources);
    assert.ok(c('').includes('build') && c('').includes('deploy') && c('').includes('completion'));
    assert.ok(!c('').includes('__complete'), 'the hidden command is not offered');
    assert.deepEqual(c('bo'), ['boards']);
    assert.deepEqual(c('boards', 's'), ['schema', 'show']);
    assert.deepEqual(c('build', '--b'), ['--board', '--boards-dir']);
    assert.deepEqual(c('build', '--board', 'rp'), ['rpi3b', 'rpi4b']);
    assert.deepEqual(c('build', '-b', ''), ['qemu-virt', 'rpi3b', 'rpi4b']);
    assert.deepEqual(c('flash', 'x.img', '--device', '/dev/s'), ['/dev/sdb']);
    assert.deepEqual(c('deploy', '.', '--board', ''), [], '--board <host> is a host, not a board id');
    assert.deepEqual(c('build', '--board', 'rpi3b', '--app', ''), [], 'a directory: the shell completes it');
    assert.ok(c('build', '--board', 'rpi3b', '-').includes('--verbose'), "the program's own options too");
    assert.ok(c('env', 'set', '--').includes('--script'));
  });

  it('bash, zsh and fish run the scripts `completion` prints, against the built CLI', async () => {
    const main = join(packageRoot(), 'dist/src/cli/main.js');
    assert.ok(existsSync(main), 'npm run build first');
    const bin = tempDir();
    writeFileSync(join(bin, 'nodeos-bsp'), `#!/bin/sh\nexec node ${main} "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const dir = tempDir();
    for (const sh of ['bash', 'zsh', 'fish']) writeFileSync(join(dir, sh), (await runCli('completion', sh)).out);
    const bash = execFileSync('bash', ['-c', `source ${join(dir, 'bash')}; COMP_WORDS=(nodeos-bsp build --board rpi4); COMP_CWORD=3; _nodeos_bsp; printf '%s\\n' "\${COMPREPLY[@]}"`], { env }).toString();
    assert.deepEqual(bash.trim().split('\n'), ['rpi400', 'rpi4b']);
    const files = execFileSync('bash', ['-c', `cd ${dir} && source ${join(dir, 'bash')}; COMP_WORDS=(nodeos-bsp flash ba); COMP_CWORD=2; _nodeos_bsp; printf '%s\\n' "\${COMPREPLY[@]}"`], { env }).toString();
    assert.deepEqual(files.trim().split('\n'), ['bash'], 'no candidate: file names');
    execFileSync('zsh', ['-n', join(dir, 'zsh')]);
    const fish = execFileSync('fish', ['-c', `source ${join(dir, 'fish')}; complete -C 'nodeos-bsp build --board rpi3'`], { env }).toString();
    assert.match(fish, /^rpi3b\b/m);
    assert.match((await runCli('completion', 'tcsh')).err, /no completion for the shell "tcsh": bash, zsh or fish \[EUSAGE\]/);
    assert.equal(completionScript('bash').includes('__complete --'), true);
  });
});
