/** `build`, `fetch` and `emulate`. */
import { Command } from 'commander';
import { Cache, fetchArtifacts } from '../artifacts/index.js';
import { getBoard, type BoardProfile } from '../boards/index.js';
import { withKernelSource } from '../kernel/index.js';
import { readLayoutAt } from '../layout/index.js';
import { freeLoopbackPort, HOST_SERVICE_ADDRESS, parseForward, parseSensor, parseService, prepareEmulation, SENSOR_MODELS, startEmulation } from '../emulate/index.js';
import { BspError, UsageError } from '../errors.js';
import { readProject } from '../apps/project.js';
import { buildImage, buildOutputs, fetchForBuild, type BuildEvent } from '../image/index.js';
import { json, type Io } from './output.js';
import { settingsFrom, settingsOptions, type SettingsFlags } from './settings.js';

interface FetchOpts {
  board?: string;
  kernel?: string;
  out: string;
  lock?: string;
  offline?: boolean;
  debianMirror?: string;
  keyring?: string;
  suite: string;
  cacheDir?: string;
  boardsDir?: string;
  json?: boolean;
}

/** The profile with `--kernel` applied. */
const withKernel = (board: BoardProfile, kernel: string | undefined): BoardProfile => (kernel ? withKernelSource(board, kernel) : board);

const kernelOption = ['--kernel <source>', '"build" (the kit builds the board\'s kernel: nodeos-bsp kernel build) or a Debian kernel package[@suite], e.g. linux-image-arm64@trixie-backports; default: the profile\'s kernel.source'] as const;

const withFetchOptions = (c: Command, boardFromProject = false): Command =>
  (boardFromProject ? c.option('-b, --board <id>', 'board id (see nodeos-bsp boards; or the project file\'s board)') : c.requiredOption('-b, --board <id>', 'board id (see nodeos-bsp boards)'))
    .option('-o, --out <dir>', 'output directory', 'out')
    .option('--lock <file>', 'lock file pinning every artifact (default <out>/nodeos-<board>.lock.json)')
    .option('--offline', 'use only the cache; fail clearly if something is missing')
    .option('--debian-mirror <url>', "Debian mirror (default: $NODEOS_BSP_DEBIAN_MIRROR, else the host's apt sources)")
    .option('--keyring <file>', 'keyring that signs the Debian archive', '/usr/share/keyrings/debian-archive-keyring.gpg')
    .option('--suite <name>', 'Debian suite', 'trixie')
    .option(...kernelOption)
    .option('--cache-dir <dir>', 'download cache (default $NODEOS_BSP_CACHE or $XDG_CACHE_HOME/nodeos-bsp)')
    .option('--boards-dir <dir>', "board profiles (and their overlays/) to use instead of the kit's boards/")
    .option('--json', 'JSON events instead of progress text');

/** `build`'s own options (fetch takes only the ones above). */
interface BuildOpts extends FetchOpts, SettingsFlags {
  signingKey?: string;
  app?: string[];
  project?: string;
}

function artifactOptions(o: FetchOpts): NonNullable<Parameters<typeof fetchArtifacts>[1]> & { cache: Cache } {
  return {
    cache: new Cache(o.cacheDir),
    suite: o.suite,
    lockPath: o.lock ?? buildOutputs(o.out, o.board!).lock,
    offline: Boolean(o.offline),
    ...(o.debianMirror ? { mirror: o.debianMirror } : {}),
    ...(o.keyring ? { keyring: o.keyring } : {}),
  };
}

/** Progress: one line per stage, download percentages on a TTY, JSON lines with --json. */
function reporter(io: Io, asJson: boolean, tty: boolean): (e: BuildEvent) => void {
  let lastDraw = 0;
  return (e) => {
    if (asJson) return io.out(JSON.stringify(e) + '\n');
    if (e.type === 'download') {
      if (!tty || Date.now() - lastDraw < 200) return;
      lastDraw = Date.now();
      const pct = e.total ? ` ${Math.floor((100 * e.done) / e.total)}%` : '';
      return io.err(`\r  downloading ${e.label}${pct} (${(e.done / 1048576).toFixed(1)} MiB)\x1b[K`);
    }
    if (e.state === 'start') io.err(`${tty ? '\r\x1b[K' : ''}${e.stage}...\n`);
    else if (e.stage !== 'done') io.err(`${tty ? '\r\x1b[K' : ''}${e.stage} done in ${((e.ms ?? 0) / 1000).toFixed(1)} s\n`);
  };
}

export function registerBuild(program: Command, io: Io): void {
  settingsOptions(withFetchOptions(
    program
      .command('build')
      .description('build a bootable NodeOS SD-card image for a board (with .bmap, .sha256, manifest)')
      .addHelpText(
        'after',
        `
Artifacts (Debian kernel, U-Boot, firmware, busybox, C libraries; the official Node.js
binary from npm) are verified, cached and pinned in the lock file; a second build downloads
nothing. Set SOURCE_DATE_EPOCH for timestamps; the same lock and epoch give the same bytes.

Examples:
  $ nodeos-bsp build --board rpi3b
  $ nodeos-bsp build --board rpi3b --offline --out /tmp/out
  $ SOURCE_DATE_EPOCH=1700000000 nodeos-bsp build -b rpi3b --json
  $ nodeos-bsp build -b rpi3b --ssh-key ~/.ssh/id_ed25519.pub
  $ nodeos-bsp keys create --out keys && nodeos-bsp build -b rpi3b --signing-key keys/nodeos-update.key
  $ nodeos-bsp build -b rpi3b --app examples/thermometer
  $ nodeos-bsp build -b rpi3b --settings site.yaml --wifi home --wifi-country DE
  $ nodeos-bsp build -b rpi3b --fleet mqtts://broker.lan:8883 --fleet-ca ca.pem --fleet-key keys/nodeos-fleet.pub --fleet-credentials board.pw
  $ nodeos-bsp build --project nodeos.yaml
  $ nodeos-bsp build -b rpi3b --kernel build     # the board's own kernel (nodeos-bsp kernel build)

Apps (--app DIR, repeatable) are npm projects with a package-lock.json: their published files
and production dependencies (installed for the board: prebuilt addons, else cross-compiled)
go into the system, and init starts them at boot and restarts them when they exit. See
docs/apps.md for the "nodeos" field of package.json (main, network, root). A project file
(--project nodeos.yaml) keeps the board, the apps and the SSH keys next to the app:
  board: rpi3b
  apps: [., ../door-opener]
  sshKeys: [keys/deploy.pub]

Next to the image: nodeos-<board>.nodeos-update, the bundle nodeos-bsp update installs
into a card's or a running board's other slot. Boards take only bundles signed with a key
their image trusts (--signing-key); an unsigned build's boards take none.

First-boot settings (--settings FILE, --hostname, --timezone, --ssh-key, --wifi ...) go into
the image's uboot.env as flash writes them; without an SSH key, SSH is off. They are checked
before anything is fetched (ESETTINGS names the field). nodeos-bsp settings show reads them.`,
      ),
    true,
  ))
    .option('--signing-key <file>', 'Ed25519 private key (nodeos-bsp keys create) that signs the update bundle; the image trusts its public key')
    .option('--app <dir...>', 'npm project (with package-lock.json) to build into the image as an app started at boot (repeatable)')
    .option('--project <file>', 'project file (YAML: board, apps, sshKeys; paths relative to it); --app and --ssh-key add to it')
    .action(async (o: BuildOpts) => {
      const project = o.project ? readProject(o.project) : undefined;
      if (project?.board && o.board && project.board !== o.board) throw new BspError('EUSAGE', `--board ${o.board} and ${o.project}'s board ${project.board} differ: give one`);
      o.board ??= project?.board;
      if (!o.board) throw new BspError('EUSAGE', `say which board: --board ID${o.project ? ` or "board:" in ${o.project}` : ''} (nodeos-bsp boards lists them)`);
      const board = withKernel(getBoard(o.board, o.boardsDir ? { boardsDir: o.boardsDir } : {}).profile, o.kernel);
      const settings = await settingsFrom(o, io, project?.sshKeys);
      const apps = [...(project?.apps ?? []), ...(o.app ?? [])];
      const t = Date.now();
      const r = await buildImage(board, { ...artifactOptions(o), outDir: o.out, ...(o.boardsDir ? { boardsDir: o.boardsDir } : {}), settings, ...(o.signingKey ? { signingKey: o.signingKey } : {}), ...(apps.length ? { apps } : {}), onEvent: reporter(io, Boolean(o.json), !o.json && io.color) });
      const sys = r.manifest.system;
      if (o.json) return json(io, { image: r.image, bmap: r.bmap, sha256: r.sha256File, manifest: r.manifestPath, lock: r.lockPath, bundle: r.bundle, signedBy: r.manifest.update.signedBy ?? null, build: r.manifest.build, system: { size: sys.size, uncompressed: sys.uncompressed, contents: sys.contents }, ms: Date.now() - t });
      if (!r.manifest.update.signedBy) io.err(`warning: unsigned build: ${r.bundle} cannot update any board, and boards flashed with this image take no updates (build with --signing-key; nodeos-bsp keys create makes one)\n`);
      io.out(
        `${r.image} (${(r.manifest.image.size / 1048576).toFixed(0)} MiB, ${(r.manifest.image.mappedBytes / 1048576).toFixed(1)} MiB mapped) in ${((Date.now() - t) / 1000).toFixed(1)} s\n` +
          `  system slot ${(sys.size / 1048576).toFixed(1)} MiB (${(sys.uncompressed / 1048576).toFixed(1)} MiB of files): ${sys.contents.slice(0, 5).map((c) => `${c.part} ${(c.bytes / 1048576).toFixed(1)}`).join(', ')} MiB...\n` +
          `  ${r.bmap}\n  ${r.sha256File}\n  ${r.manifestPath}\n  lock: ${r.lockPath}\n  update bundle: ${r.bundle}${r.manifest.update.signedBy ? ` (signed by ${r.manifest.update.signedBy})` : ' (unsigned)'}\n` +
          `next: nodeos-bsp emulate ${r.image}${board.emulation ? '' : '  (no QEMU machine for this board)'}\n`,
      );
    });

  withFetchOptions(
    program
      .command('fetch')
      .description('download, verify and cache everything a build of the board needs')
      .addHelpText('after', '\nExamples:\n  $ nodeos-bsp fetch --board rpi3b\n  $ nodeos-bsp fetch --board rpi4b --debian-mirror http://mirror.example/debian'),
  ).action(async (o: FetchOpts) => {
    const board = withKernel(getBoard(o.board!, o.boardsDir ? { boardsDir: o.boardsDir } : {}).profile, o.kernel);
    const tty = !o.json && io.color;
    const report = reporter(io, Boolean(o.json), tty);
    const opts = artifactOptions(o);
    const { artifacts: a, modules: mods, kernel } = await fetchForBuild(board, {
      ...opts,
      onProgress: (label, done, total) => report({ type: 'download', label, done, ...(total !== undefined ? { total } : {}) }),
      ...(tty ? { onKernelStep: (s: string) => io.err(`\r\x1b[Kkernel build: ${s}...`) } : {}),
    });
    if (o.json) return json(io, a.lock);
    if (tty) io.err('\r\x1b[K');
    for (const [role, d] of Object.entries(a.lock.debian)) io.out(`${role.padEnd(13)} ${d.package} ${d.version} sha256:${d.sha256.slice(0, 16)}\n`);
    const n = a.lock.npm.node!;
    io.out(`${'node'.padEnd(13)} ${n.name} ${n.version} ${n.integrity.slice(0, 23)}\n`);
    if (kernel) io.out(`${'kernel'.padEnd(13)} ${kernel.release} built from ${kernel.info.source.package} ${kernel.info.source.version} (${kernel.cached ? 'cached' : `${kernel.info.buildSeconds} s`})\n`);
    io.out(`${'npm'.padEnd(13)} ${mods.packages.map((p) => `${p.name}@${p.version}`).join(' ')}\n`);
  });

  program
    .command('emulate')
    .argument('[image]', 'image to boot (default out/nodeos-<board>.img)')
    .description("boot an image under QEMU with the board's console on this terminal")
    .option('-b, --board <id>', "board (default: the one the image's layout.json names)")
    .option('--direct', 'skip U-Boot: boot kernel, DTB and initramfs from the image directly (faster)')
    .option('--overlay <file>', 'keep the SD card changes in this qcow2 file across runs (default: discarded)')
    .option('--append <args>', 'extra kernel arguments, e.g. \'nodeos.run="board.GPIO17.write(1)"\' (through U-Boot: added to the emulated card\'s bootargs, as flash --cmdline would)')
    .option('--dry-run', 'print the QEMU command line and exit')
    .option('--boards-dir <dir>', "board profiles to read the board from instead of the kit's boards/")
    .option('--forward <host:board...>', "forward a port of this machine's 127.0.0.1 to the board: TCP, e.g. 8080:80, or UDP (one way), e.g. 9000:9000/udp (repeatable)")
    .option('--service <board:host...>', `let the board reach a TCP port of this machine's 127.0.0.1 at ${HOST_SERVICE_ADDRESS}:BOARDPORT, e.g. 80:8080 (a registry, a time server; repeatable)`)
    .option('--mac <address>', "the board's network card's MAC address (default QEMU's 52:54:00:12:34:56): give each emulated board its own, e.g. two boards of one fleet")
    .option('--ssh', 'forward a free port of 127.0.0.1 to the board\'s SSH server and print the ssh command')
    .option('--no-net', 'no network card (default: QEMU user networking, restricted to the forwarded ports)')
    .addHelpText(
      'after',
      `
The board gets a network card on QEMU's user-mode network with restrict=on: it reaches
nothing beyond the emulated network (its DHCP server gives it 10.0.2.15), and this machine
reaches the board only through --forward ports on 127.0.0.1 (TCP; or UDP with /udp, one
way: the restricted network lets no datagram of the board's out but DHCP, so UDP replies
are dropped). The only connections the
board can open leave through --service: ${HOST_SERVICE_ADDRESS}:BOARDPORT reaches this machine's
127.0.0.1:HOSTPORT (e.g. a local npm registry, or a server whose Date header sets the clock:
flash with --cmdline nodeos.timeurl=http://${HOST_SERVICE_ADDRESS}/).

The console is the board's console UART (the mini UART on a Pi 3), or the one its profile
moves it to where QEMU's model of that UART does not work (the Pi 4: the PL011). Through
U-Boot, such a console and --append go into the emulated card's uboot.env (bootargs), never
into the image. QEMU's monitor is on Ctrl-A C, quit with Ctrl-A X. The image itself is never
written: changes go to an overlay.

Examples:
  $ nodeos-bsp emulate out/nodeos-rpi3b.img
  $ nodeos-bsp emulate --board rpi3b --direct
  $ nodeos-bsp emulate out/nodeos-rpi3b.img --overlay out/rpi3b-card.qcow2
  $ nodeos-bsp emulate --board rpi4b --append 'nodeos.run="board.GPIO17.write(1)"'
  $ nodeos-bsp emulate --board rpi3b --forward 8080:80
  $ nodeos-bsp emulate --board qemu-virt --forward 2222:22   (then: ssh -p 2222 nodeos@127.0.0.1)
  $ nodeos-bsp emulate --board rpi3b --sensor tmp105@1:0x48 --forward 8080:8080
  $ nodeos-bsp emulate --board rpi3b --forward 9000:9000/udp   (datagrams to the board's port 9000, e.g. OSC or statsd)
  $ nodeos-bsp emulate --board rpi3b --service 80:4873       (the board's npm: registry=http://${HOST_SERVICE_ADDRESS}/)
  $ nodeos-bsp emulate --board qemu-virt --no-net`,
    )
    .option('--sensor <model@bus:addr...>', `attach one of QEMU's I2C device models to an I2C bus of the board, e.g. tmp105@1:0x48 (repeatable; ${Object.keys(SENSOR_MODELS).join(', ')})`)
    .action(async (image: string | undefined, o: { board?: string; direct?: boolean; overlay?: string; append?: string; dryRun?: boolean; boardsDir?: string; forward?: string[]; service?: string[]; mac?: string; ssh?: boolean; net: boolean; sensor?: string[] }) => {
      if (o.net === false && (o.forward?.length || o.service?.length || o.ssh || o.mac)) throw new UsageError('--forward, --service, --mac and --ssh need the network: drop --no-net');
      let boardId = o.board;
      const img = image ?? (boardId ? buildOutputs('out', boardId).image : undefined);
      if (!img) throw new UsageError('give an image or --board <id>');
      // The board the card's layout.json names (a card, or an image without its manifest).
      if (!boardId) boardId = readLayoutAt(img).layout.board;
      const forward = (o.forward ?? []).map(parseForward);
      const sensors = (o.sensor ?? []).map(parseSensor);
      if (o.ssh && !forward.some((f) => f.board === 22 && f.proto !== 'udp')) forward.push({ host: await freeLoopbackPort(), board: 22 });
      const e = prepareEmulation(img, getBoard(boardId, o.boardsDir ? { boardsDir: o.boardsDir } : {}).profile, {
        direct: Boolean(o.direct),
        ...(o.overlay ? { overlay: o.overlay } : {}),
        ...(o.append ? { cmdline: [o.append] } : {}),
        ...(o.boardsDir ? { boardsDir: o.boardsDir } : {}),
        ...(sensors.length ? { sensors } : {}),
        net: o.net === false ? false : { forward, services: (o.service ?? []).map(parseService), ...(o.mac ? { mac: o.mac } : {}) },
      });
      if (o.dryRun) {
        io.out([e.command, ...e.args].map((a) => (/[\s'"]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a)).join(' ') + '\n');
        e.cleanup();
        return;
      }
      sensors.forEach((x, i) =>
        io.err(`sensor${i}: ${x.model} (${SENSOR_MODELS[x.model]!.what}) on i2c-${x.bus} at 0x${x.address.toString(16)}; QEMU's monitor (Ctrl-A C, and back) changes it: qom-set /machine/peripheral/sensor${i} <property> <value>\n`),
      );
      const sshPort = forward.find((f) => f.board === 22 && f.proto !== 'udp')?.host;
      if (sshPort) io.err(`ssh: ssh -p ${sshPort} nodeos@127.0.0.1   (once the board says "ssh: listening")\n`);
      const child = startEmulation(e, 'inherit');
      const code = await new Promise<number>((res) => child.on('exit', (c) => res(c ?? 1)));
      if (code !== 0) process.exitCode = code;
    });
}
