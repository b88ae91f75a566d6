/**
 * NodeOS init: PID 1 on the system slot, started by the small initramfs (which mounted the
 * slot read-only and moved /proc, /sys and /dev here). Mounts what else Node needs, loads
 * the board's other kernel modules, then keeps a REPL running on the console; if the REPL
 * exits (`.exit`, a crash), it is started again, so the kernel never sees PID 1 die. Once
 * the REPL runs, the slot is confirmed in the card's U-Boot environment (A/B updates).
 *
 * Runs on the device under the target's Node.js; it only uses Node's built-ins and the
 * busybox that the image ships for what Node cannot do (mount, insmod).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, openSync, writeSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ReadStream } from 'node:tty';
import { fileURLToPath } from 'node:url';
import type { BoardProfile } from '../boards/schema.js';
import { chooseBootPartition, scanPartitions, type PartitionInfo } from './boot-device.js';
import { hostnameFrom } from './hostname.js';
import { applyFloor, ClockKeeper, timeSources } from './clock.js';
import { startMdns, type MdnsResponder } from './mdns.js';
import { lastResort, supervise, type Supervised } from './supervise.js';
import { startNetwork } from './network.js';
import { npmEnvironment, npmRegistry } from './npm.js';
import type { DhcpClient, Lease } from '../net/index.js';
import { FLEET_OFF, SSHD_OFF } from './exit-codes.js';
import { startGadgetNetwork } from './usb-gadget.js';
import { setupUsers } from './usersfs.js';
import { busybox, BUSYBOX, insmodAll, syncUnmountAnd, withWritableMount } from './busybox.js';
import { serialNumber } from './board/info.js';
import { DIRECT_BOOT_ENV, SCREEN_REPL_ENV, usersPartition, type ImageApp, type ImageLayout } from '../layout/index.js';
import { envFiles, readEnvFiles, updateEnvFiles } from './env-files.js';
import { applyBootSettings, FLEET_PASSWORD_FILE, SETTINGS_STATE, WIFI_FILE } from './settings.js';
import { startWifi, WPA_SUPPLICANT, type WifiSupervisor } from './wifi.js';
import { decodeWifi, ENV_WIFI, type WifiNetwork } from '../settings/env.js';
import type { EnvVars } from '../uboot-env/index.js';
import { confirmRunningSlot, systemState } from './system-slot.js';
import { startWatchdog, type Watchdog } from './watchdog.js';
import { AppSupervisor, appsHealth, type AppStatus } from './apps.js';
import { APPS_RUN_DIR, serveAppControl, writeAppsState, type DeployRequest } from './app-control.js';
import { tailAppLog } from './app-log.js';
import { commitRelease, DEPLOY_ROOT, deployedSpecs, discardRelease, releaseSpec } from './deploy.js';
import { APP_GID, appStarter, openHardwareToApps, writeUsers } from './app-runner.js';
import { GPIO_FIFO, serveGpioRequests } from './gpio-access.js';
import { sysfsChips } from './board/linux.js';
import { readEnabled, userAppSpec, writeEnabled } from './user-apps.js';
import { BspError } from '../errors.js';
import { AfterPrompt, displayConnected, drmConnectors, readAuthorizedKeys, shownName, sshKeysPresent, sshOff } from './later.js';
import { ENV_SSH_KEYS } from '../net/ssh-keys.js';
import { systemClock } from '../net/index.js';

const ETC = '/etc/nodeos';

/** The image's board profile and module list, written at build time. */
interface ImageInfo {
  board: BoardProfile;
  build: string;
  buildEpoch?: number;
  layout: ImageLayout;
  modules: { name: string; path: string }[];
  /** Loaded once the prompt shows (network, USB, input...); absent in images before issue 33. */
  modulesLater?: { name: string; path: string }[];
  apps?: ImageApp[];
}

/** The screen console (profile screen.console), once its terminal is open: init's messages go there too. */
let screenFd: number | undefined;

function log(msg: string): void {
  process.stdout.write(`nodeos: ${msg}\n`);
  if (screenFd === undefined) return;
  try {
    writeSync(screenFd, `nodeos: ${msg}\n`);
  } catch {
    // The screen is a second copy: the console has the message.
  }
}

/** Mount points in use (after /proc is there). */
function mounted(): Set<string> {
  try {
    return new Set(readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]!).filter(Boolean));
  } catch {
    return new Set();
  }
}

/** Mount a filesystem unless something is mounted there already (the small initramfs moved /proc, /sys, /dev); failures are reported, never fatal (the REPL must come up). */
function mount(type: string, target: string, options?: string): boolean {
  if (mounted().has(target)) return true;
  mkdirSync(target, { recursive: true });
  const args = ['mount', '-t', type, ...(options ? ['-o', options] : []), type, target];
  const r = spawnSync(BUSYBOX, args, { stdio: ['ignore', 'inherit', 'pipe'] });
  if (r.status !== 0) log(`cannot mount ${type} on ${target}: ${r.stderr?.toString().trim() || `exit ${r.status}`}`);
  return r.status === 0;
}

function loadModules(modules: ImageInfo['modules']): void {
  const failed = insmodAll(modules);
  if (failed.length) log(`modules that did not load: ${failed.join(', ')}`);
}

/**
 * Find the boot partition the kernel command line names (see boot-device.ts); the SD
 * controller's driver probes asynchronously, so wait a little for it.
 */
function findBootPartition(direct: boolean): PartitionInfo | undefined {
  const cmdline = readFileSync('/proc/cmdline', 'utf8');
  const start = Date.now();
  for (;;) {
    const parts = scanPartitions();
    const choice = chooseBootPartition(parts, cmdline);
    if (choice.ok) {
      log(`boot partition ${choice.partition.device} (${choice.how})`);
      return choice.partition;
    }
    // No disk at all after 2 s: stop; a disk whose partitions are still being scanned gets up
    // to 8 s. A direct boot (the system came in the initramfs) has no card: one look is enough.
    const waited = Date.now() - start;
    if (choice.final || direct || waited > 8000 || (parts.length === 0 && waited > 2000)) {
      log(`no boot partition${direct ? ' (direct boot: the system came in the initramfs)' : ''}: ${choice.reason}`);
      return undefined;
    }
    spawnSync(BUSYBOX, ['sleep', '0.2']);
  }
}

function mountBoot(dev: string): void {
  mkdirSync('/boot', { recursive: true });
  const r = spawnSync(BUSYBOX, ['mount', '-t', 'vfat', '-o', 'ro', dev, '/boot'], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) log(`cannot mount ${dev} on /boot: ${r.stderr?.toString().trim()}`);
}

/** Warn (never fail) when the hardware is not the board the image was built for. */
function checkBoard(info: ImageInfo): void {
  let compat: string[] = [];
  try {
    compat = readFileSync('/proc/device-tree/compatible', 'latin1').split('\0').filter(Boolean);
  } catch {
    return;
  }
  const mine = info.board.detection.compatible;
  if (compat.length && !compat.some((c) => mine.includes(c))) {
    log(`warning: this image is for ${info.board.name} (${mine.join(', ')}) but the device tree says ${compat.join(', ')}`);
  }
}

/** Set the host name; a name that could not be used is said with the other settings' problems. */
function setHostname(): { name: string; warning?: string } {
  const { name, warning } = hostnameFrom(readFileSync('/proc/cmdline', 'utf8'));
  try {
    writeFileSync('/proc/sys/kernel/hostname', name);
    mkdirSync('/etc', { recursive: true });
    writeFileSync('/etc/hostname', `${name}\n`);
  } catch (err) {
    log(`cannot set the host name: ${(err as Error).message}`);
  }
  return { name, ...(warning ? { warning } : {}) };
}

/** busybox loadkmap: the keymap on its stdin, into the keyboard of the virtual terminals (it finds /dev/tty0). */
function loadKeymap(file: string): string | undefined {
  if (!existsSync(file)) return `${file} is not in this image`;
  const r = spawnSync(BUSYBOX, ['loadkmap'], { input: readFileSync(file), stdio: ['pipe', 'ignore', 'pipe'] });
  return r.status === 0 ? undefined : r.stderr?.toString().trim() || `exit ${r.status}`;
}

/**
 * The card's first-boot settings (settings.ts): TZ before the apps and the REPL start (they
 * inherit it), the Wi-Fi networks moved off the FAT, problems said, the state kept for board.info.
 */
function applyCardSettings(info: ImageInfo, haveBoot: boolean, users: boolean, host: { name: string; warning?: string }, screen: string | undefined): { wifiCountry?: string; cardNetworks: WifiNetwork[]; sshKeys?: string; fleet?: string } {
  const files = haveBoot ? envFiles('/boot', info.layout.env.file, info.layout.env.backup, info.layout.env.size) : undefined;
  let vars: EnvVars | undefined;
  try {
    if (files) vars = readEnvFiles(files).vars;
  } catch (err) {
    log(`settings: the card's U-Boot environment cannot be read (${(err as Error).message}): no time zone or Wi-Fi settings applied`);
  }
  const { state, tz } = applyBootSettings({
    vars,
    hostname: host.name,
    ...(host.warning ? { hostnameProblem: host.warning } : {}),
    ...(users ? { wifiFile: WIFI_FILE, fleetPasswordFile: FLEET_PASSWORD_FILE } : {}),
    ...(screen ? { loadKeymap } : {}),
    removeFromCard: (names) =>
      void updateEnvFiles(
        files!,
        (v) => (names.forEach((n) => v.delete(n)), v),
        (fn) => withWritableMount('/boot', fn),
      ),
    log,
  });
  if (tz) process.env.TZ = tz;
  try {
    mkdirSync(dirname(SETTINGS_STATE), { recursive: true });
    writeFileSync(SETTINGS_STATE, JSON.stringify(state, null, 2) + '\n');
  } catch (err) {
    log(`settings: cannot record them for board.info (${(err as Error).message})`);
  }
  // Without a users' partition the networks stayed on the card: Wi-Fi joins them from there.
  const cardNetworks = users ? [] : decodeWifi(vars?.get(ENV_WIFI)).networks;
  const sshKeys = vars?.get(ENV_SSH_KEYS);
  return { cardNetworks, ...(state.wifi.country ? { wifiCountry: state.wifi.country } : {}), ...(sshKeys ? { sshKeys } : {}), ...(state.fleet && state.fleet.password !== 'none' ? { fleet: state.fleet.fleet } : {}) };
}

/**
 * A REPL on the console (stdio inherited), or on a virtual terminal (the screen and keyboard,
 * TERM=linux for line editing); started again whenever it ends. The console's says when its
 * prompt shows (a message on an IPC channel it then closes): what waits for the prompt starts.
 */
function startRepl(tty?: string): void {
  const started = Date.now();
  let fd: number | undefined;
  try {
    if (tty) fd = openSync(`/dev/${tty}`, 'r+');
  } catch (err) {
    log(`screen: no REPL on /dev/${tty}: ${(err as Error).message}`);
    return;
  }
  const child = spawn(process.execPath, [fileURLToPath(new URL('./repl.js', import.meta.url))], {
    stdio: fd === undefined ? ['inherit', 'inherit', 'inherit', 'ipc'] : [fd, fd, fd],
    env: fd === undefined ? process.env : { ...process.env, TERM: 'linux', [SCREEN_REPL_ENV]: '1' },
  });
  if (fd !== undefined) closeSync(fd);
  if (fd === undefined && !later.shown) {
    // A REPL that never says so (it failed before its prompt) does not hold the rest back for ever.
    const fallback = setTimeout(() => later.promptShown(), 120_000);
    child.once('message', () => {
      clearTimeout(fallback);
      later.promptShown();
    });
    child.once('exit', () => {
      clearTimeout(fallback);
      later.promptShown();
    });
  }
  child.on('exit', (code, signal) => {
    // A REPL that dies at once repeatedly is throttled instead of spinning.
    const delay = Date.now() - started < 1000 ? 1000 : 0;
    log(`REPL${tty ? ` on ${tty}` : ''} ended (${signal ?? `exit ${code}`}); starting a new one`);
    setTimeout(() => startRepl(tty), delay);
  });
}

/**
 * The screen's REPL: at once when a display is connected (a DRM connector says so), else once
 * Enter is pressed there (BusyBox init's askfirst): a board without a screen runs no second REPL.
 */
function startScreenRepl(tty: string): void {
  if (displayConnected(drmConnectors())) return startRepl(tty);
  let fd: number;
  try {
    fd = openSync(`/dev/${tty}`, 'r+');
    writeSync(fd, '\nPlease press Enter to activate this console.\n');
  } catch (err) {
    log(`screen: no REPL on /dev/${tty}: ${(err as Error).message}`);
    return;
  }
  const keys = new ReadStream(fd);
  keys.on('error', (err) => log(`screen: /dev/${tty}: ${err.message}`));
  // Canonical mode: the first data is a line, i.e. Enter was pressed.
  keys.once('data', () => {
    keys.destroy();
    startRepl(tty);
  });
}

/** The screen console's terminal, when the board has one and the kernel made it (a framebuffer or not: the VT exists). */
function openScreen(board: BoardProfile): string | undefined {
  const tty = board.screen?.console;
  if (!tty || !existsSync(`/dev/${tty}`)) return undefined;
  try {
    screenFd = openSync(`/dev/${tty}`, 'w');
  } catch (err) {
    log(`screen: cannot open /dev/${tty}: ${(err as Error).message}`);
    return undefined;
  }
  return tty;
}

/** A tmpfs over a read-only directory of the system slot, holding a copy of what was there. */
function writableCopy(dir: string): void {
  const saved: { rel: string; data?: Buffer; link?: string }[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = join(rel, name);
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) walk(r);
      else if (st.isSymbolicLink()) saved.push({ rel: r, link: readlinkSync(join(dir, r)) });
      else saved.push({ rel: r, data: readFileSync(join(dir, r)) });
    }
  };
  walk('');
  if (!mount('tmpfs', dir, 'mode=0755')) return;
  for (const f of saved) {
    mkdirSync(join(dir, f.rel, '..'), { recursive: true });
    if (f.link !== undefined) symlinkSync(f.link, join(dir, f.rel));
    else writeFileSync(join(dir, f.rel), f.data!);
  }
}

/** What starts once the console's REPL shows its prompt. */
const later = new AfterPrompt(log);
let dhcp: DhcpClient | undefined;
let wifi: WifiSupervisor | undefined;
let watchdog: Watchdog | undefined;
/** The services running in processes of their own (keepRunning), by name. */
const services = new Map<string, ChildProcess>();
let shuttingDown = false;
let apps: AppSupervisor | undefined;
/** Apps that wait for the network, started with the first address. */
const networkApps: string[] = [];
let online = false;

/**
 * Reboot or power off in order: the DHCP lease is released (so the server can give the
 * address away at once), the SSH server stopped, the card's filesystems synced and unmounted.
 */
function shutdown(how: 'reboot' | 'poweroff'): void {
  if (shuttingDown) return;
  shuttingDown = true;
  // The fleet agent says offline; the SSH server closes its sessions.
  for (const child of services.values()) child.kill('SIGTERM');
  // Powered off, the board must stay off: the watchdog would start it again.
  if (how === 'poweroff') watchdog?.stop();
  // Apps get SIGTERM and up to 5 s (then SIGKILL) to write what they hold before /home goes.
  void (apps?.stopAll() ?? Promise.resolve()).finally(() => {
    dhcp?.stop(true);
    wifi?.stop();
    // The RELEASE leaves on its own; give it a moment before the link goes down.
    setTimeout(() => syncUnmountAnd(how), 300);
  });
}

/**
 * The image's apps (image.json) and the users' enabled ones (user-apps.ts), supervised: each
 * in its own process, restarted with backoff, logged on the users' partition (in memory
 * without one). Those that asked for the network start with the first address; the others now.
 */
async function startApps(info: ImageInfo, users: boolean): Promise<void> {
  const image = info.apps ?? [];
  writeUsers('/etc');
  const opened = openHardwareToApps();
  const logDir = users ? '/home/.local/state/nodeos/logs' : `${APPS_RUN_DIR}/logs`;
  const runner = appStarter({ logDir, dataDir: users ? '/home/apps' : `${APPS_RUN_DIR}/apps`, env: process.env, onLogError: (name, err) => log(`app ${name}: its log ${logDir}/${name}.log cannot be written: ${err.message}`) });
  mkdirSync(APPS_RUN_DIR, { recursive: true });
  const onChange = (a: AppStatus[]): void => {
    try {
      writeAppsState({ logDir, apps: a });
    } catch (err) {
      log(`apps: cannot write ${APPS_RUN_DIR}/apps.json: ${(err as Error).message}`);
    }
  };
  const sup = (apps = new AppSupervisor({ start: runner.start, clock: systemClock, log, onChange }));
  // GPIO lines for apps that are not root: requests on a FIFO only the app group may write.
  const fifoError = busybox(['mknod', GPIO_FIFO, 'p']);
  try {
    if (fifoError && !existsSync(GPIO_FIFO)) throw new Error(fifoError);
    chownSync(GPIO_FIFO, 0, APP_GID);
    chmodSync(GPIO_FIFO, 0o620);
    serveGpioRequests(GPIO_FIFO, () => sysfsChips(), APP_GID, log);
  } catch (err) {
    log(`gpio: apps that are not root cannot open GPIO lines: ${(err as Error).message}`);
  }
  // Deployed apps (nodeos-bsp deploy) run in place of the image's of the same name, on the system they were deployed to.
  const deployed = users ? deployedSpecs(DEPLOY_ROOT, info.build, image.map((a) => a.name), log) : [];
  for (const a of image) sup.add(deployed.find((d) => d.name === a.name) ?? { name: a.name, version: a.version, dir: a.dir, main: a.main, network: a.network, root: a.root, source: 'image' });
  for (const d of deployed) if (!sup.spec(d.name)) sup.add(d);
  if (users) {
    for (const pkg of readEnabled()) {
      try {
        const spec = userAppSpec(pkg);
        const other = sup.spec(spec.name);
        if (other) throw new Error(`an app named ${spec.name} is ${other.source === 'image' ? 'built into the image' : 'deployed (nodeos-bsp deploy)'}`);
        sup.add(spec);
      } catch (err) {
        log(`app ${pkg} (enabled by a user): not started: ${(err as Error).message}`);
      }
    }
  }
  const run = (name: string): void => {
    if (sup.spec(name)?.network && !online) networkApps.push(name);
    else sup.start(name);
  };
  // board.apps.enable(): a package from the users' npm prefix, started now and at every boot.
  const enable = (pkg: string): AppStatus => {
    if (!users) throw new BspError('EAPP_NO_USERS', 'users\' apps need the users\' partition (/home), which this boot does not have');
    const spec = userAppSpec(pkg);
    const had = sup.spec(spec.name);
    if (had && had.source !== 'user') throw new BspError('EAPP_EXISTS', `an app named ${spec.name} is ${had.source === 'image' ? 'built into the image' : 'deployed (nodeos-bsp deploy)'}: that one runs (rename the package to run both)`);
    if (!had) sup.add(spec);
    writeEnabled([...readEnabled().filter((p) => p !== pkg), pkg]);
    run(spec.name);
    return sup.list().find((a) => a.name === spec.name)!;
  };
  const disable = async (pkg: string): Promise<AppStatus> => {
    const name = sup.list().find((a) => a.name === pkg || sup.spec(a.name)?.package === pkg)?.name;
    const spec = name ? sup.spec(name) : undefined;
    if (spec && spec.source !== 'user') throw new BspError('EAPP_EXISTS', `${name} is ${spec.source === 'image' ? 'built into the image' : 'deployed'}, not enabled by a user: board.apps.${name}.stop() stops it until the next boot`);
    if (!spec || !readEnabled().includes(spec.package ?? pkg)) throw new BspError('EAPP_UNKNOWN', `${pkg} is not an enabled app: the enabled ones are ${readEnabled().join(', ') || '(none)'}`);
    writeEnabled(readEnabled().filter((p) => p !== spec.package));
    return sup.remove(spec.name);
  };
  // nodeos-bsp deploy: the sshd staged a release; it replaces the running version once it ran settleMs.
  const deploying = new Set<string>();
  const deploy = async (name: string, req: DeployRequest): Promise<AppStatus> => {
    if (!users) throw new BspError('EDEPLOY_NO_USERS', 'deployed apps are kept on the users\' partition (/home), which this boot does not have');
    if (deploying.has(name)) throw new BspError('EDEPLOY_BUSY', `${name} is being deployed by someone else right now: try again when that deploy has finished`);
    const had = sup.spec(name);
    if (had?.source === 'user') throw new BspError('EAPP_EXISTS', `${name} is a user's app (board.apps.enable): board.apps.disable('${had.package ?? name}') first, or deploy it under another name`);
    deploying.add(name);
    let kept = false;
    try {
      const spec = releaseSpec(DEPLOY_ROOT, name, req.release);
      const r = await sup.replace(spec, req.settleMs);
      if (r.ok) {
        commitRelease(DEPLOY_ROOT, name, req.release);
        kept = true;
        log(`app ${name}: deployed ${spec.version} (release ${req.release})${had ? ` in place of ${had.version ?? 'the version before'}` : ''}`);
        return r.app;
      }
      const x = r.failed.lastExit;
      const how = !x ? 'could not start' : x.signal ? `was killed by ${x.signal}` : `exited with code ${x.code}`;
      const back = r.app ? `rolled back to ${r.app.version ?? 'the version before'}, which runs again` : 'nothing runs under that name (it was new)';
      log(`app ${name}: the deployed ${spec.version} ${how} within ${req.settleMs / 1000} s; ${back}`);
      throw new BspError('EDEPLOY_CRASHED', `${name} ${spec.version} ${how} within ${req.settleMs / 1000} s of starting; ${back}. The end of its log:\n${tailAppLog(logDir, name, 15)}`);
    } finally {
      // Not kept (it exited, or could not even be read): removed, unless current or previous.
      if (!kept) discardRelease(DEPLOY_ROOT, name, req.release);
      deploying.delete(name);
    }
  };
  try {
    await serveAppControl(sup, undefined, { enable, disable, deploy });
  } catch (err) {
    log(`apps: no control socket (board.apps cannot start or stop them): ${(err as Error).message}`);
  }
  for (const name of sup.names()) run(name);
  if (!sup.names().length) return;
  const waiting = sup.names().filter((n) => networkApps.includes(n));
  log(`apps: ${sup.names().map((n) => `${n}${sup.spec(n)?.source !== 'image' ? ` (${sup.spec(n)?.source})` : ''}${waiting.includes(n) ? ' (once the network is up)' : ''}`).join(', ')}; board.apps shows them${users ? '' : ' (logs in memory: no users partition)'}${opened.length ? `; the app user may use ${opened.join(' ')}` : ''}`);
}

/**
 * A service in its own process (the SSH server, the fleet agent): a fault in it never reaches
 * init. Started again with a growing delay, unless it ended with `off` (off on purpose, said).
 */
function keepRunning(what: string, script: string, off: number, attempt = 0): void {
  const started = Date.now();
  // Pipes, not the console: a Node process on a TTY puts back the terminal mode it found when
  // it exits, which would switch echo back on under the REPL's feet (every line twice).
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  services.set(what, child);
  child.stdout.pipe(process.stdout, { end: false });
  child.stderr.pipe(process.stdout, { end: false });
  child.on('exit', (code, signal) => {
    if (services.get(what) === child) services.delete(what);
    if (code === off || shuttingDown) return;
    const next = Date.now() - started > 60000 ? 0 : attempt + 1;
    const delay = Math.min(60000, 1000 * 2 ** next);
    log(`${what} ended (${signal ?? `exit ${code}`}); starting it again in ${delay / 1000} s`);
    setTimeout(() => keepRunning(what, script, off, next), delay);
  });
}

/** USB gadget Ethernet on boards with an OTG port in device mode (profile usbGadget). */
function startGadget(board: BoardProfile): void {
  if (!mount('configfs', '/sys/kernel/config')) return;
  const read = (p: string): Buffer | undefined => {
    try {
      return readFileSync(p);
    } catch {
      return undefined;
    }
  };
  startGadgetNetwork({ profile: board, serial: serialNumber(read) ?? '0', log, ip: busybox }).catch((err: Error) => log(`usb-gadget: ${err.message}`));
}

async function main(): Promise<void> {
  // PID 1 must not end: whatever no service caught is said, and init goes on.
  lastResort(log);
  mount('proc', '/proc');
  mount('sysfs', '/sys');
  // Debian kernels do not auto-mount devtmpfs in an initramfs.
  mount('devtmpfs', '/dev');
  // Stage 1 armed the watchdog (about 15 s): fed from here on, a hang resets the board (and
  // counts as a failed try of an unconfirmed slot).
  watchdog = startWatchdog(log);
  mount('tmpfs', '/tmp', 'mode=1777');
  mount('tmpfs', '/run', 'mode=0755');
  // The system slot is read-only: /etc (host name, resolver files) lives in memory.
  writableCopy('/etc');
  const info = JSON.parse(readFileSync(`${ETC}/image.json`, 'utf8')) as ImageInfo;
  const screen = openScreen(info.board);
  const host = setHostname();
  const hostname = host.name;
  if (info.buildEpoch) applyFloor(info.buildEpoch, log);
  loadModules(info.modules);
  // The network's, USB's and input's drivers once the prompt shows, before what uses them (Wi-Fi, the USB gadget).
  const drivers = info.modulesLater ?? [];
  if (drivers.length) later.add(`drivers (${drivers.length} modules: network, USB, input)`, () => loadModules(drivers));
  // In the background, after the prompt: the REPL never waits for the network, nor for the clock.
  let leaseNtp: string[] = [];
  const cmdline = readFileSync('/proc/cmdline', 'utf8');
  const clock = new ClockKeeper({ sources: () => timeSources(cmdline, leaseNtp, npmRegistry(process.env.HOME ?? '/home')), log, ...(info.buildEpoch ? { buildEpoch: info.buildEpoch } : {}) });
  let mdns: Supervised<MdnsResponder> | undefined;
  const onLease = (l: Lease): void => {
    leaseNtp = l.ntp;
    online = true;
    for (const name of networkApps.splice(0)) apps?.start(name);
    clock.start();
    // <hostname>.local: started with the first address, announced with each new one; a
    // fault in the responder restarts it (supervise), never init.
    if (!mdns) {
      let said = false;
      const started = (r: MdnsResponder): MdnsResponder => {
        if (!said) log(`mdns: answering for ${r.name}.local`);
        said = true;
        r.announce();
        return r;
      };
      const start = (): void => void (mdns ??= supervise('mdns', (fault) => startMdns({ hostname, log, onFault: fault }).then(started), { log }));
      later.add('mDNS', start);
    } else mdns.current()?.announce();
  };
  // After the prompt too, once the drivers above loaded: it waits for their interface to appear.
  later.add('the network', () =>
    void startNetwork({ hostname, log, onLease, cmdline })
      .then((c) => (dhcp = c))
      .catch((err: Error) => log(`network: ${err.message}`)),
  );
  checkBoard(info);
  const direct = process.env[DIRECT_BOOT_ENV] === '1';
  delete process.env[DIRECT_BOOT_ENV];
  const boot = findBootPartition(direct);
  if (!boot) log('board.env and the users partition are unavailable');
  else {
    // The users' partition (created and announced with partx on first boot), then /boot.
    const users = usersPartition(info.layout);
    if (users) {
      try {
        const r = setupUsers(boot.disk, users, info.build);
        if (r.state === 'created') log(`created the users partition ${r.device} (ext4) and mounted it on ${users.mount ?? '/home'}`);
        else if (r.state === 'skipped') log(`users partition not mounted: ${r.reason}`);
      } catch (err) {
        log(`users partition not mounted: ${(err as Error).message}`);
      }
    }
    mountBoot(boot.device);
  }
  // The kernel starts init with HOME=/: point it at the users' partition when there is one;
  // npm install -g lands there too, and what it installs is on PATH.
  const users = existsSync('/home/.nodeos');
  const home = users ? '/home' : '/root';
  Object.assign(process.env, npmEnvironment(users, home));
  // Without a users' partition the home is in memory (the system slot is read-only).
  if (!users) mount('tmpfs', '/root', 'mode=0700');
  const card = applyCardSettings(info, boot !== undefined, users, host, screen);
  // Wi-Fi, in the background, on images that ship wpa_supplicant (boards with wifi in their
  // profile), after the networks were moved from the card to the users' partition.
  if (existsSync(WPA_SUPPLICANT)) {
    later.add('Wi-Fi', () =>
      void startWifi({ hostname, log, onLease: (l) => onLease(l), ownsResolver: () => !dhcp?.lease, cardNetworks: card.cardNetworks, ...(card.wifiCountry ? { country: card.wifiCountry } : {}) })
        .then((w) => (wifi = w))
        .catch((err: Error) => log(`wifi: ${err.message}`)),
    );
  }
  // Local installs (npm install x in the REPL) land next to the user's files and are found by require.
  process.chdir(home);
  log(`${info.board.name} (${info.board.id}), Node.js ${process.version} ${process.arch}, build ${info.build}`);
  // PID 1 ignores the signals that would otherwise end it; SIGTERM and SIGUSR2 are busybox
  // reboot's and poweroff's requests (board.reboot() sends them), done in order here.
  for (const sig of ['SIGINT', 'SIGHUP', 'SIGQUIT'] as const) process.on(sig, () => undefined);
  process.on('SIGTERM', () => shutdown('reboot'));
  process.on('SIGUSR2', () => shutdown('poweroff'));
  // From the prompt on, kernel warnings go to dmesg only: they would land in the middle of
  // what the user types (errors and worse still reach the console).
  try {
    writeFileSync('/proc/sys/kernel/printk', '4');
  } catch {
    // Not fatal: the REPL works with a chattier console.
  }
  // An app problem never stops the board from coming up; a new system is confirmed once they run.
  const appNames = [...(info.apps ?? []).map((a) => a.name), ...readEnabled()];
  later.add(appNames.length ? `apps (${appNames.map(shownName).join(', ')})` : 'the apps service', () =>
    void startApps(info, users)
      .catch((err: Error) => log(`apps: not started: ${err.message}`))
      .finally(() => boot && confirmWhenAppsHealthy(info)),
  );
  // The SSH server only when a key may log in (its own process: none is started to say no).
  const authorized = join(home, '.ssh/authorized_keys');
  if (sshKeysPresent(card.sshKeys, readAuthorizedKeys(authorized))) later.add('the SSH server', () => keepRunning('ssh: the server', './sshd.js', SSHD_OFF));
  else log(sshOff(authorized));
  // The fleet agent when the card says which fleet (it waits for the network itself, connecting with backoff).
  if (card.fleet) later.add(`the fleet agent (${card.fleet})`, () => keepRunning('fleet: the agent', './fleet.js', FLEET_OFF));
  if (screen) later.add(`a REPL on ${screen}`, () => startScreenRepl(screen));
  if (info.board.usbGadget) later.add('USB gadget Ethernet', () => startGadget(info.board));
  log(`after the prompt: ${later.pending().join(', ')}`);
  startRepl();
}

/**
 * A new system (its slot not yet confirmed) with apps is confirmed once they have run 30 s
 * without exiting; an app in a crash loop instead fails its boot: the board restarts and
 * U-Boot counts the try, so after bootlimit tries it is back on the system it came from.
 * A confirmed system, or one without apps, is confirmed (again) as soon as the REPL runs.
 */
function confirmWhenAppsHealthy(info: ImageInfo): void {
  const names = (apps?.list() ?? []).filter((a) => a.source !== 'user').map((a) => a.name);
  let confirmed = true;
  try {
    confirmed = systemState(info.build, readFileSync('/proc/cmdline', 'utf8'), envFiles('/boot', info.layout.env.file, info.layout.env.backup, info.layout.env.size)).confirmed;
  } catch {
    // Unreadable environment: confirmSlot says what it can.
  }
  if (confirmed || !names.length) return confirmSlot(info);
  log(`update: this system is new; it is confirmed once its apps (${names.join(', ')}) have run 30 s`);
  const timer = setInterval(() => {
    const h = appsHealth(apps?.list() ?? [], Date.now());
    if (h.state === 'pending') return;
    clearInterval(timer);
    if (h.state === 'healthy') return confirmSlot(info);
    log(`update: app ${h.app} crash-loops on this new system (build ${info.build}): restarting, so that U-Boot counts a failed try (after ${info.layout.bootlimit} the board is back on the system it came from)`);
    shutdown('reboot');
  }, 1000);
}

/** The system is up (the REPL runs): confirm the slot, and say so when U-Boot fell back to it. */
function confirmSlot(info: ImageInfo): void {
  try {
    const files = envFiles('/boot', info.layout.env.file, info.layout.env.backup, info.layout.env.size);
    const c = confirmRunningSlot(info.layout, files, (fn) => withWritableMount('/boot', fn));
    if (!c) return;
    if (c.fellBack) log(`update: slot ${c.fellBack.slot}${c.fellBack.build ? ` (build ${c.fellBack.build})` : ''} did not come up; back on this system (see board.system)`);
    else if (c.changed) log('update: this system is confirmed');
  } catch (err) {
    log(`update: cannot confirm this system in the U-Boot environment: ${(err as Error).message}`);
  }
}

void main();
