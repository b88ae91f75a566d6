/**
 * Flash sources: a raw image or an .xz / .gz / .zst one, decompressed as a stream (no
 * temporary full-size file), with its .bmap and .sha256 when they sit next to it.
 */
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { FlashError } from '../src/errors.js';
import { parseBmap, type Bmap } from './bmap-reader.js';

export type Compression = 'none' | 'xz' | 'gz' | 'zst';

/** An expected SHA-256 from a `.sha256` file, and what it is of. */
export interface SourceDigest {
  hex: string;
  /** `file`: the bytes of the source file as stored (compressed); `image`: the uncompressed image. */
  of: 'file' | 'image';
  /** The `.sha256` file it came from. */
  from: string;
}

/** An image to flash. */
export interface Source {
  path: string;
  compression: Compression;
  /** Uncompressed size, when known (raw images, or from the bmap). */
  size?: number;
  bmap?: Bmap;
  bmapPath?: string;
  /** Expected SHA-256 from a `.sha256` file next to the source. */
  sha256?: SourceDigest;
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
  const shaFile = [`${path}.sha256`, ...(base !== path ? [`${base}.sha256`] : [])].find(existsSync);
  if (shaFile) src.sha256 = readDigest(shaFile, path, base, shaFile === `${path}.sha256`);
  return src;
}

/**
 * The digest a `.sha256` file gives for this source. A line naming the compressed file is of
 * its bytes; one naming the uncompressed `.img` is of the image; a bare hash is of what the
 * sidecar is named after. A file with no usable line is ECHECKSUM, never ignored.
 */
export function readDigest(shaFile: string, path: string, base: string, namedAfterSource: boolean): SourceDigest {
  const lines = readFileSync(shaFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  // GNU sha256sum lines ("<hex>  <name>", "*" for binary mode) or BSD ones ("SHA256 (<name>) = <hex>").
  const parsed = lines.map((l) => {
    const bsd = /^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$/.exec(l);
    return bsd ? ([l, bsd[2], bsd[1]] as unknown as RegExpExecArray) : /^([0-9a-fA-F]{64})(?:\s+\*?(.+))?$/.exec(l);
  });
  if (parsed.length === 0 || parsed.some((m) => !m)) throw new FlashError('ECHECKSUM', `${shaFile} is not a sha256sum file ("<64 hex digits>  <name>" lines): fix or remove it`);
  const file = basename(path);
  const img = basename(base);
  for (const m of parsed) {
    const name = m![2] === undefined ? undefined : basename(m![2]);
    const hex = m![1]!.toLowerCase();
    if (name === undefined && parsed.length === 1) return { hex, of: namedAfterSource ? 'file' : 'image', from: shaFile };
    if (name === file) return { hex, of: 'file', from: shaFile };
    if (name === img && base !== path) return { hex, of: 'image', from: shaFile };
  }
  throw new FlashError('ECHECKSUM', `${shaFile} has no line for ${file}${base !== path ? ` or ${img}` : ''}: it belongs to another image`);
}

/** A decompressing stream and a promise that settles when the whole source was read cleanly. */
export interface SourceStream {
  stream: Readable;
  /** Rejects with ESOURCE when the decompressor reports a damaged or truncated input. */
  finished: Promise<void>;
  /** Stop reading early (the decompressor is ended; `finished` then never matters). */
  stop: () => void;
}

/** The uncompressed image as a stream; `onFileBytes` sees the source file's own bytes as read. */
export function openStream(src: Source, onFileBytes?: (chunk: Buffer) => void): SourceStream {
  const file = createReadStream(src.path, { highWaterMark: 4 << 20 });
  if (onFileBytes) file.on('data', (c) => onFileBytes(c as Buffer));
  const ended = (s: Readable): Promise<void> =>
    new Promise((resolve, reject) => {
      s.on('end', resolve);
      s.on('error', reject);
    });
  // Every `finished` is marked handled at once: a reader that stops early (its own error, or a
  // limit reached) must not leave a rejection that kills the process.
  const handled = (p: Promise<void>): Promise<void> => {
    p.catch(() => undefined);
    return p;
  };
  if (src.compression === 'none') return { stream: file, finished: handled(ended(file)), stop: () => file.destroy() };
  if (src.compression === 'gz') {
    const gz = createGunzip({ chunkSize: 1 << 20 });
    file.pipe(gz);
    file.on('error', (e) => gz.destroy(e));
    const finished = ended(gz).catch((e: Error) => {
      throw new FlashError('ESOURCE', `${src.path}: the gzip stream is damaged or truncated (${e.message})`);
    });
    return { stream: gz, finished: handled(finished), stop: () => (file.destroy(), gz.destroy()) };
  }
  const [cmd, args] = src.compression === 'xz' ? ['xz', ['-dc', '-T0']] : ['zstd', ['-dc', '-q']];
  // The file is fed through stdin so its bytes can be hashed on the way (one read).
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  file.pipe(child.stdin);
  child.stdin.on('error', () => undefined); // EPIPE when the reader stops early; the exit status tells
  file.on('error', (e) => child.stdout.destroy(e));
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
  const stop = (): void => {
    file.destroy();
    child.stdout.destroy();
    if (child.exitCode === null) child.kill();
  };
  return { stream: child.stdout, finished: handled(finished), stop };
}
