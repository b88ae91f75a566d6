/**
 * npm on the board: where it installs (the users' partition, so packages survive reboots),
 * which registry it talks to, and what happens when a package wants a compiler the board
 * does not have.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** npm as the image ships it. */
export const NPM_ROOT = '/usr/lib/node_modules/npm';

/**
 * The environment init gives the REPL and everything it starts: global installs, npm's cache
 * and `~/.npmrc` on the users' partition, installed commands on PATH, globally installed
 * packages found by `require`. (npm's node-gyp is replaced in the image by no-compiler.js.)
 */
export function npmEnvironment(users: boolean, home = users ? '/home' : '/root'): Record<string, string> {
  const prefix = users ? '/home/.npm-global' : undefined;
  return {
    HOME: home,
    ...(prefix ? { NPM_CONFIG_PREFIX: prefix, NODE_PATH: `${prefix}/lib/node_modules` } : {}),
    npm_config_cache: join(home, '.npm'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    PATH: [...(prefix ? [`${prefix}/bin`] : []), '/bin', '/usr/bin'].join(':'),
  };
}

/** `registry=` in an npmrc text. */
function registryIn(text: string): string | undefined {
  return /^\s*registry\s*=\s*(\S+)\s*$/m.exec(text)?.[1];
}

/**
 * The registry npm on the board uses: the environment, the user's ~/.npmrc, npm's builtin
 * npmrc, then npm's own default (read from npm itself, never written into the kit).
 */
export function npmRegistry(home: string, env: NodeJS.ProcessEnv = process.env, npmRoot = NPM_ROOT): string | undefined {
  const fromEnv = env.npm_config_registry ?? env.NPM_CONFIG_REGISTRY;
  if (fromEnv) return fromEnv;
  for (const f of [join(home, '.npmrc'), join(npmRoot, 'npmrc')]) {
    if (existsSync(f)) {
      const r = registryIn(readFileSync(f, 'utf8'));
      if (r) return r;
    }
  }
  try {
    const defs = createRequire(join(npmRoot, 'package.json'))('@npmcli/config/lib/definitions/index.js') as { defaults?: { registry?: string } };
    return defs.defaults?.registry;
  } catch {
    return undefined;
  }
}

/** What no-compiler.js prints for a package that needs to compile an addon. */
export function noCompilerMessage(pkg: string | undefined, version: string | undefined): string {
  const name = pkg ? `${pkg}${version ? `@${version}` : ''}` : 'this package';
  return [
    `nodeos: ${name} has a native addon with no prebuilt binary for linux-${process.arch}, and NodeOS boards have no C/C++ compiler.`,
    `nodeos: build it for the board on your computer instead: nodeos-bsp cross-compiles native addons the way it builds onoff and i2c-bus (see the kit's docs/npm.md),`,
    `nodeos: or choose a package that ships linux-${process.arch} prebuilds (node-gyp-build or prebuild-install).`,
  ].join('\n');
}
