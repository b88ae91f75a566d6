/**
 * BENCH_ONLY=boot: what a boot does before the serial prompt, this kit's image against a
 * baseline kit's (BENCH_BASELINE, default the commit before issue 33's work), booted
 * alternately (BENCH_BOOTS each, default 3) under QEMU raspi3b, through U-Boot and directly.
 * At the prompt the REPL itself reads, from the board's own /proc: the bytes Linux read from
 * the card (/proc/diskstats; a direct boot has the system in its initramfs, no card), the Node processes running (/proc/<pid>/exe is the REPL's own
 * node), and the guest CPU seconds so far (/proc/stat: all but idle and iowait). Then the
 * time from QEMU's start to the prompt; MemAvailable on rpi3aplus (512 MB) after 15 s; the
 * .img.xz size. Printed per image (median) with the ratio new/baseline; nothing asserts.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../../src/paths.js';
import { Console } from '../helpers/console.js';

/** The commit before issue 33 (fast to the prompt): the image users waited 54-61 s for. */
export const BOOT_BASELINE = '37dc328';

/** A git worktree of `rev` with its own dependencies and dist/, built once; removed by the caller. */
export function baselineKit(rev: string, dir: string): { cli: string; remove: () => void } {
  const root = packageRoot();
  const base = join(dir, `baseline-${rev}`);
  execFileSync('git', ['-C', root, 'worktree', 'add', '--detach', base, rev], { stdio: 'ignore' });
  const remove = (): void => void spawnSync('git', ['-C', root, 'worktree', 'remove', '--force', base]);
  try {
    execFileSync('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: base, stdio: 'ignore' });
    execFileSync('npm', ['run', '-s', 'build'], { cwd: base, stdio: 'ignore' });
  } catch (err) {
    remove();
    throw err;
  }
  return { cli: join(base, 'dist/src/cli/main.js'), remove };
}

/** What the board says of itself at the prompt (one REPL line; plain Node, so any kit's REPL answers it). */
export const AT_PROMPT = [
  "(() => { const fs = require('fs');",
  "const disk = fs.readFileSync('/proc/diskstats', 'utf8').split('\\n').map((l) => l.trim().split(/\\s+/)).find((f) => /^(mmcblk0|vda)$/.test(f[2]));",
  "const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\\n')[0].trim().split(/\\s+/).slice(1).map(Number);",
  "const exe = fs.readlinkSync('/proc/self/exe');",
  "const nodes = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).filter((p) => { try { return fs.readlinkSync('/proc/' + p + '/exe') === exe; } catch { return false; } });",
  "return JSON.stringify({ readBytes: disk ? Number(disk[5]) * 512 : 0, cpuSeconds: (cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7]) / 100, nodes: nodes.length, uptime: Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) }); })()",
].join(' ');

export interface AtPrompt {
  readBytes: number;
  cpuSeconds: number;
  nodes: number;
  uptime: number;
}

/** The REPL's answer to AT_PROMPT (a quoted JSON string). */
export function parseAtPrompt(answer: string): AtPrompt {
  const m = /^'(.*)'$/s.exec(answer.trim());
  if (!m) throw new Error(`not an answer to the prompt figures: ${answer}`);
  return JSON.parse(m[1]!) as AtPrompt;
}

interface Boot {
  ms: number;
  at?: AtPrompt;
  memMiB?: number;
}

/** `emulate` an image with a kit's CLI to the prompt; its own process group, so QEMU goes with it. */
async function boot(cli: string, image: string, o: { direct?: boolean; figures?: boolean; memory?: boolean }): Promise<Boot> {
  const t = performance.now();
  const child = spawn('node', [cli, 'emulate', image, ...(o.direct ? ['--direct'] : [])], { stdio: 'pipe', detached: true });
  const c = new Console(child);
  try {
    await c.waitFor(/\n> $/, 600_000, 0);
    const ms = performance.now() - t;
    const r: Boot = { ms };
    if (o.figures) r.at = parseAtPrompt(await c.eval(AT_PROMPT, 120_000));
    if (o.memory) {
      await new Promise((res) => setTimeout(res, 15_000));
      r.memMiB = Number((await c.eval("require('fs').readFileSync('/proc/meminfo','utf8').match(/MemAvailable:\\s+(\\d+)/)[1]", 60_000)).replace(/'/g, '')) / 1024;
    }
    return r;
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
    c.stop();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function bootBench(dir: string, cli: string): Promise<void> {
  const rev = process.env.BENCH_BASELINE ?? BOOT_BASELINE;
  const boots = Number(process.env.BENCH_BOOTS ?? 3);
  const base = baselineKit(rev, dir);
  try {
    const kits = { baseline: base.cli, new: cli };
    const images: Record<string, Record<string, string>> = { baseline: {}, new: {} };
    for (const [name, kit] of Object.entries(kits)) {
      for (const board of ['rpi3b', 'rpi3aplus']) {
        const out = join(dir, `boot-${name}`);
        execFileSync('node', [kit, 'build', '--board', board, '--out', out, '--json'], { stdio: 'ignore', maxBuffer: 1 << 26 });
        images[name]![board] = join(out, `nodeos-${board}.img`);
        if (!existsSync(images[name]![board]!)) throw new Error(`${name} kit built no ${board} image`);
      }
    }
    const rows: Record<string, { baseline: number[]; new: number[]; unit: string }> = {};
    const add = (name: string, unit: string, kit: 'baseline' | 'new', v: number): void => void (rows[name] ??= { baseline: [], new: [], unit })[kit].push(v);
    // Alternately, so that a machine busier in one half of the run does not favour one image.
    for (let i = 0; i < boots; i++) {
      for (const kit of ['baseline', 'new'] as const) {
        const u = await boot(kits[kit], images[kit]!.rpi3b!, { figures: true });
        add('bytes read before the prompt', 'MiB', kit, u.at!.readBytes / (1 << 20));
        add('Node processes at the prompt', '', kit, u.at!.nodes);
        add('guest CPU to the prompt', 's', kit, u.at!.cpuSeconds);
        add('QEMU start to prompt, U-Boot', 's', kit, u.ms / 1000);
        const d = await boot(kits[kit], images[kit]!.rpi3b!, { direct: true, figures: true });
        add('QEMU start to prompt, --direct', 's', kit, d.ms / 1000);
        add('guest CPU to the prompt, --direct', 's', kit, d.at!.cpuSeconds);
      }
    }
    for (const kit of ['baseline', 'new'] as const) {
      add('rpi3aplus MemAvailable after 15 s', 'MiB', kit, (await boot(kits[kit], images[kit]!.rpi3aplus!, { memory: true })).memMiB!);
      add('rpi3b .img.xz', 'MiB', kit, Number(execFileSync('sh', ['-c', `xz -T2 -6 -c '${images[kit]!.rpi3b!}' | wc -c`]).toString()) / (1 << 20));
    }
    console.log(`\nboot: the kit at ${rev} against this one, rpi3b under QEMU ${execFileSync('qemu-system-aarch64', ['--version']).toString().split('\n')[0]} (median of ${boots}, booted alternately)`);
    console.log(`${'case'.padEnd(38)} ${'baseline'.padStart(9)} ${'new'.padStart(9)} ${'new/base'.padStart(9)}`);
    for (const [name, r] of Object.entries(rows)) {
      const [b, n] = [median(r.baseline), median(r.new)];
      const label = `${name}${r.unit ? ` (${r.unit})` : ''}`;
      console.log(`${label.padEnd(38)} ${b.toFixed(1).padStart(9)} ${n.toFixed(1).padStart(9)} ${(n / b).toFixed(2).padStart(9)}`);
    }
  } finally {
    base.remove();
  }
}
