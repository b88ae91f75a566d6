/** `drives` and `flash`. */
import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { candidateDrives, flash, listDrives, type Customization, type Drive, type FlashProgress } from '../../flash/index.js';
import { FlashError, UsageError } from '../errors.js';
import { json, table, type Io } from './output.js';
import { settingsFrom, settingsOptions, type SettingsFlags } from './settings.js';

const gb = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(0)} MB`);

function describeDrive(d: Drive): string {
  const what = d.partitions.length ? d.partitions.map((p) => `${p.device.replace('/dev/', '')}${p.fstype ? ` ${p.fstype}` : ''}${p.mountpoints.length ? ` on ${p.mountpoints.join(',')}` : ''}`).join('; ') : 'no partitions';
  return `${d.device}  ${gb(d.size)}  ${d.model || '(no model)'}  ${d.transport || d.type}  [${what}]`;
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/**
 * Progress on a terminal: one line redrawn per phase; once finished, what was written, how
 * long it took and the average speed (not the last instant's 0.0 MB/s and ETA 0:00).
 */
export function progressPrinter(io: Io, asJson: boolean, tty: boolean, now: () => number = Date.now): (p: FlashProgress) => void {
  const started = now();
  const phases = new Map<string, { at: number; done: number; end: number }>();
  return (p) => {
    if (asJson) return io.out(JSON.stringify({ type: 'progress', ...p }) + '\n');
    if (!tty) return;
    const t = now();
    const seen = phases.get(p.phase);
    phases.set(p.phase, { at: seen?.at ?? t, done: p.done, end: t });
    const pct = p.total ? Math.floor((100 * p.done) / p.total) : 100;
    const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
    if (p.phase === 'finished') {
      const w = phases.get('flashing');
      const secs = (t - started) / 1000;
      const wrote = w ? ` ${(w.done / 1e6).toFixed(0)} MB written at ${(w.done / 1e6 / Math.max(0.001, (w.end - w.at) / 1000)).toFixed(1)} MB/s average,` : '';
      return io.err(`\r${p.phase.padEnd(11)} [${bar}] ${String(pct).padStart(3)}% ${wrote} ${secs.toFixed(1)} s in all\x1b[K\n`);
    }
    const eta = p.etaSeconds === null ? '--:--' : `${Math.floor(p.etaSeconds / 60)}:${String(Math.round(p.etaSeconds % 60)).padStart(2, '0')}`;
    io.err(`\r${p.phase.padEnd(11)} [${bar}] ${String(pct).padStart(3)}%  ${(p.bytesPerSecond / 1e6).toFixed(1)} MB/s  ETA ${eta}\x1b[K`);
  };
}

export function registerFlash(program: Command, io: Io): void {
  program
    .command('drives')
    .description('list drives a card could be written to; system drives are marked and never written')
    .option('--all', 'include system drives and loop devices')
    .option('--json', 'machine-readable list')
    .addHelpText('after', '\nExamples:\n  $ nodeos-bsp drives\n  $ nodeos-bsp drives --all --json')
    .action((o: { all?: boolean; json?: boolean }) => {
      const all = listDrives();
      const shown = o.all ? all : candidateDrives(all);
      if (o.json) return json(io, shown);
      if (shown.length === 0) return io.out('no removable drives found (insert a card, or use --all)\n');
      io.out(
        table([
          ['DEVICE', 'SIZE', 'MODEL', 'TRANSPORT', 'SYSTEM', 'CONTENTS'],
          ...shown.map((d) => [d.device, gb(d.size), d.model || '-', d.transport || d.type, d.isSystem ? `yes: ${d.systemReasons[0]}` : 'no', d.partitions.map((p) => p.fstype || '?').join(',') || '-']),
        ]),
      );
    });

  const cmd = program
    .command('flash')
    .argument('<image>', 'image to write: raw, .xz, .gz or .zst (its .bmap and .sha256 are used when next to it)')
    .description('write an image to SD cards: sparse (bmap), verified by read-back, refusing system drives')
    .option('-d, --device <dev...>', 'target device(s); several cards are written from one read of the image')
    .option('-y, --yes', 'do not ask for confirmation (scripts)')
    .option('--no-verify', 'skip reading the card back')
    .option('--bmap <file>', 'block map to use (default: <image>.bmap if present)')
    .option('--no-bmap', 'ignore a .bmap and write the whole image')
    .option('--force-file', 'allow a regular file as the target')
    .option('--allow-large', 'allow drives larger than 128 GB')
    .option('--console <dev,baud>', 'customise: kernel console, e.g. ttyS1,115200')
    .option('--cmdline <arg...>', 'customise: extra kernel arguments')
    .option('--env <name=value...>', 'customise: U-Boot variables (name= deletes)')
    .option('--json', 'progress and result as JSON lines');
  settingsOptions(cmd)
    .addHelpText(
      'after',
      `
The image is checked completely before any card is touched: the bmap (any format bmaptool
writes, 1.2 to 2.0) and its checksums; a .sha256 next to it (x.img.xz.sha256 naming the .xz:
of the compressed file; x.img.sha256 naming the .img: of the image); the whole compressed
stream, never decompressed past the bmap's image size or the smallest card. Customisation is
worked out from the image first (EENV_FULL, ECUSTOMIZE stop before writing). Only mapped
blocks are written, the partition table last; the card is read back and compared;
customisation is written into the card's uboot.env and read back.

First-boot settings (--settings FILE and the setting options; nodeos-bsp settings show reads
them back from the card) are checked before anything is asked or written: a mistake stops
with ESETTINGS naming the field. The Wi-Fi passphrase is never an option: --wifi-psk-file,
$NODEOS_WIFI_PSK, or asked on the terminal; only the WPA PSK derived from it is written.
A fleet (--fleet mqtts://HOST:PORT with --fleet-ca, --fleet-key and --fleet-credentials; see
docs/fleet.md) makes the board connect out to that broker; its password is never an option.

Examples:
  $ nodeos-bsp flash out/nodeos-rpi3b.img --device /dev/sdb
  $ nodeos-bsp flash nodeos-rpi3b.img.xz -d /dev/sdb /dev/sdc --yes --json
  $ nodeos-bsp flash out/nodeos-rpi3b.img -d /dev/mmcblk0 --hostname kitchen --env bootdelay=2
  $ nodeos-bsp flash out/nodeos-rpi3b.img -d /dev/sdb --ssh-key ~/.ssh/id_ed25519.pub
  $ nodeos-bsp flash out/nodeos-rpi3b.img -d /dev/sdb --wifi home --wifi-country DE --timezone Europe/Berlin
  $ nodeos-bsp flash out/nodeos-rpi3b.img -d /dev/sdb --settings classroom.yaml --hostname pi-07
  $ nodeos-bsp flash out/nodeos-rpi3b.img -d /dev/sdb --fleet mqtts://broker.lan:8883 --fleet-name greenhouse --fleet-group west --fleet-ca ca.pem --fleet-key keys/nodeos-fleet.pub --fleet-credentials pi-07.pw`,
    )
    .action(async (image: string, o: SettingsFlags & { device?: string[]; yes?: boolean; verify: boolean; bmap?: string | false; forceFile?: boolean; allowLarge?: boolean; console?: string; cmdline?: string[]; env?: string[]; json?: boolean }) => {
      const tty = Boolean(process.stdin.isTTY) && Boolean(process.stderr.isTTY) && !o.json;
      // Settings (key files, the Wi-Fi passphrase) are checked before anything else is asked or written.
      const customize: Customization = await settingsFrom(o, io);
      let devices = o.device ?? [];
      const drives = listDrives();
      if (devices.length === 0) {
        const cands = candidateDrives(drives);
        if (!tty || cands.length === 0) {
          throw new FlashError('ENO_DEVICE', cands.length ? `choose a target with --device: ${cands.map((d) => d.device).join(', ')}` : 'no removable drive found: insert a card (nodeos-bsp drives lists them)');
        }
        cands.forEach((d, i) => io.err(`  ${i + 1}) ${describeDrive(d)}\n`));
        const pick = Number(await ask('write to which drive? '));
        const chosen = cands[pick - 1];
        if (!chosen) throw new UsageError('no drive chosen');
        devices = [chosen.device];
      }
      if (!o.yes) {
        if (!tty) throw new UsageError('not a terminal: pass --yes to confirm writing');
        for (const dev of devices) {
          const d = drives.find((x) => x.device === dev);
          io.err(`ALL DATA on ${d ? describeDrive(d) : dev} will be replaced.\n`);
        }
        if ((await ask('type "yes" to continue: ')).toLowerCase() !== 'yes') throw new UsageError('cancelled');
      }
      if (o.console) customize.console = o.console;
      if (o.cmdline) customize.cmdline = o.cmdline;
      if (o.env) {
        customize.env = {};
        for (const kv of o.env) {
          const eq = kv.indexOf('=');
          if (eq <= 0) throw new UsageError(`--env ${kv}: use name=value`);
          customize.env[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
      }
      const r = await flash(image, devices, {
        verify: o.verify,
        ...(o.bmap !== undefined ? { bmap: o.bmap } : {}),
        forceFile: Boolean(o.forceFile),
        allowLarge: Boolean(o.allowLarge),
        customize,
        onProgress: progressPrinter(io, Boolean(o.json), tty),
      });
      const summary = r.targets.map((t) => ({ device: t.device, ok: t.ok, verified: t.verified, customized: t.customized, bytesWritten: t.bytesWritten, ...(t.error ? { error: { code: t.error.code, message: t.error.message } } : {}) }));
      if (o.json) io.out(JSON.stringify({ type: 'result', imageSize: r.imageSize, mappedBytes: r.mappedBytes, ms: r.ms, targets: summary }) + '\n');
      else {
        for (const t of r.targets) {
          io.out(t.ok ? `${t.device}: ok (${gb(t.bytesWritten)} written${t.verified ? ', verified' : ''}${t.customized ? ', customised' : ''})\n` : `${t.device}: FAILED: ${t.error?.message} [${t.error?.code}]\n`);
        }
        io.out(`${r.targets.filter((t) => t.ok).length} of ${r.targets.length} card(s) written in ${(r.ms / 1000).toFixed(1)} s (${gb(r.mappedBytes)} of ${gb(r.imageSize)} mapped)\n`);
      }
      if (r.targets.some((t) => !t.ok)) process.exitCode = 1;
    });
}
