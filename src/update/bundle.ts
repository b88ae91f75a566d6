/**
 * Update bundles (`.nodeos-update`): what a build puts in one slot, signed. A header names
 * the board, the build, the layout it was made for and each payload file with its size and
 * SHA-256; an Ed25519 signature covers the header, so checking the signature before anything
 * is written checks every byte that will be (each file's hash is checked as it is written).
 *
 *   "NODEOSUP"  u32 LE header length  u32 LE signature length  header (JSON)  signature
 *   zero padding to 4 KiB, then the files, each at a 4 KiB boundary
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { BspError } from '../errors.js';
import type { ReadAt } from '../fat/index.js';
import type { ImageLayout } from '../layout/index.js';
import { keyId, type TrustedKey } from './keys.js';

const MAGIC = 'NODEOSUP';
export const BUNDLE_FORMAT = 'nodeos-update/1';
const ALIGN = 4096;

/** The payload of one slot. */
export type BundleFile = 'kernel' | 'initramfs' | 'system';
export const BUNDLE_FILES: readonly BundleFile[] = ['kernel', 'initramfs', 'system'];

/** The signed header. */
export interface BundleHeader {
  format: typeof BUNDLE_FORMAT;
  board: string;
  build: string;
  /**
   * The build's version: its SOURCE_DATE_EPOCH (set it to the commit time and later builds
   * have higher ones). A card takes no older version than the one it runs without
   * --allow-downgrade; a bundle without one counts as 0.
   */
  version?: number;
  /** The layout of the image the bundle came from: a card takes it only if its own has the same slots. */
  layout: ImageLayout;
  /** Key that signed it (undefined: unsigned). */
  signedBy?: string;
  /** Offsets from the start of the bundle. */
  files: Record<BundleFile, { offset: number; size: number; sha256: string }>;
}

/** An opened bundle: its header as signed, and the signature. */
export interface Bundle {
  header: BundleHeader;
  headerBytes: Buffer;
  signature: Buffer;
  size: number;
}

const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/** The bundle's bytes (held in memory: a slot is some tens of MB). */
export function writeBundle(o: { board: string; build: string; version?: number; layout: ImageLayout; files: Record<BundleFile, Buffer>; key?: KeyObject }): Buffer {
  // The header's length does not depend on the offsets' digits enough to matter: lay out after a generous pad.
  const files = {} as BundleHeader['files'];
  const headerRoom = align(16 + 64 * 1024);
  let at = headerRoom;
  for (const f of BUNDLE_FILES) {
    const data = o.files[f];
    files[f] = { offset: at, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    at = align(at + data.length);
  }
  const header: BundleHeader = { format: BUNDLE_FORMAT, board: o.board, build: o.build, ...(o.version !== undefined ? { version: o.version } : {}), layout: o.layout, ...(o.key ? { signedBy: keyId(o.key) } : {}), files };
  const headerBytes = Buffer.from(JSON.stringify(header));
  const signature = o.key ? sign(null, headerBytes, o.key) : Buffer.alloc(0);
  if (16 + headerBytes.length + signature.length > headerRoom) throw new BspError('EUPDATE', 'the bundle header is too large');
  const out = Buffer.alloc(at);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(headerBytes.length, 8);
  out.writeUInt32LE(signature.length, 12);
  headerBytes.copy(out, 16);
  signature.copy(out, 16 + headerBytes.length);
  for (const f of BUNDLE_FILES) o.files[f].copy(out, files[f].offset);
  return out;
}

/** Read a bundle's header (nothing of the payload yet). */
export function openBundle(read: ReadAt, size: number, label: string): Bundle {
  const head = read(0, 16);
  if (head.length < 16 || head.toString('latin1', 0, 8) !== MAGIC) throw new BspError('EUPDATE_BUNDLE', `${label} is not a nodeos-bsp update bundle (build makes one next to the image: nodeos-<board>.nodeos-update)`);
  const hl = head.readUInt32LE(8);
  const sl = head.readUInt32LE(12);
  if (hl > 1 << 20 || sl > 1024 || 16 + hl + sl > size) throw new BspError('EUPDATE_BUNDLE', `${label}: the bundle header is damaged`);
  const headerBytes = read(16, hl);
  const signature = read(16 + hl, sl);
  let header: BundleHeader;
  try {
    header = JSON.parse(headerBytes.toString('utf8')) as BundleHeader;
  } catch {
    throw new BspError('EUPDATE_BUNDLE', `${label}: the bundle header is not JSON`);
  }
  if (header.format !== BUNDLE_FORMAT) throw new BspError('EUPDATE_BUNDLE', `${label} is ${JSON.stringify(header.format)}, not ${BUNDLE_FORMAT}: use the nodeos-bsp that built it`);
  if (header.version !== undefined && (!Number.isSafeInteger(header.version) || header.version < 0)) throw new BspError('EUPDATE_BUNDLE', `${label}: the bundle's version is not a whole number`);
  for (const f of BUNDLE_FILES) {
    const x = header.files?.[f];
    if (!x || !Number.isSafeInteger(x.offset) || !Number.isSafeInteger(x.size) || x.offset < 16 + hl + sl || x.offset + x.size > size || !/^[0-9a-f]{64}$/.test(x.sha256)) {
      throw new BspError('EUPDATE_BUNDLE', `${label}: the bundle's ${f} is missing or outside the file (truncated download?)`);
    }
  }
  return { header, headerBytes, signature, size };
}

/**
 * The signature must verify with one of the keys the running system trusts. An unsigned
 * bundle, or one signed by another key, is refused; nothing has been written yet.
 */
export function verifyBundle(b: Bundle, trusted: TrustedKey[], label: string): TrustedKey {
  if (b.signature.length === 0) {
    throw new BspError('EUPDATE_UNSIGNED', `${label} is not signed: build it with --signing-key (make one with nodeos-bsp keys create); boards take signed updates only`);
  }
  for (const k of trusted) {
    if (verify(null, b.headerBytes, createPublicKey(k.pem), b.signature)) return k;
  }
  const keys = trusted.length ? trusted.map((k) => k.id).join(', ') : 'none (it was built without --signing-key: reflash it with a signed build)';
  throw new BspError('EUPDATE_SIGNATURE', `${label} is signed by ${b.header.signedBy ?? 'an unknown key'}, which this system does not trust (it trusts ${keys}); nothing was written`);
}

/** The layout a bundle was made for must have the same slots as the card's (the disk signature is the card's own). */
export function checkCompatible(b: Bundle, layout: ImageLayout, label: string): void {
  if (b.header.board !== layout.board) throw new BspError('EUPDATE_BOARD', `${label} is for ${b.header.board}; this card is ${layout.board}`);
  const shape = (l: ImageLayout): string => JSON.stringify({ ...l, diskSignature: undefined });
  if (shape(b.header.layout) !== shape(layout)) {
    throw new BspError('EUPDATE_LAYOUT', `${label} was built for another card layout (partitions, slots or boot files differ from this card's layout.json): flash the new image instead`);
  }
}
