/** bmaptool's block map (format 2.0): which 4 KiB blocks of an image hold data, with hashes. */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

export const BMAP_BLOCK = 4096;

/** Block ranges (inclusive) covering the mapped byte ranges. */
export function blockRanges(mapped: [number, number][], imageSize: number): [number, number][] {
  const out: [number, number][] = [];
  const last = Math.ceil(imageSize / BMAP_BLOCK) - 1;
  for (const [a, b] of mapped) {
    if (b <= a) continue;
    const first = Math.floor(a / BMAP_BLOCK);
    const end = Math.min(Math.ceil(b / BMAP_BLOCK) - 1, last);
    const prev = out.at(-1);
    if (prev && first <= prev[1] + 1) prev[1] = Math.max(prev[1], end);
    else out.push([first, end]);
  }
  return out;
}

function hashRange(fd: number, first: number, last: number, imageSize: number): string {
  const h = createHash('sha256');
  const buf = Buffer.alloc(1 << 20);
  let pos = first * BMAP_BLOCK;
  const end = Math.min((last + 1) * BMAP_BLOCK, imageSize);
  while (pos < end) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    pos += n;
  }
  return h.digest('hex');
}

/** The .bmap XML for an image file whose mapped byte ranges are known. */
export function createBmap(imagePath: string, imageSize: number, mapped: [number, number][]): string {
  const ranges = blockRanges(mapped, imageSize);
  const blocks = Math.ceil(imageSize / BMAP_BLOCK);
  const mappedBlocks = ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
  const fd = openSync(imagePath, 'r');
  let rangeXml = '';
  try {
    for (const [a, b] of ranges) rangeXml += `        <Range chksum="${hashRange(fd, a, b, imageSize)}"> ${a === b ? a : `${a}-${b}`} </Range>\n`;
  } finally {
    closeSync(fd);
  }
  const pct = blocks ? ((100 * mappedBlocks) / blocks).toFixed(1) : '0.0';
  const mib = (n: number): string => `${(n / (1 << 20)).toFixed(1)} MiB`;
  const render = (checksum: string): string =>
    `<?xml version="1.0" ?>
<!-- Block map of a NodeOS image, written by nodeos-bsp: only the listed blocks hold
     data (MBR, file-system metadata, files); the rest of the image is empty and need
     not be written to the card. Flash with "bmaptool copy" or "nodeos-bsp flash". -->

<bmap version="2.0">
    <!-- Image size in bytes: ${mib(imageSize)} -->
    <ImageSize> ${imageSize} </ImageSize>

    <!-- Size of a block in bytes -->
    <BlockSize> ${BMAP_BLOCK} </BlockSize>

    <!-- Count of blocks in the image file -->
    <BlocksCount> ${blocks} </BlocksCount>

    <!-- Count of mapped blocks: ${mib(mappedBlocks * BMAP_BLOCK)} or ${pct}% -->
    <MappedBlocksCount> ${mappedBlocks} </MappedBlocksCount>

    <!-- Type of checksum used in this file -->
    <ChecksumType> sha256 </ChecksumType>

    <!-- The checksum of this bmap file. When it is calculated, the value of
         the checksum has be zero (all ASCII "0" symbols).  -->
    <BmapFileChecksum> ${checksum} </BmapFileChecksum>

    <!-- The block map: ranges of mapped blocks with the SHA-256 of each range -->
    <BlockMap>
${rangeXml}    </BlockMap>
</bmap>
`;
  const zero = render('0'.repeat(64));
  return render(createHash('sha256').update(zero).digest('hex'));
}
