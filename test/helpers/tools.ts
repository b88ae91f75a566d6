/** Run real host tools in tests; a missing tool fails the test with the package to install. */
import { execFileSync, spawnSync } from 'node:child_process';

const PACKAGE: Record<string, string> = {
  mkenvimage: 'u-boot-tools',
  mkimage: 'u-boot-tools',
  dumpimage: 'u-boot-tools',
  fw_printenv: 'libubootenv-tool',
  fw_setenv: 'libubootenv-tool',
  losetup: 'util-linux',
};

/** Run a tool; throws with its stderr on failure. */
export function run(tool: string, args: string[], input?: string | Buffer): Buffer {
  const r = spawnSync(tool, args, { input, maxBuffer: 64 << 20 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(`${tool} is not installed: apt-get install ${PACKAGE[tool] ?? tool} (.ci/setup does this)`);
  }
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/** Fail (not skip) when a peer a test runs is missing, naming its Debian package: `tool args` must start. */
export function requireTool(tool: string, args: string[], pkg: string): void {
  if (spawnSync(tool, args).error) throw new Error(`${tool} is not installed: apt-get install ${pkg} (.ci/setup does this)`);
}

/** Attach a file to a free loop device (root only); returns the device path. */
export function attachLoop(file: string): string {
  return execFileSync('losetup', ['--find', '--show', file]).toString().trim();
}

export function detachLoop(dev: string): void {
  spawnSync('losetup', ['-d', dev]);
}
