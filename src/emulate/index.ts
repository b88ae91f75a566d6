/**
 * `nodeos-bsp emulate`: boot an image under QEMU the way the board would. Through U-Boot
 * (default): QEMU loads u-boot.bin and the DTB from the image's boot partition and attaches
 * the image as the SD card. `--direct`: kernel, DTB and initramfs straight from the image.
 * The console is the board's console UART.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';
import { writeCpio } from '../cpio/index.js';
import { applyOverlays } from '../devicetree/index.js';
import { Fat32Reader, fileReadAt } from '../fat/index.js';
import { DIRECT_SYSTEM, partitionBytes, readCardEnv, readLayoutAt, systemPartition, type ImageLayout } from '../layout/index.js';
import { defaultBoardsDir } from '../paths.js';
import { setEmulatedBootargs } from './card-env.js';

/** A QEMU binary and what it can emulate. */
export interface QemuInfo {
  path: string;
  version: [number, number, number];
  machines: string[];
}

/** Oldest QEMU that has each machine (raspi4b and the BCM2835 I2C models came with 9.0). */
const MIN_VERSION: Record<string, [number, number]> = { raspi3b: [7, 0], raspi3ap: [7, 0], raspi4b: [9, 0] };

/** Find qemu-system-aarch64 and check it emulates `machine`. */
export function findQemu(machine: string, binary = process.env.NODEOS_BSP_QEMU ?? 'qemu-system-aarch64'): QemuInfo {
  const v = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) {
    throw new BspError('EQEMU_MISSING', `${binary} is not installed: apt-get install qemu-system-arm (Debian 12 has QEMU 7.2, enough for raspi3b; raspi4b needs QEMU 9 or later from bookworm-backports)`);
  }
  const m = /version (\d+)\.(\d+)\.(\d+)/.exec(v.stdout);
  const version: [number, number, number] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  const list = spawnSync(binary, ['-M', 'help'], { encoding: 'utf8' });
  const machines = list.stdout.split('\n').map((l) => l.split(/\s+/)[0] ?? '').filter(Boolean);
  if (!machines.includes(machine)) {
    const min = MIN_VERSION[machine];
    throw new BspError(
      'EQEMU_MACHINE',
      `QEMU ${version.join('.')} at ${binary} cannot emulate ${machine}${min ? `: it needs QEMU ${min.join('.')} or later` : ''} (QEMU 10 from bookworm-backports: apt-get install -t bookworm-backports qemu-system-arm)`,
    );
  }
  return { path: binary, version, machines };
}

/** Slot A's squashfs, read from its partition (squashfs records its length at byte 40). */
export function systemImage(image: string, layout: ImageLayout): Buffer {
  const part = partitionBytes(systemPartition(layout, 'A'));
  const read = fileReadAt(image);
  const sb = read(part.offset, 96);
  if (sb.toString('latin1', 0, 4) !== 'hsqs') throw new BspError('EIMAGE', `${image}: slot A (${systemPartition(layout, 'A').name}) holds no squashfs`);
  const used = Number(sb.readBigUInt64LE(40));
  if (used > part.size) throw new BspError('EIMAGE', `${image}: slot A's squashfs says it is ${used} bytes, more than its partition`);
  // mksquashfs pads the image to 4 KiB.
  return read(part.offset, Math.ceil(used / 4096) * 4096);
}

/** A value inside a QEMU option list (`-drive file=...,if=sd`): commas are doubled, so a path cannot add options. */
export const qemuOptValue = (v: string): string => v.replace(/,/g, ',,');

/** How to emulate. */
export interface EmulateOptions {
  /** Skip U-Boot: boot kernel, DTB and initramfs directly. */
  direct?: boolean;
  /** qcow2 overlay to keep the card's changes in (created if missing); default a throw-away one. */
  overlay?: string;
  /** SD card size QEMU sees (power of two). Default 1 GiB. */
  cardSize?: number;
  /** Extra kernel arguments (e.g. nodeos.run="board.GPIO17.write(1)"): on the command line when direct, else in the emulated card's bootargs. */
  cmdline?: string[];
  /** Extra QEMU arguments (e.g. -device tmp105,...). */
  extraArgs?: string[];
  /** QEMU's I2C device models on the board's buses (`--sensor tmp105@1:0x48`). */
  sensors?: Sensor[];
  qemu?: string;
  /** Where QEMU's monitor listens (a unix socket path), for tests that change devices. */
  monitorSocket?: string;
  /** Boards directory whose overlays/ holds the profile's emulation overlays. Default: the kit's. */
  boardsDir?: string;
  /** Backends for the other serial ports by QEMU index, e.g. { 0: 'unix:/tmp/uart0.sock,server=on,wait=off' }. */
  serial?: Record<number, string>;
  /**
   * The board's network: QEMU user networking, restricted (the board reaches only what is
   * forwarded), with TCP (or UDP) ports of the host's 127.0.0.1 forwarded to the board.
   * Default on for boards whose profile names an emulated NIC; false: no network card.
   */
  net?: false | { forward?: Forward[]; services?: { board: number; host: number }[]; mac?: string };
}

/** A port of this machine's 127.0.0.1 forwarded to the board's (`--forward`); TCP unless said. UDP goes one way: the restricted network drops the board's replies. */
export interface Forward {
  host: number;
  board: number;
  proto?: 'tcp' | 'udp';
}

/** Where the board reaches the services this machine offers it (`services`, `--service`). */
export const HOST_SERVICE_ADDRESS = '10.0.2.100';

/**
 * QEMU runs this for every TCP connection the board opens to a service (guestfwd's cmd:,
 * the connection on stdin/stdout): it joins it to this machine's 127.0.0.1:port.
 */
export function relayCommand(port: number): string {
  const js = `const s=require("net").connect({host:"127.0.0.1",port:${port}});s.on("error",()=>process.exit(1));process.stdin.pipe(s).pipe(process.stdout)`;
  return `'${process.execPath.replace(/'/g, "'\\''")}' -e '${js}'`;
}

/** QEMU's -netdev/-device arguments for a board's restricted user network. */
export function networkArgs(profile: BoardProfile, net: EmulateOptions['net']): string[] {
  const nic = profile.emulation?.qemu.nic;
  if (net === false) return ['-nic', 'none'];
  if (!nic) {
    if (net?.forward?.length) throw new BspError('EUSAGE', `${profile.id} has no emulated network card (emulation.qemu.nic): nothing to forward to`);
    return ['-nic', 'none'];
  }
  const ports = (...ps: number[]): void => {
    for (const p of ps) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new BspError('EUSAGE', `port ${p} is not 1-65535`);
  };
  const fwd = (net?.forward ?? []).map((f) => {
    ports(f.host, f.board);
    return `,hostfwd=${f.proto ?? 'tcp'}:127.0.0.1:${f.host}-:${f.board}`;
  });
  // guestfwd: only these connections leave the restricted network, each to 127.0.0.1.
  const svc = (net?.services ?? []).map((f) => {
    ports(f.host, f.board);
    return `,guestfwd=tcp:${HOST_SERVICE_ADDRESS}:${f.board}-cmd:${qemuOptValue(relayCommand(f.host))}`;
  });
  const mac = net?.mac;
  // Unicast (the first octet's low bit clear): QEMU gives every board 52:54:00:12:34:56 otherwise.
  if (mac !== undefined && !(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0)) throw new BspError('EUSAGE', `--mac ${mac} is not a unicast MAC address such as 52:54:00:00:00:01`);
  return ['-netdev', `user,id=net0,restrict=on${fwd.join('')}${svc.join('')}`, '-device', `${nic},netdev=net0${mac ? `,mac=${mac.toLowerCase()}` : ''}`];
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freeLoopbackPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Parse a --service value, BOARDPORT:HOSTPORT. */
export function parseService(spec: string): { board: number; host: number } {
  const m = /^(\d+):(\d+)$/.exec(spec);
  if (!m) throw new BspError('EUSAGE', `--service ${spec}: use BOARDPORT:HOSTPORT, e.g. 80:8080 (the board reaches ${HOST_SERVICE_ADDRESS}:80)`);
  return { board: Number(m[1]), host: Number(m[2]) };
}

/** An I2C device model of QEMU's on one of the emulated board's buses. */
export interface Sensor {
  model: string;
  bus: number;
  address: number;
}

/** QEMU's I2C models that work as they come (the EEPROM gets a 256-byte ROM); what each is. */
export const SENSOR_MODELS: Record<string, { what: string; props?: string }> = {
  tmp105: { what: 'TI TMP105 temperature sensor (qom-set ... temperature <m°C>)' },
  tmp421: { what: 'TI TMP421 temperature sensor (qom-set ... temperature0 <m°C>)' },
  ds1338: { what: 'DS1338 real-time clock' },
  'at24c-eeprom': { what: 'AT24C EEPROM, 256 bytes', props: 'rom-size=256' },
};

/** Parse a --sensor value, MODEL@BUS:ADDRESS (e.g. tmp105@1:0x48). */
export function parseSensor(spec: string): Sensor {
  const m = /^([a-z0-9-]+)@(\d):(0x[0-9a-fA-F]{1,2}|\d{1,3})$/.exec(spec);
  if (!m) throw new BspError('EUSAGE', `--sensor ${spec}: use MODEL@BUS:ADDRESS, e.g. tmp105@1:0x48`);
  const model = m[1]!;
  if (!SENSOR_MODELS[model]) throw new BspError('EUSAGE', `--sensor ${spec}: no model ${model}; QEMU's models here: ${Object.keys(SENSOR_MODELS).join(', ')}`);
  const address = Number(m[3]);
  if (address < 0x08 || address > 0x77) throw new BspError('EUSAGE', `--sensor ${spec}: an I2C address is 0x08..0x77`);
  return { model, bus: Number(m[2]), address };
}

/** The -device options for sensors on a machine (the Pis' BCM2835 I2C controllers: buses 0-2). */
export function sensorArgs(machine: string, sensors: Sensor[]): string[] {
  if (!sensors.length) return [];
  if (!machine.startsWith('raspi')) throw new BspError('EUSAGE', `QEMU's ${machine} has no I2C bus for --sensor (the raspi machines have buses 0-2)`);
  const taken = new Set<string>();
  return sensors.flatMap((x, i) => {
    if (x.bus > 2) throw new BspError('EUSAGE', `--sensor ${x.model}@${x.bus}: ${machine} has I2C buses 0, 1 and 2`);
    const key = `${x.bus}:${x.address}`;
    if (taken.has(key)) throw new BspError('EUSAGE', `--sensor: two devices at address 0x${x.address.toString(16)} on bus ${x.bus}`);
    taken.add(key);
    const props = SENSOR_MODELS[x.model]!.props;
    return ['-device', `${x.model},id=sensor${i},bus=i2c-bus.${x.bus},address=0x${x.address.toString(16)}${props ? `,${props}` : ''}`];
  });
}

/** Parse a --forward value, HOSTPORT:BOARDPORT, with /udp for a UDP port (/tcp, the default, may be said). */
export function parseForward(spec: string): Forward {
  const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) throw new BspError('EUSAGE', `--forward ${spec}: use HOSTPORT:BOARDPORT, e.g. 2222:22, or 9000:9000/udp for a UDP port`);
  return { host: Number(m[1]), board: Number(m[2]), ...(m[3] === 'udp' ? { proto: 'udp' as const } : {}) };
}

/** A prepared emulation: the command line and the temporary files behind it. */
export interface Emulation {
  command: string;
  args: string[];
  workDir: string;
  /** The kernel command line: direct, from the image's uboot.env bootargs; through U-Boot, the emulated card's when the emulation changed them. */
  cmdline?: string;
  cleanup: () => void;
}

/** The console under emulation: the profile's emulation console where QEMU's model of the board's does not work, else the board's. */
export function emulatedConsole(profile: BoardProfile): string {
  return profile.emulation?.qemu.console ?? profile.console.device;
}

/**
 * The kernel arguments an emulated boot adds to the card's: the profile's emulation
 * arguments, the caller's, and the moved console last (the last console= is /dev/console).
 */
export function emulatedArgs(profile: BoardProfile, extra: string[] = []): string[] {
  const q = profile.emulation?.qemu;
  return [...(q?.cmdline ?? []), ...extra, ...(q?.console ? [`console=${q.console},${profile.console.baud}`] : [])];
}

/** QEMU's serial index for a console: where the profile lists it among the machine's ports. */
export function serialIndex(profile: BoardProfile, device = profile.console.device): number {
  const ports = profile.emulation?.qemu.serial ?? [];
  const i = ports.indexOf(device);
  if (i < 0) throw new BspError('EQEMU_MACHINE', `console ${device} is not one of ${profile.id}'s QEMU serial ports (${ports.join(', ') || 'none'}): fix emulation.qemu.serial`);
  return i;
}

/** Prepare files and the QEMU command line for `image`. */
export function prepareEmulation(image: string, profile: BoardProfile, o: EmulateOptions = {}): Emulation {
  const machine = profile.emulation?.qemu.machine;
  if (!machine) throw new BspError('EQEMU_MACHINE', `${profile.id} has no QEMU machine; boards that do: see nodeos-bsp boards list`);
  if (!existsSync(image)) throw new BspError('EIMAGE', `${image} does not exist: build it with nodeos-bsp build --board ${profile.id}`);
  const qemu = findQemu(machine.split(',')[0]!, o.qemu);
  const workDir = mkdtempSync(join(tmpdir(), 'nodeos-emulate-'));
  const cleanup = (): void => rmSync(workDir, { recursive: true, force: true });
  try {
    const { layout, boot: part } = readLayoutAt(image);
    const files = layout.boot;
    const fat = new Fat32Reader(image, part.offset);
    const extract = (name: string): string => {
      const p = join(workDir, name.replace(/\//g, '-'));
      writeFileSync(p, fat.readFile(name));
      return p;
    };
    const q = profile.emulation!.qemu;
    const args = ['-M', machine, '-accel', 'tcg,thread=single', '-display', 'none', ...networkArgs(profile, o.net), ...(q.cpu ? ['-cpu', q.cpu] : []), ...(q.memory ? ['-m', q.memory] : [])];
    // The image's DTB (when the board has one; QEMU's virt makes its own), with the
    // emulation-only overlays that switch off devices the QEMU machine does not implement.
    if (fat.stat(files.dtb)) {
      const dtb = join(workDir, files.dtb);
      writeFileSync(dtb, applyOverlays(fat.readFile(files.dtb), q.overlays ?? [], join(o.boardsDir ?? defaultBoardsDir(), 'overlays'), join(workDir, 'dtb-overlays')));
      args.push('-dtb', dtb);
    } else if ((q.overlays ?? []).length > 0) {
      throw new BspError('EIMAGE', `${image} has no ${files.dtb} for the emulation overlays ${(q.overlays ?? []).join(', ')}`);
    }
    // Serial ports in order; the console's index gets the terminal (with the monitor on it).
    const consoleDevice = emulatedConsole(profile);
    const idx = serialIndex(profile, consoleDevice);
    const extra = o.serial ?? {};
    if (extra[idx] !== undefined) throw new BspError('EUSAGE', `serial ${idx} is the board's console (${consoleDevice})`);
    const count = Math.max(idx, ...Object.keys(extra).map(Number)) + 1;
    for (let i = 0; i < count; i++) args.push('-serial', i === idx ? 'mon:stdio' : (extra[i] ?? 'null'));
    if (o.monitorSocket) args.push('-monitor', `unix:${qemuOptValue(o.monitorSocket)},server,nowait`);
    let cmdline: string | undefined;
    if (o.direct) {
      // The kernel's last console= becomes /dev/console, where the REPL runs.
      // uboot.env, or its copy when a write was cut short (as boot.scr does); through U-Boot the card's own U-Boot reads them.
      const env = readCardEnv((f) => fat.readFile(f), layout);
      if (!env) throw new BspError('EENV_CRC', `${image}: neither ${layout.env.file} nor ${layout.env.backup} is readable, so there are no bootargs for a direct boot: rebuild or reflash`);
      cmdline = [env.get('bootargs') ?? '', 'nodeos.slot=A', ...emulatedArgs(profile, o.cmdline)].filter(Boolean).join(' ');
      // An uncompressed cpio archive with slot A's system image, then the small initramfs: the
      // kernel unpacks both (in this order; after a zstd archive it would look no further).
      const initrd = join(workDir, 'initrd');
      writeFileSync(initrd, Buffer.concat([writeCpio([{ path: DIRECT_SYSTEM, type: 'file', data: systemImage(image, layout) }], 0), fat.readFile(files.slots.A.initramfs)]));
      args.push('-kernel', extract(files.slots.A.kernel), '-initrd', initrd, '-append', cmdline);
    } else {
      args.push(q.firmware === 'bios' ? '-bios' : '-kernel', extract(files.uboot));
      const overlay = o.overlay ? resolve(o.overlay) : join(workDir, 'card.qcow2');
      const kept = existsSync(overlay);
      if (!kept) {
        mkdirSync(join(overlay, '..'), { recursive: true });
        const size = o.cardSize ?? 1 << 30;
        if ((size & (size - 1)) !== 0) throw new BspError('EUSAGE', `card size ${size} is not a power of two, which QEMU's SD card needs`);
        const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', resolve(image), overlay, String(size)]);
        if (r.error || r.status !== 0) throw new BspError('ETOOL', `qemu-img: ${r.error?.message ?? r.stderr.toString()} (apt-get install qemu-utils)`);
      }
      const file = qemuOptValue(overlay);
      // Writethrough: what the board wrote is in the overlay file, qcow2's tables included, as it
      // is on a card. QEMU's SD card never asks for a flush, so with its default (writeback) a
      // killed QEMU loses recent writes a card would have kept, and tests of power cuts lie.
      if (q.storage === 'virtio') args.push('-drive', `file=${file},if=none,format=qcow2,cache=writethrough,id=card`, '-device', 'virtio-blk-device,drive=card');
      // The controller the board has its card slot on, where the machine's default is another.
      else if (q.sdBus) args.push('-drive', `file=${file},if=none,format=qcow2,cache=writethrough,id=card`, '-device', `sd-card,drive=card,bus=${qemuOptValue(q.sdBus)}`);
      else args.push('-drive', `file=${file},if=sd,format=qcow2,cache=writethrough`);
      // What the emulated boot adds to the kernel's arguments goes into the emulated card's
      // environment (a kept overlay: also back out what an earlier run added).
      const added = emulatedArgs(profile, o.cmdline);
      if (added.length > 0 || kept) {
        const bootargs = setEmulatedBootargs(overlay, layout, part.offset, added);
        if (bootargs !== undefined) cmdline = bootargs;
      }
    }
    fat.close();
    args.push(...sensorArgs(machine, o.sensors ?? []), ...(o.extraArgs ?? []));
    return { command: qemu.path, args, workDir, ...(cmdline !== undefined ? { cmdline } : {}), cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** Start QEMU; `stdio: 'inherit'` gives the user the console, 'pipe' lets a test drive it. */
export function startEmulation(e: Emulation, stdio: 'inherit' | 'pipe'): ChildProcess {
  const child = spawn(e.command, e.args, { stdio });
  child.on('exit', () => e.cleanup());
  return child;
}
