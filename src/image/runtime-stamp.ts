/**
 * Which compiled files the bundled board runtime (dist/board/, made by `npm run build` with
 * esbuild) was made from, by content: dist/board/inputs.json maps each input esbuild's
 * metafile lists to its SHA-256. Images refuse a bundle whose inputs changed since (a stale
 * runtime on the board), however the kit was copied or installed (times are not compared).
 * Run as a script, it writes the stamp: the last step of `npm run build:runtime`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../paths.js';

export const BUNDLE_DIR = 'dist/board';
const STAMP = 'inputs.json';

const sha256 = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/**
 * Modules that must never run on the board: the mock backends (and the host's
 * `nodeos-bsp/board` built on them). A device bundle holding code of one is refused.
 */
export const HOST_ONLY_INPUTS = ['dist/src/runtime/board/mock.js', 'dist/src/runtime/board/host.js'];

type Meta = { inputs: Record<string, unknown>; outputs?: Record<string, { inputs: Record<string, { bytesInOutput: number }> }> };

/** Device bundles that carry code of a host-only module, as "bundle: module" (empty: none). */
export function hostCodeInBundles(meta: Meta): string[] {
  return Object.entries(meta.outputs ?? {}).flatMap(([out, o]) =>
    Object.entries(o.inputs)
      .filter(([input, { bytesInOutput }]) => HOST_ONLY_INPUTS.includes(input) && bytesInOutput > 0)
      .map(([input]) => `${out}: ${input}`),
  );
}

/** esbuild's metafiles, one per run of `npm run build:runtime` (meta.json, meta-fleet.json). */
export const META_FILES = ['meta.json', 'meta-fleet.json'];

/** Write dist/board/inputs.json from esbuild's metafiles; refuse bundles that carry host-only code. */
export function stampRuntimeBundle(root = packageRoot()): void {
  const metas = META_FILES.map((f) => JSON.parse(readFileSync(join(root, BUNDLE_DIR, f), 'utf8')) as Meta);
  const host = metas.flatMap(hostCodeInBundles);
  if (host.length) throw new Error(`the board's runtime bundles carry host-only code (the mock backends): ${host.join(', ')}; import it only from host code`);
  const inputs = Object.fromEntries([...new Set(metas.flatMap((m) => Object.keys(m.inputs)))].sort().map((i) => [i, sha256(join(root, i))]));
  writeFileSync(join(root, BUNDLE_DIR, STAMP), JSON.stringify({ inputs }, null, 2) + '\n');
}

/** The first input missing or changed since the bundle was made (the stamp itself when it is missing); undefined when the bundle is current. */
export function staleRuntimeInput(root = packageRoot()): string | undefined {
  let stamp: { inputs: Record<string, string> };
  try {
    stamp = JSON.parse(readFileSync(join(root, BUNDLE_DIR, STAMP), 'utf8')) as typeof stamp;
  } catch {
    return `${BUNDLE_DIR}/${STAMP}`;
  }
  for (const [input, hash] of Object.entries(stamp.inputs)) {
    const p = join(root, input);
    if (!existsSync(p) || sha256(p) !== hash) return input;
  }
  return undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) stampRuntimeBundle();
