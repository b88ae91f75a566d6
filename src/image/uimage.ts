/**
 * U-Boot's legacy image format (`mkimage -T script`), for boot.scr: a 64-byte big-endian
 * header with CRC-32s of itself and of the data, then a table of sub-image sizes ending in
 * 0, then the script. Byte-identical with mkimage for the same inputs and timestamp.
 */
import { crc32 } from '../uboot-env/index.js';

const MAGIC = 0x27051956;
const OS_LINUX = 5;
const ARCH = { arm: 2, arm64: 22 } as const;
const TYPE_SCRIPT = 6;
const COMP_NONE = 0;
const NAME_LEN = 32;

/** A U-Boot script image (boot.scr) of `script`, stamped with `time` (seconds). */
export function scriptImage(script: string, o: { name: string; arch: keyof typeof ARCH; time: number }): Buffer {
  const body = Buffer.from(script, 'utf8');
  const data = Buffer.alloc(8 + body.length);
  data.writeUInt32BE(body.length, 0); // one sub-image; the 0 after it ends the table
  body.copy(data, 8);
  const h = Buffer.alloc(64);
  h.writeUInt32BE(MAGIC, 0);
  h.writeUInt32BE(o.time >>> 0, 8);
  h.writeUInt32BE(data.length, 12);
  h.writeUInt32BE(crc32(data), 24);
  h.writeUInt8(OS_LINUX, 28);
  h.writeUInt8(ARCH[o.arch], 29);
  h.writeUInt8(TYPE_SCRIPT, 30);
  h.writeUInt8(COMP_NONE, 31);
  Buffer.from(o.name, 'latin1').subarray(0, NAME_LEN - 1).copy(h, 32);
  h.writeUInt32BE(crc32(h), 4);
  return Buffer.concat([h, data]);
}
