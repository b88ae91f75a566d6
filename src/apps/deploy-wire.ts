/**
 * What `nodeos-bsp deploy --board` and the board say to each other on the board's
 * `nodeos-deploy` SSH subsystem (shared by the host, src/apps/deploy.ts, and the board,
 * src/runtime/deploy.ts):
 *
 *   board → host  a hello line: {"protocol":1,"board":"<board id>","build":"…","arch":"arm64","node":{…}}
 *                 (node: the pinned Node package the board's system was built with, so the
 *                 host builds the app's addons for exactly that Node)
 *   host → board  a header line: {"name","version","release","size","sha256","settleMs"},
 *                 then `size` bytes: the app as a newc cpio archive (its files and node_modules)
 *   board → host  `deploy: <step>` lines on stderr; the result line on stdout, or
 *                 `CODE: message` on stderr and exit 1 (rolled back, refused).
 */
import { BspError } from '../errors.js';

export const DEPLOY_SUBSYSTEM = 'nodeos-deploy';
export const DEPLOY_PROTOCOL = 1;
/** The largest app the board takes (it holds the upload in memory while checking it). */
export const DEPLOY_MAX_BYTES = 128 << 20;
/** How long a new version must run without exiting before it replaces the old one. */
export const DEFAULT_SETTLE_MS = 10_000;

/** The Node package an image was built with, as its lock pins it. */
export interface PinnedNode {
  name: string;
  version: string;
  tarball: string;
  integrity: string;
  sha256: string;
}

export interface DeployHello {
  protocol: number;
  board: string;
  build: string;
  arch: string;
  node?: PinnedNode;
}

export interface DeployHeader {
  name: string;
  version: string;
  /** The release id: the first 16 hex digits of the built app's hash (same app, same id). */
  release: string;
  size: number;
  sha256: string;
  settleMs: number;
}

export interface DeployResult {
  name: string;
  version: string;
  release: string;
  /** Already running that very release: nothing was changed. */
  unchanged?: boolean;
  /** The release it replaced (kept as previous), if any. */
  previous?: { version: string; release: string };
  /** The built-in app of the same name that it now runs instead of. */
  replacesImageApp?: boolean;
  pid?: number;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,213}$/;
const RELEASE = /^[0-9a-f]{16}$/;

/** Check a header line from the host (the board trusts nothing in it unchecked). */
export function parseDeployHeader(line: string): DeployHeader {
  let h: Partial<Record<keyof DeployHeader, unknown>>;
  try {
    h = JSON.parse(line) as typeof h;
  } catch {
    throw new BspError('EDEPLOY_PAYLOAD', 'the upload does not start with a deploy header (is the host running nodeos-bsp deploy?)');
  }
  const bad = (what: string): never => {
    throw new BspError('EDEPLOY_PAYLOAD', `the deploy header's ${what}`);
  };
  if (typeof h.name !== 'string' || !NAME.test(h.name)) bad(`name ${JSON.stringify(h.name)} is not an app name`);
  if (typeof h.version !== 'string' || h.version.length > 256) bad('version is missing');
  if (typeof h.release !== 'string' || !RELEASE.test(h.release)) bad(`release ${JSON.stringify(h.release)} is not 16 hex digits`);
  if (typeof h.size !== 'number' || !Number.isSafeInteger(h.size) || h.size <= 0) bad('size is missing');
  if ((h.size as number) > DEPLOY_MAX_BYTES) throw new BspError('EDEPLOY_TOO_BIG', `the app is ${Math.ceil((h.size as number) / 2 ** 20)} MiB; a deploy takes up to ${DEPLOY_MAX_BYTES >> 20} MiB (build it into the image instead)`);
  if (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256)) bad('sha256 is missing');
  if (typeof h.settleMs !== 'number' || !Number.isInteger(h.settleMs) || h.settleMs < 0 || h.settleMs > 600_000) bad('settleMs must be 0 to 600000');
  return h as DeployHeader;
}
