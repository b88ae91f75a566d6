/**
 * `npm run bench`: our commands side by side with the reference tools, in one run, reported
 * as ratios (ours / reference; below 1 is faster). Needs `npm run build` and the Debian
 * tools (.ci/setup installs them). Numbers are medians of repeated runs; nothing asserts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildImage, buildKernel, kernelSourceOf, Cache, createBmap, createImage, decodeEnv, encodeEnv, fetchArtifacts, fromText, getBoard, prepareEmulation, startEmulation, withKernelSource, writeSparseImage, type BoardProfile } from '../../src/index.js';
import { parseBmap } from '../../flash/index.js';
import { packageRoot } from '../../src/paths.js';
import { Console } from '../helpers/console.js';
import { baselineKit, bootBench } from './boot.mjs';
import { fleetBench } from './fleet.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
/** BENCH_ONLY=env,flash,image picks sections (default: all). */
const want = (section: string): boolean => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(section);
const cli = join(packageRoot(), 'dist/src/cli/main.js');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeCmd(cmd: string, args: string[], setup?: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    setup?.();
    const t = performance.now();
    const r = spawnSync(cmd, args);
    times.push(performance.now() - t);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.toString()}`);
  }
  return median(times);
}

function timeFn(fn: () => void, n: number): number {
  fn();
  const t = performance.now();
  for (let i = 0; i < n; i++) fn();
  return (performance.now() - t) / n;
}

const dir = mkdtempSync(join(tmpdir(), 'nodeos-bsp-bench-'));
// Top-level await: this file is an ES module run by tsx.
try {
  if (want('env')) envBench(dir);
  if (want('bmap')) bmapBench(dir);
  if (want('flash')) await flashBench(dir);
  if (want('image')) await imageBench(dir);
  if (want('layers')) await layersBench(dir);
  if (want('kernel')) await kernelBench(dir);
  if (want('boot')) await bootBench(dir, cli);
  if (want('fleet')) await fleetBench(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** uboot-env: our CLI against mkenvimage, fw_printenv, fw_setenv (whole processes). */
function envBench(dir: string): void {
  const lines = ['bootdelay=0', 'bootcmd=fatload mmc 0:1 ${kernel_addr_r} Image.gz; booti ${kernel_addr_r} - ${fdt_addr_r}'];
  for (let i = 0; i < 200; i++) lines.push(`var${i}=${'x'.repeat(40)}`);
  const text = lines.join('\n') + '\n';
  const input = join(dir, 'env.txt');
  writeFileSync(input, text);
  const env = join(dir, 'uboot.env');
  const pristine = join(dir, 'pristine.env');
  writeFileSync(pristine, createImage(text, { size: 0x4000 }));
  const cfg = join(dir, 'fw_env.config');
  writeFileSync(cfg, `${env} 0x0 0x4000\n`);
  const reset = (): void => copyFileSync(pristine, env);

  const rows: [string, number, number][] = [];
  rows.push(['env create vs mkenvimage', timeCmd('node', [cli, 'env', 'create', '-s', '0x4000', '-o', join(dir, 'a.bin'), input]), timeCmd('mkenvimage', ['-s', '0x4000', '-o', join(dir, 'b.bin'), input])]);
  reset();
  rows.push(['env print vs fw_printenv', timeCmd('node', [cli, 'env', 'print', '-c', cfg]), timeCmd('fw_printenv', ['-c', cfg])]);
  rows.push(['env set vs fw_setenv', timeCmd('node', [cli, 'env', 'set', '-c', cfg, 'bootdelay=3'], reset), timeCmd('fw_setenv', ['-c', cfg, 'bootdelay', '3'], reset)]);
  const node = timeCmd('node', ['-e', '0']);

  console.log(`nodeos-bsp bench (median of ${RUNS} runs, whole processes; node -e 0 alone: ${node.toFixed(1)} ms)\n`);
  console.log('case                          ours ms   ref ms   ratio   ratio minus node start-up');
  for (const [name, ours, ref] of rows) {
    console.log(`${name.padEnd(28)} ${ours.toFixed(1).padStart(7)} ${ref.toFixed(1).padStart(8)} ${(ours / ref).toFixed(2).padStart(7)} ${((ours - node) / ref).toFixed(2).padStart(10)}`);
  }
  const vars = [...fromText(text)];
  const enc = timeFn(() => encodeEnv(vars, { size: 0x4000 }), 2000);
  const block = encodeEnv(vars, { size: 0x4000 });
  const dec = timeFn(() => decodeEnv(block), 2000);
  console.log(`\nin process: encode 16 KiB env ${(enc * 1000).toFixed(1)} µs, decode+CRC ${(dec * 1000).toFixed(1)} µs`);
}

/**
 * Reading a block map: ours (saxes + checks) against bmaptool's own parser (ElementTree +
 * its checksum check, in its BmapCopy constructor), on a bmap with many ranges; and a
 * malformed one that the old regex parser took minutes over.
 */
function bmapBench(dir: string): void {
  const blocks = 400_000;
  const size = blocks * 4096;
  // Every other block mapped: 200,000 ranges, each with a sha256.
  const extents = Array.from({ length: blocks / 2 }, (_, i) => ({ offset: i * 8192, data: Buffer.alloc(4096, i & 0xff) }));
  const image = join(dir, 'ranges.img');
  const mapped = writeSparseImage(image, size, extents);
  const xml = createBmap(image, size, mapped);
  const bmapFile = join(dir, 'ranges.bmap');
  writeFileSync(bmapFile, xml);
  const ours = median(Array.from({ length: 5 }, () => timeFn(() => parseBmap(xml), 1)));
  const py = readFileSync(execFileSync('sh', ['-c', 'command -v bmaptool']).toString().trim(), 'utf8').split('\n')[0]!.replace(/^#!\s*/, '');
  const script = [
    'import sys, time',
    'from bmaptools.BmapCopy import BmapCopy',
    'ts = []',
    'for _ in range(5):',
    '    t = time.perf_counter()',
    "    BmapCopy(open(sys.argv[1], 'rb'), open('/dev/null', 'wb'), open(sys.argv[2], 'r'))",
    '    ts.append(time.perf_counter() - t)',
    'print(sorted(ts)[2] * 1000)',
  ].join('\n');
  const theirs = Number(execFileSync(py, ['-c', script, image, bmapFile]).toString().trim());
  const bad = '<bmap version="2.0"><ImageSize>' + ' '.repeat(30_000);
  const malformed = timeFn(() => {
    try {
      parseBmap(bad);
    } catch {
      /* EBMAP, as expected */
    }
  }, 20);
  console.log(`\nbmap: ${(xml.length / (1 << 20)).toFixed(1)} MiB bmap, ${mapped.length} ranges (median of 5, in process)`);
  console.log(`  ours ${ours.toFixed(0)} ms   bmaptool (BmapCopy) ${theirs.toFixed(0)} ms   ours/bmaptool ${(ours / theirs).toFixed(2)}`);
  console.log(`  30 kB of spaces after an unclosed tag: EBMAP in ${malformed.toFixed(2)} ms`);
}

/**
 * A 2 GiB sparse image, about 10% mapped in scattered extents, written to a loop device by
 * nodeos-bsp flash (read-back verify on), bmaptool copy (no read-back) and dd (whole image).
 */
async function flashBench(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('\nflash bench skipped: needs root for loop devices');
    return;
  }
  const GiB = 1 << 30;
  const MiB = 1 << 20;
  const image = join(dir, 'big.img');
  const extents: { offset: number; data: Buffer }[] = [];
  // 51 extents of 4 MiB spread over 2 GiB = 204 MiB mapped (10%), random (incompressible).
  for (let i = 0; i < 51; i++) extents.push({ offset: i * 40 * MiB + (i % 7) * 4096, data: randomBytes(4 * MiB) });
  const mapped = writeSparseImage(image, 2 * GiB, extents);
  writeFileSync(`${image}.bmap`, createBmap(image, 2 * GiB, mapped));
  const backing = join(dir, 'card.raw');
  writeFileSync(backing, Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(2 * GiB + 64 * MiB), backing]);
  const dev = execFileSync('losetup', ['--find', '--show', backing]).toString().trim();
  const time = async (fn: () => unknown): Promise<number> => {
    execFileSync('sync');
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };
  try {
    // Whole processes on every side, as a user runs them; one warm-up round, then the
    // median of three rounds taken in turn so background writeback hits each tool alike.
    const cmds: [string, string[]][] = [
      ['node', [cli, 'flash', image, '--device', dev, '--yes']],
      ['bmaptool', ['-q', 'copy', image, dev]],
      ['dd', [`if=${image}`, `of=${dev}`, 'bs=4M', 'conv=fsync', 'status=none']],
    ];
    const times: number[][] = cmds.map(() => []);
    for (let round = 0; round < 4; round++) {
      for (const [i, [cmd, args]] of cmds.entries()) {
        const ms = await time(() => execFileSync(cmd, args));
        if (round > 0) times[i]!.push(ms);
      }
    }
    const [ours, bmaptool, dd] = times.map(median) as [number, number, number];
    console.log(`\nflash: 2 GiB image, ${(mapped.reduce((n, [a, b]) => n + b - a, 0) / MiB).toFixed(0)} MiB mapped, to a loop device`);
    console.log(`  nodeos-bsp flash (verify) ${(ours / 1000).toFixed(2)} s   (checks the image, writes, reads back)`);
    console.log(`  bmaptool copy             ${(bmaptool / 1000).toFixed(2)} s   ours/bmaptool ${(ours / bmaptool).toFixed(2)}`);
    console.log(`  dd bs=4M conv=fsync       ${(dd / 1000).toFixed(2)} s   dd/ours ${(dd / ours).toFixed(1)}x`);
  } finally {
    spawnSync('losetup', ['-d', dev]);
  }
}

/** Build (cold: empty cache, so downloads and compression; warm: same again) and boot. */
async function imageBench(dir: string): Promise<void> {
  const board = getBoard('rpi3b').profile;
  const MiB = 1 << 20;
  const coldCache = new Cache(join(dir, 'cold-cache'));
  const out = join(dir, 'out');
  let t = performance.now();
  await buildImage(board, { cache: coldCache, outDir: out });
  const coldMs = performance.now() - t;
  t = performance.now();
  const warm = await buildImage(board, { cache: coldCache, outDir: out });
  const warmMs = performance.now() - t;
  console.log(`\nrpi3b image build (cold = empty cache: download, strip, compress; warm = all cached)`);
  console.log(`  cold ${(coldMs / 1000).toFixed(1)} s, warm ${(warmMs / 1000).toFixed(1)} s, warm/cold ${(warmMs / coldMs).toFixed(2)}`);
  const m = warm.manifest;
  console.log(`  image ${(m.image.size / MiB).toFixed(0)} MiB (${(m.image.mappedBytes / MiB).toFixed(1)} MiB mapped); initramfs ${(m.initramfs.size / MiB).toFixed(1)} MiB zstd of ${(m.initramfs.uncompressed / MiB).toFixed(1)} MiB (${((100 * m.initramfs.size) / m.initramfs.uncompressed).toFixed(0)}%); Image.gz ${(m.kernel.size / MiB).toFixed(1)} MiB`);
  const boots: [string, number][] = [];
  for (const direct of [false, true]) {
    const e = prepareEmulation(warm.image, board, { direct });
    const start = performance.now();
    const c = new Console(startEmulation(e, 'pipe'));
    try {
      await c.waitFor(/\n> $/, 300_000, 0);
      boots.push([direct ? 'direct (kernel+initrd)' : 'U-Boot from SD card', performance.now() - start]);
    } finally {
      c.stop();
    }
  }
  console.log(`\nQEMU raspi3b start to REPL prompt`);
  for (const [name, ms] of boots) console.log(`  ${name.padEnd(24)} ${(ms / 1000).toFixed(1)} s`);
  console.log(`  U-Boot / direct ratio ${(boots[0]![1] / boots[1]![1]).toFixed(2)}`);
}

/**
 * NodeOS's layers against the kit before them (one initramfs holding everything), in one
 * run: the baseline is a git worktree of BENCH_LAYERS_BASELINE (default e6692e4, the last commit
 * before the layers) built with its own code and the same cache. Boot to the REPL prompt
 * through U-Boot and directly (rpi3b), memory free after boot (rpi3aplus, 512 MB), the
 * .img.xz size, and the time to update a card slot.
 */
async function layersBench(dir: string): Promise<void> {
  const rev = process.env.BENCH_LAYERS_BASELINE ?? 'e6692e4';
  const base = baselineKit(rev, dir);
  try {
    const kits = { before: base.cli, after: cli };
    const images: Record<string, Record<string, string>> = { before: {}, after: {} };
    for (const [name, kit] of Object.entries(kits)) {
      for (const board of ['rpi3b', 'rpi3aplus']) {
        const out = join(dir, `${name}-out`);
        execFileSync('node', [kit, 'build', '--board', board, '--out', out, '--json'], { stdio: 'ignore', maxBuffer: 1 << 26 });
        images[name]![board] = join(out, `nodeos-${board}.img`);
      }
    }
    const boot = async (kit: string, image: string, extra: string[], evalLine?: string): Promise<{ ms: number; answer?: string }> => {
      const t = performance.now();
      const { spawn } = await import('node:child_process');
      // Its own process group: the CLI's QEMU goes with it (no QEMU left running into the next figure).
      const child = spawn('node', [kit, 'emulate', image, ...extra], { stdio: 'pipe', detached: true });
      const c = new Console(child);
      try {
        await c.waitFor(/\n> $/, 600_000, 0);
        const ms = performance.now() - t;
        // Settled: the start-up lines are done, then what the board says.
        await new Promise((r) => setTimeout(r, 15_000));
        return { ms, ...(evalLine ? { answer: await c.eval(evalLine, 60_000) } : {}) };
      } finally {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // Already gone.
        }
        c.stop();
      }
    };
    const mem = "require('fs').readFileSync('/proc/meminfo','utf8').match(/MemAvailable:\\s+(\\d+)/)[1]";
    const rows: [string, number, number, string][] = [];
    for (const [label, extra, board] of [['rpi3b prompt via U-Boot (s)', [], 'rpi3b'], ['rpi3b prompt direct (s)', ['--direct'], 'rpi3b']] as const) {
      const [b, a] = [await boot(kits.before, images.before!.rpi3b!, [...extra]), await boot(kits.after, images.after!.rpi3b!, [...extra])];
      rows.push([label, b.ms / 1000, a.ms / 1000, board]);
    }
    const [mb, ma] = [await boot(kits.before, images.before!.rpi3aplus!, [], mem), await boot(kits.after, images.after!.rpi3aplus!, [], mem)];
    rows.push(['rpi3aplus MemAvailable (MiB)', Number(mb.answer!.replace(/'/g, '')) / 1024, Number(ma.answer!.replace(/'/g, '')) / 1024, 'rpi3aplus']);
    const xz = (img: string): number => Number(execFileSync('sh', ['-c', `xz -T2 -6 -c '${img}' | wc -c`]).toString()) / (1 << 20);
    rows.push(['rpi3b .img.xz (MiB)', xz(images.before!.rpi3b!), xz(images.after!.rpi3b!), 'rpi3b']);
    console.log(`\nlayers: the kit at ${rev} (one initramfs) against this one (small initramfs + squashfs slot), QEMU ${execFileSync('qemu-system-aarch64', ['--version']).toString().split('\n')[0]}`);
    console.log('case                              before     after   after/before');
    for (const [name, b, a] of rows) console.log(`${name.padEnd(32)} ${b.toFixed(1).padStart(8)} ${a.toFixed(1).padStart(9)} ${(a / b).toFixed(2).padStart(9)}`);
    // Updating a card slot: the kit's update (bundle checks, slot, boot files, env) against dd of the same bytes.
    const card = join(dir, 'card.img');
    execFileSync('cp', ['--sparse=always', images.after!.rpi3b!, card]);
    const keyDir = join(dir, 'keys');
    execFileSync('node', [cli, 'keys', 'create', '--out', keyDir], { stdio: 'ignore' });
    const signed = join(dir, 'signed');
    execFileSync('node', [cli, 'build', '--board', 'rpi3b', '--out', signed, '--signing-key', join(keyDir, 'nodeos-update.key'), '--json'], { stdio: 'ignore', maxBuffer: 1 << 26 });
    execFileSync('cp', ['--sparse=always', join(signed, 'nodeos-rpi3b.img'), card]);
    const bundle = join(signed, 'nodeos-rpi3b.nodeos-update');
    let t = performance.now();
    execFileSync('node', [cli, 'update', bundle, '--device', card, '--force-file', '--json'], { stdio: 'ignore' });
    execFileSync('sync');
    const ours = performance.now() - t;
    t = performance.now();
    execFileSync('dd', [`if=${bundle}`, `of=${card}`, 'bs=4M', 'seek=96', 'conv=notrunc,fsync', 'status=none']);
    const dd = performance.now() - t;
    console.log(`  update a card slot (image file): ${(ours / 1000).toFixed(2)} s; dd of the same ${(readFileSync(bundle).length / (1 << 20)).toFixed(0)} MiB ${(dd / 1000).toFixed(2)} s; ours/dd ${(ours / dd).toFixed(2)}`);
  } finally {
    base.remove();
  }
}

/**
 * The board's own kernel against Debian's, in one run (rpi3b): the cold kernel build (an
 * empty cache: download, unpack, configure, compile on all cores) and the cached one; then
 * both images from that cache, their kernel, initramfs, system slot and .img.xz sizes, QEMU
 * start to the REPL prompt through U-Boot and directly (median of BENCH_BOOTS, default 3),
 * and memory available after boot. BENCH_KERNEL_WARM=1 uses the default cache (no cold build).
 */
async function kernelBench(dir: string): Promise<void> {
  const MiB = 1 << 20;
  const debian = getBoard('rpi3b').profile;
  const own = withKernelSource(debian, 'build');
  const warmOnly = process.env.BENCH_KERNEL_WARM === '1';
  const cache = warmOnly ? new Cache() : new Cache(join(dir, 'kernel-cache'));
  const a = await fetchArtifacts(own, { cache });
  const source = kernelSourceOf(a);
  let t = performance.now();
  const cold = await buildKernel(own, { cache, source });
  const coldMs = performance.now() - t;
  const boots = Number(process.env.BENCH_BOOTS ?? 3);
  t = performance.now();
  await buildKernel(own, { cache, source });
  const cachedMs = performance.now() - t;
  console.log(`\nrpi3b kernel build (${cold.info.jobs} jobs, ${cold.info.source.package} ${cold.info.source.version}, ${cold.info.compiler})`);
  if (warmOnly) console.log(`  (BENCH_KERNEL_WARM: the default cache's kernel, built in ${(cold.info.buildSeconds / 60).toFixed(1)} min; this run took ${(coldMs / 1000).toFixed(1)} s)`);
  else console.log(`  cold ${(coldMs / 60000).toFixed(1)} min (unpack, configure, compile: ${(cold.info.buildSeconds / 60).toFixed(1)} min), cached ${(cachedMs / 1000).toFixed(2)} s; Image ${(cold.info.imageBytes / MiB).toFixed(1)} MiB, ${cold.info.builtinModules} drivers built in`);

  const mem = "require('fs').readFileSync('/proc/meminfo','utf8').match(/MemAvailable:\\s+(\\d+)/)[1]";
  const boot = async (image: string, profile: BoardProfile, direct: boolean): Promise<{ ms: number; memMiB: number }> => {
    const e = prepareEmulation(image, profile, { direct });
    const start = performance.now();
    const c = new Console(startEmulation(e, 'pipe'));
    try {
      await c.waitFor(/\n> $/, 300_000, 0);
      const ms = performance.now() - start;
      await new Promise((r) => setTimeout(r, 10_000));
      return { ms, memMiB: Number((await c.eval(mem)).replace(/'/g, '')) / 1024 };
    } finally {
      c.stop();
    }
  };
  const xz = (img: string): number => Number(execFileSync('sh', ['-c', `xz -T2 -6 -c '${img}' | wc -c`]).toString()) / MiB;
  const figures: Record<string, number[]> = {};
  for (const profile of [debian, own]) {
    const r = await buildImage(profile, { cache, outDir: join(dir, `kernel-${profile.kernel.source === 'build' ? 'own' : 'debian'}`) });
    const m = r.manifest;
    const runs = async (direct: boolean): Promise<{ ms: number; memMiB: number }> => {
      const all: { ms: number; memMiB: number }[] = [];
      for (let i = 0; i < boots; i++) all.push(await boot(r.image, debian, direct));
      all.sort((x, y) => x.ms - y.ms);
      return all[Math.floor(all.length / 2)]!;
    };
    const viaUboot = await runs(false);
    const direct = await runs(true);
    const row = (name: string, v: number): void => void (figures[name] ??= []).push(v);
    row('kernel Image.gz (MiB)', m.kernel.size / MiB);
    row('initramfs (MiB)', m.initramfs.size / MiB);
    row('system slot (MiB)', m.system.size / MiB);
    row('.img.xz (MiB)', xz(r.image));
    row('prompt via U-Boot (s)', viaUboot.ms / 1000);
    row('prompt direct (s)', direct.ms / 1000);
    row('MemAvailable (MiB)', viaUboot.memMiB);
  }
  console.log(`\nrpi3b: Debian's ${debian.kernel.source === 'build' ? '' : debian.kernel.source.debian} against the board's own kernel, QEMU ${execFileSync('qemu-system-aarch64', ['--version']).toString().split('\n')[0]}`);
  console.log(`case (boots: median of ${boots})       debian       own   own/debian`);
  for (const [name, [d, o]] of Object.entries(figures)) console.log(`${name.padEnd(26)} ${d!.toFixed(1).padStart(9)} ${o!.toFixed(1).padStart(9)} ${(o! / d!).toFixed(2).padStart(9)}`);
}
