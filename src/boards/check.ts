/**
 * `boards check`: the rules that keep profiles honest. Each rule has a code and a message
 * that says how to fix it; the schema checks come from the loader.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ProfileFinding } from '../errors.js';
import type { ProfileSet, ResolvedProfile } from './load.js';
import { profilePathProblem } from '../paths.js';
import { isKitEnvVar } from '../layout/index.js';
import { headerPins, pinLabel } from './pins.js';

/** Where to look for files a profile names. */
export interface CheckOptions {
  /** Directory of kernel-config fragments (default: the kit's `kernel-configs/`). */
  kernelConfigsDir: string;
  /** Directory of the profiles; its overlays/ holds the .dtso files they name. */
  boardsDir: string;
  /** Optional dtb directory of an unpacked kernel package, to check that DTBs exist. */
  dtbDir?: string;
}

const MIB_ALIGN = 4;

type Emit = (code: string, path: string, message: string) => void;

function checkStatus(p: ResolvedProfile, emit: Emit): void {
  const { status, statusReason, arch } = p.profile;
  if (status !== 'supported' && !statusReason) {
    emit('EPROFILE_STATUS_REASON', '/statusReason', `status is "${status}": add statusReason saying why, so users know what to expect`);
  }
  if (arch.node === 'arm' && /^armv6/.test(arch.isa) && status !== 'unsupported') {
    emit('EARCH_NO_NODE', '/status', `${arch.isa} has no official Node.js build: set status: unsupported with a reason, or supply a Node binary`);
  }
}

function checkHeader(p: ResolvedProfile, emit: Emit): void {
  const { header, gpio } = p.profile;
  if (!header) return;
  const controllers = new Map(gpio.controllers.map((c) => [c.id, c]));
  const byPin = new Map<number, number>();
  const byLine = new Map<string, number>();
  const byLabel = new Map<string, number>();
  const byAlias = new Map<string, number>();
  header.pins.forEach((pin, i) => {
    const at = `/header/pins/${i}`;
    const other = byPin.get(pin.pin);
    if (other !== undefined) emit('EPIN_DUPLICATE', at, `physical pin ${pin.pin} is listed twice (also entry ${other}); keep one`);
    else byPin.set(pin.pin, i);
    if (pin.kind === 'gpio') {
      if (pin.line === undefined) {
        emit('EPIN_INVALID', at, `pin ${pin.pin} is gpio but has no line: add the SoC GPIO line (BCM number)`);
        return;
      }
      const cid = pin.controller ?? gpio.controllers[0]?.id;
      // A line is one controller's: PA10 and PL10 are line 10 of two controllers.
      const key = `${cid ?? ''}:${pin.line}`;
      const prev = byLine.get(key);
      if (prev !== undefined) {
        emit('EPIN_LINE_DUPLICATE', at, `GPIO line ${pin.line}${gpio.controllers.length > 1 ? ` of controller ${cid}` : ''} is on pin ${pin.pin} and pin ${prev}: a line reaches one header pin`);
      } else byLine.set(key, pin.pin);
      const label = pinLabel(pin);
      const same = byLabel.get(label);
      if (same !== undefined && prev === undefined) emit('EPIN_NAME_DUPLICATE', at, `pins ${same} and ${pin.pin} are both ${label} (lines of two controllers): give each its SoC name with name:, e.g. PL10`);
      else if (same === undefined) byLabel.set(label, pin.pin);
      const c = cid === undefined ? undefined : controllers.get(cid);
      if (!c) emit('EPIN_CONTROLLER', at, `pin ${pin.pin} names controller "${cid ?? ''}", which gpio.controllers does not declare`);
      else if (pin.line >= c.lines) emit('EPIN_INVALID', at, `line ${pin.line} is beyond controller "${c.id}" (${c.lines} lines)`);
    } else {
      if (pin.line !== undefined) emit('EPIN_INVALID', at, `pin ${pin.pin} is ${pin.kind} and cannot have a GPIO line`);
      if (pin.kind === 'power' && !pin.supply) emit('EPIN_INVALID', at, `power pin ${pin.pin} needs supply: 3V3 or 5V`);
    }
    for (const a of pin.aliases ?? []) {
      const was = byAlias.get(a.toUpperCase());
      if (was !== undefined) emit('EPIN_ALIAS_DUPLICATE', at, `alias ${a} is on pin ${pin.pin} and pin ${was}: an alias names one pin`);
      else byAlias.set(a.toUpperCase(), pin.pin);
      if (/^(GPIO|BCM|BOARD)\d+$/i.test(a)) emit('EPIN_ALIAS_RESERVED', at, `alias ${a} looks like a generated pin name; choose a function name such as SDA`);
    }
  });
  const numbers = [...byPin.keys()].sort((a, b) => a - b);
  const missing = numbers.length ? Array.from({ length: numbers.at(-1) ?? 0 }, (_, i) => i + 1).filter((n) => !byPin.has(n)) : [];
  if (missing.length > 0) emit('EPIN_MISSING', '/header/pins', `header ${header.name} has no entry for pin(s) ${missing.join(', ')}: list every pin, power and ground too`);
}

function checkBuses(p: ResolvedProfile, emit: Emit): void {
  const { buses, header } = p.profile;
  const pins = headerPins(p.profile).filter((x) => x.kind === 'gpio');
  const owner = new Map<string, string>();
  const ids = new Set<string>();
  buses.forEach((bus, i) => {
    const at = `/buses/${i}`;
    if (ids.has(bus.id)) emit('EBUS_DUPLICATE', at, `bus id "${bus.id}" is used twice`);
    ids.add(bus.id);
    for (const [signal, want] of Object.entries(bus.pins)) {
      // A line number, or the name of a header pin (where banks number their lines from 0 each).
      const on = typeof want === 'number' ? pins.filter((x) => x.line === want) : pins.filter((x) => x.names.includes(want));
      const what = typeof want === 'number' ? `GPIO${want}` : want;
      if (header && on.length === 0) {
        emit('EBUS_PIN_NOT_ON_HEADER', `${at}/pins/${signal}`, `${bus.id} ${signal} is ${what}, which no pin of header ${header.name} carries`);
      } else if (on.length > 1) {
        emit('EBUS_PIN_AMBIGUOUS', `${at}/pins/${signal}`, `${bus.id} ${signal} is line ${what}, which ${on.map((x) => `${x.label} (pin ${x.pin})`).join(' and ')} carry: name the pin instead, e.g. ${signal}: ${on[0]!.label}`);
      }
      const key = on.length === 1 ? `pin ${on[0]!.pin}` : what;
      const was = owner.get(key);
      if (was !== undefined) {
        emit('EPIN_CONFLICT', `${at}/pins/${signal}`, `${on.length === 1 ? `${on[0]!.label} (pin ${on[0]!.pin})` : what} is used by ${was} and ${bus.id}: a pin has one function; move or remove one`);
      } else owner.set(key, `${bus.id}.${signal}`);
    }
  });
}

function checkConsole(p: ResolvedProfile, emit: Emit): void {
  const { console: con, kernel } = p.profile;
  const args = kernel.cmdline.filter((a) => a.startsWith('console='));
  const want = `console=${con.device},${con.baud}`;
  // The kernel's last console= is /dev/console, where init's REPL appears.
  const last = args.at(-1);
  if (last === undefined) emit('ECONSOLE_CMDLINE', '/kernel/cmdline', `no console= argument: add "${want}"`);
  else if (last.replace(/n8$/, '') !== want) {
    emit('ECONSOLE_CMDLINE', '/kernel/cmdline', `the last console argument is "${last}" but console is ${con.device} at ${con.baud}: make it "${want}"`);
  }
  if (con.uart !== undefined) {
    const bus = p.profile.buses.find((b) => b.id === con.uart);
    if (!bus) emit('ECONSOLE_UART', '/console/uart', `console.uart "${con.uart}" is not one of the profile's buses`);
    else if (bus.device !== `/dev/${con.device}`) {
      emit('ECONSOLE_UART', '/console/device', `console device ${con.device} but bus ${bus.id} is ${bus.device}: they must agree`);
    }
  }
}

function checkPartitions(p: ResolvedProfile, emit: Emit): void {
  const parts = p.profile.partitions;
  let end = 0;
  let endName = '';
  parts.forEach((part, i) => {
    const at = `/partitions/${i}`;
    if (part.startMiB % MIB_ALIGN !== 0) emit('EPARTITION_ALIGN', `${at}/startMiB`, `partition ${part.name} starts at ${part.startMiB} MiB: use a multiple of ${MIB_ALIGN} MiB (SD erase blocks)`);
    if (part.startMiB < end) emit('EPARTITION_OVERLAP', `${at}/startMiB`, `partition ${part.name} starts at ${part.startMiB} MiB, inside ${endName} (ends at ${end} MiB)`);
    if (part.sizeMiB === 'fill') {
      if (i !== parts.length - 1) emit('EPARTITION_FILL', `${at}/sizeMiB`, `only the last partition can fill the card; ${part.name} is not last`);
      end = Infinity;
    } else end = part.startMiB + part.sizeMiB;
    endName = part.name;
  });
  if (parts.length > 4) emit('EPARTITION_COUNT', '/partitions', 'an MBR holds at most 4 primary partitions');
  if (!parts.some((x) => x.bootable)) emit('EPARTITION_BOOT', '/partitions', 'no partition is bootable: mark the boot partition bootable: true');
  // A/B updates: boards booted by U-Boot carry two system slots, each a fixed-size squashfs.
  if (p.profile.boot.uboot && !p.profile.abstract) {
    for (const slot of ['A', 'B'] as const) {
      const n = parts.filter((x) => x.slot === slot).length;
      if (n !== 1) emit('EPARTITION_SLOTS', '/partitions', `${n === 0 ? 'no' : n} partition${n === 1 ? '' : 's'} with slot: ${slot}: a board booted by U-Boot needs one system partition per slot (A and B)`);
    }
  }
  parts.forEach((part, i) => {
    if (part.slot && (part.filesystem !== 'squashfs' || part.sizeMiB === 'fill' || part.createdOnFirstBoot)) {
      emit('EPARTITION_SLOTS', `/partitions/${i}`, `system slot ${part.slot} (${part.name}) must be a squashfs of fixed size, written by the build`);
    }
    if (!part.slot && part.filesystem === 'squashfs') emit('EPARTITION_SLOTS', `/partitions/${i}/slot`, `squashfs partition ${part.name} holds a system: give it slot: A or B`);
  });
}

/** Every path a profile gives, with where it is in the profile: each must stay inside its folder. */
function profilePaths(p: ResolvedProfile): [string, string][] {
  const { boot, devicetree, kernel, emulation } = p.profile;
  return [
    ...kernel.fragments.map((f, i): [string, string] => [`/kernel/fragments/${i}`, f]),
    ...(devicetree.dtb !== undefined ? [['/devicetree/dtb', devicetree.dtb] as [string, string]] : []),
    ...(devicetree.firmwareName !== undefined ? [['/devicetree/firmwareName', devicetree.firmwareName] as [string, string]] : []),
    ...devicetree.overlays.map((o, i): [string, string] => [`/devicetree/overlays/${i}`, o]),
    ...(emulation?.qemu.overlays ?? []).map((o, i): [string, string] => [`/emulation/qemu/overlays/${i}`, o]),
    ...(boot.uboot ? [['/boot/uboot/file', boot.uboot.file] as [string, string], ...(boot.uboot.dtb ? [['/boot/uboot/dtb', boot.uboot.dtb] as [string, string]] : []), ...(boot.uboot.raw ?? []).map((r, i): [string, string] => [`/boot/uboot/raw/${i}/file`, r.file])] : []),
    ...(boot.firmware ? [['/boot/firmware/dir', boot.firmware.dir] as [string, string], ...boot.firmware.files.map((f, i): [string, string] => [`/boot/firmware/files/${i}`, f])] : []),
    ...(boot.files ?? []).map((f, i): [string, string] => [`/boot/files/${i}/path`, f.path]),
  ];
}

function checkFiles(p: ResolvedProfile, opts: CheckOptions, emit: Emit): void {
  const bad = new Set<string>();
  for (const [path, rel] of profilePaths(p)) {
    const problem = profilePathProblem(rel);
    if (problem) {
      bad.add(path);
      emit('EPROFILE_PATH', path, `"${rel}" ${problem}: paths in a profile stay inside their folder (the package, kernel-configs/, overlays/, the boot partition)`);
    }
  }
  p.profile.kernel.fragments.forEach((f, i) => {
    if (bad.has(`/kernel/fragments/${i}`)) return;
    if (!existsSync(join(opts.kernelConfigsDir, f))) {
      emit('EFRAGMENT_MISSING', `/kernel/fragments/${i}`, `kernel-configs/${f} does not exist: create it or fix the name`);
    }
  });
  const dtb = p.profile.devicetree.dtb;
  if (opts.dtbDir && dtb !== undefined && !bad.has('/devicetree/dtb') && !existsSync(join(opts.dtbDir, dtb))) {
    emit('EDTB_MISSING', '/devicetree/dtb', `${dtb} is not in ${opts.dtbDir}: use a DTB the kernel package ships`);
  }
  // Build-time overlays and emulation-only ones, compiled from <boards>/overlays/<name>.dtso.
  const overlays = [
    ...p.profile.devicetree.overlays.map((name, i) => [`/devicetree/overlays/${i}`, name] as const),
    ...(p.profile.emulation?.qemu.overlays ?? []).map((name, i) => [`/emulation/qemu/overlays/${i}`, name] as const),
  ];
  for (const [path, name] of overlays) {
    if (bad.has(path)) continue;
    if (!existsSync(join(opts.boardsDir, 'overlays', `${name}.dtso`))) emit('EOVERLAY_MISSING', path, `overlays/${name}.dtso does not exist: add it next to the profiles or fix the name`);
  }
}

function checkBoot(p: ResolvedProfile, emit: Emit): void {
  const { boot, devicetree, emulation } = p.profile;
  if (!boot.uboot) emit('EBOOT_UBOOT', '/boot/uboot', "no boot.uboot: the kit's images boot through U-Boot; name its Debian package, file and boot device");
  for (const k of Object.keys(boot.uboot?.env ?? {})) {
    if (isKitEnvVar(k)) emit('EBOOT_ENV', `/boot/uboot/env/${k}`, `${k} is written by the kit (from kernel.cmdline, console, the build and the A/B slots); remove it here`);
  }
  if (boot.uboot && !p.profile.abstract && !/^0x[0-9a-fA-F]+$/.test(boot.uboot.env?.scriptaddr ?? '')) {
    emit('EBOOT_ENV', '/boot/uboot/env/scriptaddr', 'boot.uboot.env needs scriptaddr (hex): 2 MiB of RAM no load address uses, for boot.scr and the environment it saves');
  }
  // A U-Boot that is the board's firmware keeps its own tree: boot.scr loads the kit's DTB for Linux to fdt_addr_r.
  if (boot.uboot && !p.profile.abstract && boot.method === 'uboot' && devicetree.dtb !== undefined && !/^0x[0-9a-fA-F]+$/.test(boot.uboot.env?.fdt_addr_r ?? '')) {
    emit('EBOOT_ENV', '/boot/uboot/env/fdt_addr_r', "boot.uboot.env needs fdt_addr_r (hex): where boot.scr loads the kit's DTB for Linux (this board's U-Boot is its firmware; its own tree would ignore the kit's)");
  }
  // Raw loader pieces go before the first partition (their sizes are checked by the build, which has the files).
  const firstStart = Math.min(...p.profile.partitions.map((x) => x.startMiB)) * 1024 * 1024;
  (boot.uboot?.raw ?? []).forEach((r, i) => {
    if (r.offset >= firstStart) emit('EBOOT_RAW', `/boot/uboot/raw/${i}/offset`, `${r.file} at ${r.offset} bytes is inside the first partition (it starts at ${firstStart / (1024 * 1024)} MiB): the boot ROM reads it from raw sectors before any partition`);
    if (boot.method === 'rpi-firmware-uboot') emit('EBOOT_RAW', `/boot/uboot/raw/${i}`, 'the Raspberry Pi firmware loads U-Boot from the boot partition: raw pieces are for boot ROMs that read raw sectors (boot method uboot)');
  });
  if (boot.method === 'rpi-firmware-uboot' && !boot.firmware) emit('EBOOT_FIRMWARE', '/boot/firmware', 'boot method rpi-firmware-uboot needs boot.firmware: the package, folder and files the boot ROM loads');
  if (devicetree.dtb === undefined) {
    if (devicetree.overlays.length > 0 || (emulation?.qemu.overlays ?? []).length > 0) emit('EDTB_OVERLAYS', '/devicetree/overlays', 'overlays need a base DTB: set devicetree.dtb or remove the overlays');
    if (devicetree.firmwareName) emit('EDTB_OVERLAYS', '/devicetree/firmwareName', 'firmwareName names a copy of devicetree.dtb, which is not set');
  }
  const emulatedConsole = emulation?.qemu.console ?? p.profile.console.device;
  if (emulation && !emulation.qemu.serial.includes(emulatedConsole)) {
    emit('EQEMU_SERIAL', '/emulation/qemu/serial', `console ${emulatedConsole} is not one of QEMU's serial ports (${emulation.qemu.serial.join(', ')}): list the guest device of each QEMU serial port in order`);
  }
}

function checkLeds(p: ResolvedProfile, emit: Emit): void {
  const ids = new Set<string>();
  p.profile.leds.forEach((l, i) => {
    if (ids.has(l.id)) emit('ELED_DUPLICATE', `/leds/${i}`, `LED id "${l.id}" is used twice`);
    ids.add(l.id);
  });
}

/** USB gadget Ethernet needs configfs, the gadget framework and its function's module on the card. */
function checkUsbGadget(p: ResolvedProfile, emit: Emit): void {
  const g = p.profile.usbGadget;
  if (!g) return;
  const need = ['configfs', 'libcomposite', `usb_f_${g.kind ?? 'ncm'}`];
  const missing = need.filter((m) => !p.profile.kernel.modules.includes(m));
  if (missing.length) emit('EPROFILE_GADGET_MODULES', '/usbGadget', `usbGadget needs the kernel modules ${missing.join(', ')}: add them to kernel.modules`);
}

/** Wi-Fi: the driver (and cfg80211, which every Wi-Fi driver needs) on the card; firmware files named once, under brcm/ or another directory. */
function checkWifi(p: ResolvedProfile, emit: Emit): void {
  const w = p.profile.wifi;
  if (!w) return;
  const missing = ['cfg80211', ...w.modules].filter((m) => !p.profile.kernel.modules.includes(m));
  if (missing.length) emit('EWIFI_MODULES', '/wifi/modules', `Wi-Fi needs the kernel modules ${missing.join(', ')}: add them to kernel.modules (features/wifi.config names them)`);
  // A real board's radio loads firmware; only a virtual one (mac80211_hwsim) goes without.
  if (!w.firmware && p.profile.boot.firmware) emit('EWIFI_FIRMWARE', '/wifi', `${w.chip} on a board with boot firmware needs wifi.firmware: the package and the files its driver loads`);
  w.firmware?.files.forEach((f, i) => {
    if (w.firmware!.files.indexOf(f) !== i) emit('EWIFI_FIRMWARE', `/wifi/firmware/files/${i}`, `${f} is listed twice`);
    if (f.split('/').includes('..')) emit('EWIFI_FIRMWARE', `/wifi/firmware/files/${i}`, `${f} leaves /usr/lib/firmware`);
  });
}

/** Checks across boards: detection data must point at one board. */
function checkDetection(boards: ResolvedProfile[], out: ProfileFinding[]): void {
  const compat = new Map<string, string>();
  const rev = new Map<string, string>();
  for (const b of boards) {
    b.profile.detection.compatible.forEach((c, i) => {
      const other = compat.get(c);
      if (other) {
        out.push({ code: 'EBOARD_DUP_COMPATIBLE', file: b.file, board: b.profile.id, path: `/detection/compatible/${i}`, message: `compatible "${c}" is also claimed by ${other}: detection would be ambiguous; keep it on one board` });
      } else compat.set(c, b.profile.id);
    });
    (b.profile.detection.revisions ?? []).forEach((r, i) => {
      const key = parseInt(r, 16).toString(16);
      const other = rev.get(key);
      if (other) {
        out.push({ code: 'EBOARD_DUP_REVISION', file: b.file, board: b.profile.id, path: `/detection/revisions/${i}`, message: `revision ${r} is also claimed by ${other}: keep it on one board` });
      } else rev.set(key, b.profile.id);
    });
  }
}

/** Run every rule over a loaded profile set; returns all findings (loader's first). */
export function checkProfiles(set: ProfileSet, opts: CheckOptions): ProfileFinding[] {
  const out: ProfileFinding[] = [...set.findings];
  for (const b of set.boards) {
    const emit: Emit = (code, path, message) => out.push({ code, file: b.file, board: b.profile.id, path, message });
    checkStatus(b, emit);
    checkHeader(b, emit);
    checkBuses(b, emit);
    checkConsole(b, emit);
    checkPartitions(b, emit);
    checkFiles(b, opts, emit);
    checkBoot(b, emit);
    checkLeds(b, emit);
    checkUsbGadget(b, emit);
    checkWifi(b, emit);
  }
  checkDetection(set.boards, out);
  return out;
}
