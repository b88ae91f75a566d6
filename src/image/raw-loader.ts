/**
 * Boot loader pieces a board's boot ROM reads from raw sectors of the card, before any
 * partition (profile boot.uboot.raw: a file of the U-Boot package, its offset, the signature
 * the ROM checks; docs/adding-a-board.md lists the SoCs' values, the profiles hold them).
 * Each is written where its profile says, into the image and its .bmap (so `flash` writes
 * it), after the checks the board itself cannot report: the file carries what the ROM looks
 * for, no piece runs into another or into the first partition.
 */
import { BspError } from '../errors.js';
import type { BoardProfile } from '../boards/index.js';
import type { RawRegion } from '../layout/index.js';

/** A piece placed on the card: the file it came from (or what its zeros clear), where, and its bytes. */
export interface RawPiece {
  file: string;
  offset: number;
  data: Buffer;
  zeros?: true;
}

const KiB = (n: number): string => `${n / 1024} KiB`;

/**
 * The profile's raw pieces, read by `read` (a path under usr/lib/u-boot of the U-Boot package),
 * and zeros over `clear` (where the U-Boot build reads an environment of its own on the card:
 * flashed over a card another system used, U-Boot would load that system's bootcmd), checked:
 * each file has its signature, nothing overlaps another piece, the MBR, or the first partition
 * (`firstPartition`, bytes from the card's start).
 */
export function rawPieces(profile: BoardProfile, read: (file: string) => Buffer, firstPartition: number, clear: { offset: number; size: number }[] = []): RawPiece[] {
  const u = profile.boot.uboot;
  const pieces = (u?.raw ?? []).map((r): RawPiece => {
    const data = read(r.file);
    if (r.signature) {
      const want = Buffer.from(r.signature.hex, 'hex');
      const got = data.subarray(r.signature.at, r.signature.at + want.length);
      if (!got.equals(want)) {
        throw new BspError('EARTIFACT', `${r.file} from ${u!.package} has ${got.toString('hex') || 'nothing'} at byte ${r.signature.at}, not ${r.signature.hex} (what ${profile.name}'s boot ROM looks for): is it the build for this board?`);
      }
    }
    return { file: r.file, offset: r.offset, data };
  });
  for (const c of clear) {
    pieces.push({ file: `U-Boot's own environment (CONFIG_ENV_OFFSET 0x${c.offset.toString(16)})`, offset: c.offset, data: Buffer.alloc(c.size), zeros: true });
  }
  const sorted = [...pieces].sort((a, b) => a.offset - b.offset);
  let end = 512; // the MBR
  let last = 'the MBR';
  for (const p of sorted) {
    if (p.offset < end) throw new BspError('EPROFILE_INVALID', `${profile.id}: boot.uboot.raw ${p.file} at ${KiB(p.offset)} overlaps ${last} (which ends at ${end} bytes)`);
    end = p.offset + p.data.length;
    last = `${p.file} (${p.data.length} bytes at ${KiB(p.offset)})`;
  }
  if (end > firstPartition) {
    const need = Math.ceil(end / (1 << 20) / 4) * 4;
    throw new BspError('EPROFILE_INVALID', `${profile.id}: ${last} ends at ${end} bytes, inside the first partition (it starts at ${firstPartition / (1 << 20)} MiB): start the first partition at ${need} MiB or later`);
  }
  return pieces;
}

/** What layout.json says of the pieces. */
export const rawRegions = (pieces: RawPiece[]): RawRegion[] => pieces.map((p) => ({ file: p.file, offset: p.offset, size: p.data.length, ...(p.zeros ? { zeros: true as const } : {}) }));
