/**
 * Reading bmaptool block maps, every format bmaptool writes (1.0–1.3, 1.4 = 2.0), with an
 * XML parser (saxes: strict, linear time). The file's own checksum is verified the way
 * bmaptool does it (1.3: BmapFileSHA1; 1.4/2.x: BmapFileChecksum of ChecksumType). Anything
 * not understood is EBMAP: an element or range attribute of no known format, an unknown
 * major version, a range outside the image, or no ranges for a non-empty image.
 */
import { createHash, getHashes } from 'node:crypto';
import { SaxesParser } from 'saxes';
import { FlashError } from '../src/errors.js';

/** Checksum types bmaptool writes (any hashlib name; these are the ones it is used with). */
export const BMAP_CHECKSUMS = ['sha1', 'sha256', 'md5', 'sha512', 'sha224', 'sha384'] as const;
/** A checksum type of a bmap. */
export type BmapChecksum = (typeof BMAP_CHECKSUMS)[number];

/** A parsed block map. */
export interface Bmap {
  /** Format version as written, e.g. "2.0". */
  version: string;
  imageSize: number;
  blockSize: number;
  /** Checksum of the ranges, when the format has them. */
  checksumType?: BmapChecksum;
  /** Mapped ranges in bytes: [start, end) with the range's checksum (hex, of `checksumType`) if given. */
  ranges: { start: number; end: number; checksum?: string }[];
  mappedBytes: number;
}

/** Elements a bmap may hold under <bmap>, per format. */
const ELEMENTS: Record<'1' | '1.3' | '2', string[]> = {
  '1': ['ImageSize', 'BlockSize', 'BlocksCount', 'MappedBlocksCount', 'BlockMap'],
  '1.3': ['ImageSize', 'BlockSize', 'BlocksCount', 'MappedBlocksCount', 'BmapFileSHA1', 'BlockMap'],
  '2': ['ImageSize', 'BlockSize', 'BlocksCount', 'MappedBlocksCount', 'ChecksumType', 'BmapFileChecksum', 'BlockMap'],
};

interface RawRange {
  attrs: Record<string, string>;
  text: string;
  line: number;
}

/** The XML reduced to what a bmap has: the root's version, its leaf elements' text, and the ranges. */
function readXml(xml: string, label: string): { version: string; fields: Map<string, string>; ranges: RawRange[]; sawBlockMap: boolean } {
  const parser = new SaxesParser({ position: true });
  const stack: string[] = [];
  const fields = new Map<string, string>();
  const ranges: RawRange[] = [];
  let version: string | undefined;
  let text = '';
  let rangeAttrs: Record<string, string> = {};
  let sawBlockMap = false;
  const bad = (why: string): never => {
    throw new FlashError('EBMAP', `${label}: line ${parser.line}: ${why}`);
  };
  parser.on('error', (e) => bad(`not well-formed XML (${e.message.replace(/^[^:]*:\d+:\d+: /, '')})`));
  parser.on('doctype', () => bad('a DOCTYPE is not allowed in a bmap'));
  parser.on('opentag', (t) => {
    const depth = stack.length;
    const attrs = Object.fromEntries(Object.entries(t.attributes).map(([k, v]) => [k, typeof v === 'string' ? v : v.value]));
    if (depth === 0) {
      if (t.name !== 'bmap') bad(`the root element is <${t.name}>, not <bmap>`);
      version = attrs.version ?? bad('<bmap> has no version attribute');
      for (const k of Object.keys(attrs)) if (k !== 'version') bad(`<bmap> has an unknown attribute ${k}`);
    } else if (depth === 1) {
      if (fields.has(t.name) || (t.name === 'BlockMap' && sawBlockMap)) bad(`<${t.name}> appears twice`);
      if (Object.keys(attrs).length > 0) bad(`<${t.name}> has attributes`);
      if (t.name === 'BlockMap') sawBlockMap = true;
    } else if (depth === 2 && stack[1] === 'BlockMap') {
      if (t.name !== 'Range') bad(`<BlockMap> holds <${t.name}>, not <Range>`);
      rangeAttrs = attrs;
    } else bad(`<${t.name}> inside <${stack.at(-1)}> is not part of any bmap format`);
    stack.push(t.name);
    text = '';
  });
  parser.on('text', (s) => {
    if (stack.length === 2 && stack[1] !== 'BlockMap') text += s;
    else if (stack.length === 3) text += s;
    else if (s.trim() !== '') bad(`unexpected text ${JSON.stringify(s.trim().slice(0, 40))}`);
  });
  parser.on('cdata', () => bad('CDATA is not part of any bmap format'));
  parser.on('closetag', (t) => {
    if (stack.length === 2 && t.name !== 'BlockMap') fields.set(t.name, text.trim());
    if (stack.length === 3) ranges.push({ attrs: rangeAttrs, text: text.trim(), line: parser.line });
    stack.pop();
    text = '';
  });
  parser.write(xml).close();
  if (version === undefined) bad('no <bmap> element');
  return { version: version!, fields, ranges, sawBlockMap };
}

const DIGITS = /^\d+$/;
const HEX = /^[0-9a-fA-F]+$/;

/** Verify the file's own checksum as bmaptool does: its first occurrence zeroed, then hashed. */
function checkFileChecksum(xml: string, declared: string, type: BmapChecksum, label: string): void {
  const len = createHash(type).digest('hex').length;
  if (declared.length !== len || !HEX.test(declared)) throw new FlashError('EBMAP', `${label}: the file's own ${type} checksum "${declared}" is not ${len} hex digits`);
  const bytes = Buffer.from(xml, 'utf8');
  const at = bytes.indexOf(declared);
  bytes.fill('0', at, at + len);
  const actual = createHash(type).update(bytes).digest('hex');
  if (actual !== declared.toLowerCase()) throw new FlashError('EBMAP', `${label}: the file's own checksum is wrong (${actual} != ${declared}); it was edited or damaged`);
}

/** Parse a .bmap; anything wrong or not understood is EBMAP. */
export function parseBmap(xml: string, label = 'bmap'): Bmap {
  const { version, fields, ranges: raw, sawBlockMap } = readXml(xml, label);
  const v = /^(\d+)\.(\d+)$/.exec(version);
  if (!v) throw new FlashError('EBMAP', `${label}: version "${version}" is not major.minor`);
  const major = Number(v[1]);
  const minor = Number(v[2]);
  if (major < 1 || major > 2) throw new FlashError('EBMAP', `${label}: bmap format ${version} is not supported (1.0 to 2.x are); update nodeos-bsp or write the bmap with an older bmaptool`);
  // 1.4 was released by mistake and is 2.0's format (bmaptool treats them alike).
  const format = major === 2 || minor >= 4 ? '2' : minor === 3 ? '1.3' : '1';
  for (const name of fields.keys()) if (!ELEMENTS[format].includes(name)) throw new FlashError('EBMAP', `${label}: <${name}> is not part of bmap format ${version}`);
  if (!sawBlockMap) throw new FlashError('EBMAP', `${label}: no <BlockMap>`);
  const num = (name: string, required: boolean): number | undefined => {
    const s = fields.get(name);
    if (s === undefined) {
      if (required) throw new FlashError('EBMAP', `${label}: <${name}> is missing`);
      return undefined;
    }
    if (!DIGITS.test(s) || !Number.isSafeInteger(Number(s))) throw new FlashError('EBMAP', `${label}: <${name}> is "${s}", not a whole number`);
    return Number(s);
  };
  const imageSize = num('ImageSize', true)!;
  const blockSize = num('BlockSize', true)!;
  if (blockSize === 0) throw new FlashError('EBMAP', `${label}: <BlockSize> is 0`);
  const blocks = Math.ceil(imageSize / blockSize);
  const blocksCount = num('BlocksCount', true)!;
  if (blocksCount !== blocks) throw new FlashError('EBMAP', `${label}: ${imageSize} bytes are ${blocks} blocks of ${blockSize}, but <BlocksCount> says ${blocksCount}`);

  let checksumType: BmapChecksum | undefined;
  let attr: string | undefined;
  if (format === '2') {
    const t = (fields.get('ChecksumType') ?? '').toLowerCase();
    if (!t) throw new FlashError('EBMAP', `${label}: format ${version} needs <ChecksumType>`);
    if (!(BMAP_CHECKSUMS as readonly string[]).includes(t) || !getHashes().includes(t)) throw new FlashError('EBMAP', `${label}: checksum type "${t}" is not supported (${BMAP_CHECKSUMS.join(', ')})`);
    checksumType = t as BmapChecksum;
    attr = 'chksum';
    const own = fields.get('BmapFileChecksum');
    if (!own) throw new FlashError('EBMAP', `${label}: format ${version} needs <BmapFileChecksum>`);
    checkFileChecksum(xml, own, checksumType, label);
  } else {
    // 1.2 and 1.3 carry SHA-1s of the ranges; 1.3 also one of the file itself.
    checksumType = 'sha1';
    attr = 'sha1';
    if (format === '1.3') {
      const own = fields.get('BmapFileSHA1');
      if (!own) throw new FlashError('EBMAP', `${label}: format ${version} needs <BmapFileSHA1>`);
      checkFileChecksum(xml, own, 'sha1', label);
    }
  }
  const hexLen = createHash(checksumType).digest('hex').length;

  const ranges: Bmap['ranges'] = [];
  let anyChecksum = false;
  for (const r of raw) {
    for (const k of Object.keys(r.attrs)) if (k !== attr) throw new FlashError('EBMAP', `${label}: line ${r.line}: range attribute "${k}" is not part of bmap format ${version}${format === '2' ? ' (chksum)' : ' (sha1)'}`);
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(r.text);
    if (!m) throw new FlashError('EBMAP', `${label}: line ${r.line}: range "${r.text}" is not "first-last" or "block"`);
    const first = Number(m[1]);
    const last = m[2] !== undefined ? Number(m[2]) : first;
    if (last < first) throw new FlashError('EBMAP', `${label}: line ${r.line}: range ${r.text} ends before it starts`);
    if (last >= blocks) throw new FlashError('EBMAP', `${label}: line ${r.line}: range ${r.text} goes past the image's end (block ${blocks - 1})`);
    const start = first * blockSize;
    const end = Math.min((last + 1) * blockSize, imageSize);
    const prev = ranges.at(-1);
    if (prev && start < prev.end) throw new FlashError('EBMAP', `${label}: line ${r.line}: ranges overlap or are out of order at block ${first}`);
    const sum = r.attrs[attr];
    if (sum !== undefined && (sum.length !== hexLen || !HEX.test(sum))) throw new FlashError('EBMAP', `${label}: line ${r.line}: "${sum}" is not a ${checksumType} checksum`);
    if (sum !== undefined) anyChecksum = true;
    ranges.push({ start, end, ...(sum !== undefined ? { checksum: sum.toLowerCase() } : {}) });
  }
  const mappedBytes = ranges.reduce((n, r) => n + r.end - r.start, 0);
  if (ranges.length === 0 && imageSize > 0) throw new FlashError('EBMAP', `${label}: no ranges for a ${imageSize}-byte image: nothing would be written`);
  const mapped = num('MappedBlocksCount', format !== '1');
  const mappedBlocks = ranges.reduce((n, r) => n + Math.ceil((r.end - r.start) / blockSize), 0);
  if (mapped !== undefined && mapped !== mappedBlocks) throw new FlashError('EBMAP', `${label}: <MappedBlocksCount> says ${mapped} but the ranges hold ${mappedBlocks} blocks`);
  return { version, imageSize, blockSize, ...(anyChecksum ? { checksumType } : {}), ranges, mappedBytes };
}
