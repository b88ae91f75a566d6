/** HTTP downloads that are verified before anything else may see them. */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactError, ChecksumError } from '../errors.js';
import type { Cache } from './cache.js';

/** What a download must match. */
export interface Expect {
  size?: number;
  sha256?: string;
  /** Subresource-integrity string, e.g. `sha512-...` (npm). */
  integrity?: string;
}

/** Progress callback: bytes so far and the total when known. */
export type OnProgress = (done: number, total: number | undefined) => void;

/** Download `url` to a temp file in the cache and check it; returns the temp path and its SHA-256. */
export async function download(url: string, label: string, cache: Cache, expect: Expect = {}, onProgress?: OnProgress): Promise<{ tmp: string; sha256: string; size: number }> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new ArtifactError('EDOWNLOAD', `cannot download ${label}: ${(err as Error).message} (check the network, or use --offline with a filled cache)`, label, { cause: err });
  }
  if (!res.ok || !res.body) throw new ArtifactError('EDOWNLOAD', `cannot download ${label}: HTTP ${res.status}`, label);
  const tmp = cache.tempPath(label);
  const sha256 = createHash('sha256');
  const sri = expect.integrity ? createHash(expect.integrity.split('-')[0]!) : undefined;
  let size = 0;
  const total = Number(res.headers.get('content-length')) || expect.size;
  try {
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (c: Buffer) => {
      size += c.length;
      sha256.update(c);
      sri?.update(c);
      onProgress?.(size, total);
    });
    await pipeline(body, createWriteStream(tmp));
  } catch (err) {
    cache.discard(tmp);
    throw new ArtifactError('ETRUNCATED', `download of ${label} broke off after ${size} bytes: ${(err as Error).message}`, label, { cause: err });
  }
  const hex = sha256.digest('hex');
  try {
    verify(label, { size, sha256: hex, ...(sri ? { sri: `${expect.integrity!.split('-')[0]}-${sri.digest('base64')}` } : {}) }, expect);
  } catch (err) {
    cache.discard(tmp);
    throw err;
  }
  return { tmp, sha256: hex, size };
}

/** Compare what a file is against what it should be; typed errors on mismatch. */
export function verify(label: string, actual: { size: number; sha256: string; sri?: string }, expect: Expect): void {
  if (expect.size !== undefined && actual.size !== expect.size) {
    throw new ArtifactError('ETRUNCATED', `${label}: ${actual.size} bytes but the index says ${expect.size}; the download was discarded`, label);
  }
  if (expect.sha256 !== undefined && actual.sha256 !== expect.sha256) throw new ChecksumError(label, 'sha256', actual.sha256, expect.sha256);
  if (expect.integrity !== undefined && actual.sri !== expect.integrity) throw new ChecksumError(label, 'integrity', actual.sri ?? '(none)', expect.integrity);
}
