/** Just enough ELF reading to find a binary's interpreter and the libraries it needs. */

/** What the dynamic loader needs to run a binary. */
export interface ElfDeps {
  /** PT_INTERP, e.g. /lib/ld-linux-aarch64.so.1. */
  interpreter?: string;
  /** DT_NEEDED entries, e.g. libstdc++.so.6. */
  needed: string[];
  /** e_machine (183 = aarch64). */
  machine: number;
}

const PT_INTERP = 3;
const PT_DYNAMIC = 2;
const DT_NEEDED = 1;
const DT_STRTAB = 5;

/** Parse a 64-bit little-endian ELF file (the only kind the kit ships). */
export function readElfDeps(buf: Buffer): ElfDeps {
  if (buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('only 64-bit little-endian ELF is supported');
  const machine = buf.readUInt16LE(18);
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let interpreter: string | undefined;
  let dyn: { offset: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = buf.readUInt32LE(p);
    const offset = Number(buf.readBigUInt64LE(p + 8));
    const vaddr = Number(buf.readBigUInt64LE(p + 16));
    const filesz = Number(buf.readBigUInt64LE(p + 32));
    if (type === 1) loads.push({ vaddr, offset, filesz });
    if (type === PT_INTERP) interpreter = buf.toString('latin1', offset, offset + filesz).replace(/\0+$/, '');
    if (type === PT_DYNAMIC) dyn = { offset, size: filesz };
  }
  const needed: number[] = [];
  let strtab = 0;
  if (dyn) {
    for (let p = dyn.offset; p + 16 <= dyn.offset + dyn.size; p += 16) {
      const tag = Number(buf.readBigInt64LE(p));
      const val = Number(buf.readBigUInt64LE(p + 8));
      if (tag === 0) break;
      if (tag === DT_NEEDED) needed.push(val);
      if (tag === DT_STRTAB) strtab = val;
    }
  }
  // DT_STRTAB is a virtual address: map it to a file offset through the PT_LOAD segments.
  const seg = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
  const strOff = seg ? strtab - seg.vaddr + seg.offset : strtab;
  const cstr = (off: number): string => buf.toString('latin1', off, buf.indexOf(0, off));
  const deps: ElfDeps = { needed: needed.map((n) => cstr(strOff + n)), machine };
  if (interpreter) deps.interpreter = interpreter;
  return deps;
}
