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

/** A member read back from an archive (devices are refused: no reader here needs them). */
export type CpioMember =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; data: Buffer; mode: number }
  | { path: string; type: 'symlink'; target: string };

/**
 * Read a newc archive (ours, or GNU cpio's -H newc). Every field and length is checked
 * against the buffer, so a truncated or damaged archive is an error naming the offset,
 * never a short read; a missing TRAILER!!! is one too.
 */
export function readCpio(buf: Buffer): CpioMember[] {
  const out: CpioMember[] = [];
  let at = 0;
  const fail = (why: string): never => {
    throw new Error(`not a whole newc cpio archive: ${why} at byte ${at}`);
  };
  for (;;) {
    if (at + 110 > buf.length) fail('the archive ends inside a header');
    const head = buf.toString('latin1', at, at + 110);
    if (!head.startsWith('070701') && !head.startsWith('070702')) fail(`bad magic ${JSON.stringify(head.slice(0, 6))}`);
    const field = (i: number): number => {
      const s = head.slice(6 + i * 8, 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(s)) fail(`bad header field ${i}`);
      return parseInt(s, 16);
    };
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const nameAt = at + 110;
    if (nameSize < 1 || nameAt + nameSize > buf.length) fail('the archive ends inside a name');
    const name = buf.toString('utf8', nameAt, nameAt + nameSize - 1);
    const dataAt = nameAt + nameSize + pad4(110 + nameSize);
    if (dataAt + size > buf.length) fail(`the archive ends inside ${name}`);
    const data = buf.subarray(dataAt, dataAt + size);
    at = dataAt + size + pad4(size);
    if (name === 'TRAILER!!!') return out;
    // GNU cpio names members ./x when given ./x (and . for the top): the same member as x.
    const path = name === '.' ? '' : name.replace(/^\.\//, '');
    if (path === '') continue;
    const type = mode & 0o170000;
    if (type === S_IFDIR) out.push({ path, type: 'dir', mode: mode & 0o7777 });
    else if (type === S_IFREG) out.push({ path, type: 'file', data, mode: mode & 0o7777 });
    else if (type === S_IFLNK) out.push({ path, type: 'symlink', target: data.toString('utf8') });
    else fail(`${name} is neither a file, a directory nor a symlink`);
  }
}
