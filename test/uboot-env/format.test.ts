import assert from 'node:assert/strict';
import {
  checkName,
  crc32,
  currentCopy,
  decodeEnv,
  encodeEnv,
  EnvCrcError,
  EnvError,
  fromText,
  nextFlags,
  parseFwEnvConfig,
  parseScript,
  textToData,
} from '../../src/index.js';

const code = (c: string) => (e: unknown) => e instanceof EnvError && e.code === c;

describe('uboot-env format', () => {
  it('crc32 is zlib\'s (check value of "123456789")', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.alloc(0)), 0);
  });

  it('encodes and decodes, keeping order, flags and padding', () => {
    const vars: [string, string][] = [['zeta', '1'], ['bootcmd', 'load mmc 0:1 ${kernel_addr_r} Image; booti'], ['empty', ''], ['utf8', 'héllo']];
    const single = encodeEnv(vars, { size: 0x4000 });
    assert.equal(single.length, 0x4000);
    const d = decodeEnv(single);
    assert.deepEqual([...d.vars], vars);
    assert.equal(d.flags, undefined);
    assert.equal(d.pad, 0);
    const red = encodeEnv(vars, { size: 0x4000, redundant: true, flags: 7, pad: 0xff });
    const r = decodeEnv(red, { redundant: true });
    assert.deepEqual([...r.vars], vars);
    assert.equal(r.flags, 7);
    assert.equal(r.pad, 0xff);
    assert.equal(red.readUInt32LE(0), crc32(red.subarray(5)), 'CRC covers the data area after the flags byte');
  });

  it('rejects bad names and values, and data that does not fit (EENV_FULL)', () => {
    assert.throws(() => encodeEnv([['a=b', 'c']], { size: 64 }), code('EENV_FORMAT'));
    // A new name is checked where it comes in; one read from a card (even empty) is kept.
    assert.throws(() => checkName(''), code('EENV_FORMAT'));
    assert.throws(() => checkName('a\nb'), code('EENV_FORMAT'));
    assert.throws(() => encodeEnv([['a', 'c\0d']], { size: 64 }), code('EENV_FORMAT'));
    // 4 CRC bytes + "a=" + 56 chars + NUL + NUL = 64 bytes: fits exactly; one more does not.
    assert.equal(encodeEnv([['a', 'x'.repeat(56)]], { size: 64 }).length, 64);
    assert.throws(() => encodeEnv([['a', 'x'.repeat(57)]], { size: 64 }), code('EENV_FULL'));
    assert.throws(() => encodeEnv([['a', 'x'.repeat(56)]], { size: 64, redundant: true }), code('EENV_FULL'));
  });

  it('reads odd entries as fw_printenv does (skips one without "=", keeps an empty name); a broken layout is EENV_FORMAT', () => {
    const seal = (data: string): Buffer => {
      const b = Buffer.alloc(32, 0);
      Buffer.from(data, 'latin1').copy(b, 4);
      b.writeUInt32LE(crc32(b.subarray(4)), 0);
      return b;
    };
    const odd = decodeEnv(seal('a=1\0noequals\0=value\0\0'));
    assert.deepEqual([...odd.vars], [['a', '1'], ['', 'value']]);
    assert.deepEqual(odd.skipped, ['noequals']);
    const full = Buffer.alloc(16, 0x61);
    full.writeUInt32LE(crc32(full.subarray(4)), 0);
    assert.throws(() => decodeEnv(full), code('EENV_FORMAT'), 'no terminator');
    assert.throws(() => decodeEnv(Buffer.alloc(5)), code('EENV_SIZE'));
  });

  it('every single-byte corruption of a block is EENV_CRC (all positions of a 4 KiB env)', () => {
    const block = encodeEnv([['bootcmd', 'booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdt_addr_r}'], ['bootdelay', '0']], { size: 0x1000 });
    let flips = 0;
    for (let i = 0; i < block.length; i++) {
      for (const x of [0xff, 0x01]) {
        const bad = Buffer.from(block);
        bad[i]! ^= x;
        assert.throws(() => decodeEnv(bad), (e: unknown) => e instanceof EnvCrcError && e.code === 'EENV_CRC', `byte ${i} ^ ${x}`);
        flips++;
      }
    }
    assert.equal(flips, 2 * 0x1000);
  });

  it('random corruptions of a 16 KiB redundant block are EENV_CRC (outside the flags byte)', () => {
    const block = encodeEnv([['a', '1'], ['b', '2']], { size: 0x4000, redundant: true, flags: 3 });
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let k = 0; k < 3000; k++) {
      let i = rnd(block.length);
      if (i === 4) i = 5; // the flags byte is outside the CRC by design; selection handles it
      const bad = Buffer.from(block);
      bad[i]! ^= 1 + rnd(255);
      assert.throws(() => decodeEnv(bad, { redundant: true }), code('EENV_CRC'), `byte ${i}`);
    }
  });

  it('picks the current redundant copy like U-Boot (incremental and boolean flags)', () => {
    assert.equal(currentCopy(1, 1, 'incremental'), 0);
    assert.equal(currentCopy(1, 2, 'incremental'), 1);
    assert.equal(currentCopy(5, 4, 'incremental'), 0);
    assert.equal(currentCopy(255, 0, 'incremental'), 1, '0 follows 255');
    assert.equal(currentCopy(0, 255, 'incremental'), 0);
    assert.equal(nextFlags(255, 'incremental'), 0);
    assert.equal(currentCopy(1, 0, 'boolean'), 0);
    assert.equal(currentCopy(0, 1, 'boolean'), 1);
    assert.equal(currentCopy(0xff, 0, 'boolean'), 1);
    assert.equal(nextFlags(7, 'boolean'), 1);
  });
});

describe('uboot-env text', () => {
  it("follows mkenvimage's rules: comments, blank lines, continuation, duplicates", () => {
    const text = '# comment\nbootdelay=3\n\nbootcmd=echo one;\\\necho two\n #not a comment=x\nbootdelay=0\n';
    assert.deepEqual([...fromText(text)], [['bootdelay', '0'], ['bootcmd', 'echo one;\necho two'], [' #not a comment', 'x']]);
    assert.deepEqual(textToData(Buffer.from('a=1')), Buffer.from('a=1\0\0'), 'no final newline');
  });

  it('a line without = is EENV_FORMAT', () => {
    assert.throws(() => fromText('good=1\nbad line\n'), code('EENV_FORMAT'));
    assert.throws(() => fromText('=novalue\n'), code('EENV_FORMAT'));
  });

  it('parses fw_setenv scripts', () => {
    assert.deepEqual(parseScript('# c\nbootdelay 0\nbootargs console=ttyS1,115200 TERM=dumb\nremoveme\n\n'), [
      ['bootdelay', '0'],
      ['bootargs', 'console=ttyS1,115200 TERM=dumb'],
      ['removeme', undefined],
    ]);
  });
});

describe('fw_env.config', () => {
  it('parses single and redundant lines, hex sizes with or without 0x, negative offsets', () => {
    assert.deepEqual(parseFwEnvConfig('# comment\n/boot/uboot.env 0x0000 0x4000\n'), { copies: [{ path: '/boot/uboot.env', offset: 0, size: 0x4000 }], scheme: 'incremental' });
    const r = parseFwEnvConfig('/dev/mmcblk0 -0x8000 4000 200 20\n/dev/mmcblk0 -0x4000 4000\n');
    assert.deepEqual(r.copies, [
      { path: '/dev/mmcblk0', offset: -0x8000, size: 0x4000, sectorSize: 0x200, sectors: 0x20 },
      { path: '/dev/mmcblk0', offset: -0x4000, size: 0x4000 },
    ]);
    assert.equal(parseFwEnvConfig('/dev/sda 1048576 0x4000').copies[0].offset, 1048576);
  });

  it('rejects malformed configs with EENV_CONFIG', () => {
    assert.throws(() => parseFwEnvConfig(''), code('EENV_CONFIG'));
    assert.throws(() => parseFwEnvConfig('/dev/x 0x0'), code('EENV_CONFIG'));
    assert.throws(() => parseFwEnvConfig('/dev/x zero 0x4000'), code('EENV_CONFIG'));
    assert.throws(() => parseFwEnvConfig('a 0 4000\nb 0 4000\nc 0 4000'), code('EENV_CONFIG'));
    assert.throws(() => parseFwEnvConfig('a 0 4000\nb 0 2000'), code('EENV_CONFIG'));
  });
});
