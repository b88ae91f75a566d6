/**
 * The U-Boot environment code as an npm package of its own, `uboot-env`, made from this
 * repository's build (`npm run pack:uboot-env`, after `npm run build`): the library
 * (src/uboot-env plus the two kit files it imports, errors and atomic-file; no dependencies)
 * and libubootenv-compatible `fw_printenv` / `fw_setenv` programs (tools.ts), with
 * docs/uboot-env.md as its README. Not part of the library's import graph.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BspError } from '../errors.js';
import { packageRoot } from '../paths.js';

/** The compiled files the package carries, relative to dist/src (each with its .d.ts). */
export const UBOOT_ENV_FILES = ['uboot-env/index', 'uboot-env/handle', 'uboot-env/config', 'uboot-env/crc32', 'uboot-env/format', 'uboot-env/store', 'uboot-env/text', 'uboot-env/tools', 'errors', 'atomic-file'];

const bin = (program: string): string => `#!/usr/bin/env node\nimport { fwEnvTool } from '../lib/uboot-env/tools.js';\n\nprocess.exitCode = fwEnvTool('${program}', process.argv.slice(2));\n`;

/** Make the package directory in `outDir`/uboot-env and `npm pack` it there; returns the tarball's path. */
export function packUbootEnv(outDir: string, root = packageRoot()): string {
  const kit = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; license: string; repository?: unknown };
  const dist = join(root, 'dist/src');
  if (!existsSync(join(dist, 'uboot-env/index.js'))) throw new BspError('ETOOL', `${dist} has no uboot-env build: run npm run build first`);
  const dir = join(outDir, 'uboot-env');
  rmSync(dir, { recursive: true, force: true });
  for (const f of UBOOT_ENV_FILES) {
    for (const ext of ['.js', '.d.ts']) {
      mkdirSync(join(dir, 'lib', f, '..'), { recursive: true });
      copyFileSync(join(dist, f + ext), join(dir, 'lib', f + ext));
    }
  }
  mkdirSync(join(dir, 'bin'));
  for (const p of ['fw_printenv', 'fw_setenv']) writeFileSync(join(dir, 'bin', `${p}.js`), bin(p), { mode: 0o755 });
  copyFileSync(join(root, 'docs/uboot-env.md'), join(dir, 'README.md'));
  const manifest = {
    name: 'uboot-env',
    version: kit.version,
    description: "Read and write U-Boot environments (uboot.env, fw_env.config, redundant copies) byte for byte as U-Boot, mkenvimage and libubootenv do; fw_printenv and fw_setenv included",
    type: 'module',
    exports: { '.': { types: './lib/uboot-env/index.d.ts', default: './lib/uboot-env/index.js' } },
    bin: { fw_printenv: 'bin/fw_printenv.js', fw_setenv: 'bin/fw_setenv.js' },
    files: ['lib', 'bin', 'README.md'],
    engines: { node: '>=20' },
    keywords: ['u-boot', 'uboot', 'environment', 'fw_printenv', 'fw_setenv', 'embedded', 'ab-update'],
    license: kit.license,
    ...(kit.repository ? { repository: kit.repository } : {}),
  };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  const r = spawnSync('npm', ['pack', '--json', '--pack-destination', outDir], { cwd: dir, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new BspError('ETOOL', `npm pack of ${dir} failed: ${(r.error?.message ?? r.stderr).trim()}`);
  return join(outDir, (JSON.parse(r.stdout) as { filename: string }[])[0]!.filename);
}
