/**
 * Flash sources: a raw image or an .xz / .gz / .zst one, decompressed as a stream (no
 * temporary full-size file), with its .bmap and .sha256 when they sit next to it.
 */
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { FlashError } from '../src/errors.js';
import { parseBmap, type Bmap } from './bmap.js';

export type Compression = 'none' | 'xz' | 'gz' | 'zst';

/** An image to flash. */
export interface Source {
  path: string;
  compression: Compression;
  /** Uncompressed size, when known (raw images, or from the bmap). */
  size?: number;
  bmap?: Bmap;
  bmapPath?: string;
  /** Expected SHA-256 of the uncompressed image, from a `.sha256` file. */
  sha256?: string;
}

/** Compression from the file's magic bytes (not its name). */
export function detectCompression(path: string): Compression {
  const head = Buffer.alloc(6);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 6, 0);
  } finally {
    closeSync(fd);
  }
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gz';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zst';
  return 'none';
}

/** Open a source: find its bmap (`--bmap`, `<image>.bmap`, or the uncompressed name's) and .sha256. */
export function openSource(path: string, o: { bmap?: string | false } = {}): Source {
  if (!existsSync(path)) throw new FlashError('ESOURCE', `${path} does not exist`);
  const compression = detectCompression(path);
  const base = compression === 'none' ? path : path.replace(/\.(xz|gz|zst)$/, '');
  const src: Source = { path, compression };
  if (compression === 'none') src.size = statSync(path).size;
  const bmapPath = o.bmap === false ? undefined : (o.bmap ?? [`${path}.bmap`, `${base}.bmap`].find(existsSync));
  if (bmapPath) {
    src.bmap = parseBmap(readFileSync(bmapPath, 'utf8'), bmapPath);
    src.bmapPath = bmapPath;
    if (src.size !== undefined && src.size !== src.bmap.imageSize) {
      throw new FlashError('EBMAP', `${bmapPath} describes a ${src.bmap.imageSize}-byte image but ${path} is ${src.size} bytes: wrong bmap for this image`);
    }
    src.size ??= src.bmap.imageSize;
  }
  const shaFile = [`${path}.sha256`, `${base}.sha256`].find(existsSync);
  if (shaFile && compression === 'none') {
    const m = /^([0-9a-f]{64})\b/i.exec(readFileSync(shaFile, 'utf8'));
    if (m) src.sha256 = m[1]!.toLowerCase();
  }
  return src;
}

/** A decompressing stream and a promise that settles when the whole source was read cleanly. */
export interface SourceStream {
  stream: Readable;
  /** Rejects with ESOURCE when the decompressor reports a damaged or truncated input. */
  finished: Promise<void>;
}

/** The uncompressed image as a stream. */
export function openStream(src: Source): SourceStream {
  const file = createReadStream(src.path, { highWaterMark: 4 << 20 });
  const ended = (s: Readable): Promise<void> =>
    new Promise((resolve, reject) => {
      s.on('end', resolve);
      s.on('error', reject);
    });
  if (src.compression === 'none') return { stream: file, finished: ended(file) };
  if (src.compression === 'gz') {
    const gz = createGunzip({ chunkSize: 1 << 20 });
    file.pipe(gz);
    file.on('error', (e) => gz.destroy(e));
    const finished = ended(gz).catch((e: Error) => {
      throw new FlashError('ESOURCE', `${src.path}: the gzip stream is damaged or truncated (${e.message})`);
    });
    return { stream: gz, finished };
  }
  const [cmd, args] = src.compression === 'xz' ? ['xz', ['-dc', '-T0']] : ['zstd', ['-dc', '-q']];
  const child = spawn(cmd, [...args, src.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const finished = new Promise<void>((resolve, reject) => {
    child.on('error', (e) =>
      reject(new FlashError('ESOURCE', `cannot run ${cmd} to read ${src.path}: ${e.message} (apt-get install ${cmd === 'xz' ? 'xz-utils' : 'zstd'})`)),
    );
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new FlashError('ESOURCE', `${src.path}: the ${src.compression} stream is damaged or truncated: ${err.trim() || `exit ${code}`}`));
    });
  });
  return { stream: child.stdout, finished };
}
