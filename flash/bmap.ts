/** Reading bmaptool block maps (format 1.x and 2.x) and checking their own checksum. */
import { createHash } from 'node:crypto';
import { FlashError } from '../src/errors.js';

/** A parsed block map. */
export interface Bmap {
  imageSize: number;
  blockSize: number;
  /** Mapped ranges in bytes: [start, end) with the range's checksum if given. */
  ranges: { start: number; end: number; sha256?: string }[];
  mappedBytes: number;
}

const tag = (xml: string, name: string): string | undefined => new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(xml)?.[1];

/** Parse a .bmap; a bad file checksum or layout is EBMAP. */
export function parseBmap(xml: string, label = 'bmap'): Bmap {
  const version = /<bmap version="(\d+)\.(\d+)"/.exec(xml);
  if (!version) throw new FlashError('EBMAP', `${label} is not a bmap file`);
  const imageSize = Number(tag(xml, 'ImageSize'));
  const blockSize = Number(tag(xml, 'BlockSize'));
  if (!Number.isSafeInteger(imageSize) || !Number.isSafeInteger(blockSize) || blockSize <= 0) throw new FlashError('EBMAP', `${label}: ImageSize/BlockSize missing or invalid`);
  const declared = tag(xml, 'BmapFileChecksum');
  const type = tag(xml, 'ChecksumType') ?? 'sha1';
  if (declared && Number(version[1]) >= 2) {
    if (type !== 'sha256') throw new FlashError('EBMAP', `${label}: checksum type ${type} is not supported (sha256 only)`);
    const zeroed = xml.replace(/(<BmapFileChecksum>\s*)[0-9a-fA-F]+(\s*<\/BmapFileChecksum>)/, (_m, a: string, b: string) => `${a}${'0'.repeat(declared.length)}${b}`);
    const actual = createHash('sha256').update(zeroed).digest('hex');
    if (actual !== declared) throw new FlashError('EBMAP', `${label}: the file's own checksum is wrong (${actual} != ${declared}); it was edited or damaged`);
  }
  const ranges: Bmap['ranges'] = [];
  for (const m of xml.matchAll(/<Range(?:\s+chksum="([0-9a-fA-F]+)")?\s*>\s*(\d+)(?:\s*-\s*(\d+))?\s*<\/Range>/g)) {
    const first = Number(m[2]);
    const last = m[3] !== undefined ? Number(m[3]) : first;
    const start = first * blockSize;
    const end = Math.min((last + 1) * blockSize, imageSize);
    if (last < first || start >= imageSize) throw new FlashError('EBMAP', `${label}: range ${m[2]}-${m[3] ?? m[2]} is outside the image`);
    const prev = ranges.at(-1);
    if (prev && start < prev.end) throw new FlashError('EBMAP', `${label}: ranges overlap or are out of order at block ${first}`);
    ranges.push({ start, end, ...(m[1] && type === 'sha256' ? { sha256: m[1].toLowerCase() } : {}) });
  }
  return { imageSize, blockSize, ranges, mappedBytes: ranges.reduce((n, r) => n + r.end - r.start, 0) };
}
