/**
 * cpio "newc" archives (the initramfs format; the builder writes the small initramfs, emulate
 * appends the system image to it for direct boots), written deterministically: entries sorted
 * by path, parents first, fixed inode numbers, owner root and one timestamp.
 */

/** An archive member. */
export type CpioEntry =
  | { path: string; type: 'dir'; mode?: number }
  | { path: string; type: 'file'; data: Buffer; mode?: number }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'char' | 'block'; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function header(ino: number, mode: number, size: number, mtime: number, name: string, rdevMajor = 0, rdevMinor = 0): Buffer {
  const nameBytes = Buffer.byteLength(name) + 1;
  const fields = ['070701', hex8(ino), hex8(mode), hex8(0), hex8(0), hex8(1), hex8(mtime), hex8(size), hex8(0), hex8(0), hex8(rdevMajor), hex8(rdevMinor), hex8(nameBytes), hex8(0)];
  const head = Buffer.from(fields.join(''), 'latin1');
  const out = Buffer.alloc(head.length + nameBytes + pad4(head.length + nameBytes));
  head.copy(out);
  out.write(name, head.length, 'utf8');
  return out;
}

/** Write a newc archive; directories implied by paths are added. `mtime` in seconds. */
export function writeCpio(entries: CpioEntry[], mtime: number): Buffer {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!byPath.has(dir)) byPath.set(dir, { path: dir, type: 'dir' });
    }
    byPath.set(path, { ...e, path });
  }
  const sorted = [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunks: Buffer[] = [];
  let ino = 1;
  for (const e of sorted) {
    let data: Buffer = Buffer.alloc(0);
    let mode: number;
    let maj = 0;
    let min = 0;
    switch (e.type) {
      case 'dir':
        mode = S_IFDIR | (e.mode ?? 0o755);
        break;
      case 'file':
        mode = S_IFREG | (e.mode ?? 0o644);
        data = e.data;
        break;
      case 'symlink':
        mode = S_IFLNK | 0o777;
        data = Buffer.from(e.target);
        break;
      default:
        mode = (e.type === 'char' ? S_IFCHR : S_IFBLK) | (e.mode ?? 0o600);
        maj = e.major;
        min = e.minor;
    }
    chunks.push(header(ino++, mode, data.length, mtime, e.path, maj, min), data, Buffer.alloc(pad4(data.length)));
  }
  chunks.push(header(0, 0, 0, 0, 'TRAILER!!!'));
  return Buffer.concat(chunks);
}
