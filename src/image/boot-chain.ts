/**
 * The steps a real board takes to boot a card, and what the card must provide for each,
 * checked on an image. QEMU skips the first steps (it loads U-Boot itself), so these rules
 * are the proof for them; docs/boot-chain.md says where each comes from.
 *
 *   ROM (Pi 0-3; the Pi 4's EEPROM)  -> first FAT partition of the MBR, bootcode.bin by 8.3 name
 *   ROM reading raw sectors          -> the loader there (boot.uboot.raw), its signature
 *   bootcode.bin / EEPROM            -> start*.elf + fixup*.dat by 8.3 name
 *   start*.elf                       -> config.txt; the DTB named after the board; kernel= (U-Boot)
 *   U-Boot                           -> uboot.env on mmc 0:1 (or boot.scr), bootcmd runs boot.scr,
 *                                       which loads slot A's kernel and initramfs
 *   Linux                            -> the boot partition by nodeos.boot=PARTUUID
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { BoardProfile } from '../boards/index.js';
import { decodeEnv } from '../uboot-env/index.js';
import { Fat32Reader } from '../fat/index.js';
import { BOOT_FILES, mbrPartUuid } from '../layout/index.js';

/** One rule of the boot chain and whether the image keeps it. */
export interface BootRule {
  /** Stable id, e.g. `BC_FIRMWARE_83`. */
  id: string;
  /** The boot step the rule belongs to. */
  step: 'rom' | 'firmware' | 'config' | 'u-boot' | 'linux';
  ok: boolean;
  detail: string;
}

/** The environment size of cards whose layout.json says none (written before it did). */
export const UBOOT_ENV_SIZE = 0x4000;
const FAT_TYPES = new Set([0x0b, 0x0c]);

function readHead(image: string, length: number, at = 0): Buffer {
  const fd = openSync(image, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, at);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The environment size layout.json names, if it names one. */
function layoutEnvSize(fat: Fat32Reader): number | undefined {
  if (!fat.stat('layout.json')) return undefined;
  try {
    const size = (JSON.parse(fat.readFile('layout.json').toString('utf8')) as { env?: { size?: unknown } }).env?.size;
    return typeof size === 'number' ? size : undefined;
  } catch {
    return undefined;
  }
}

/** config.txt's settings (last one wins, as the firmware reads it; [filters] ignored: the kit writes none). */
export function parseConfigTxt(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return out;
}

/**
 * Check every rule of `profile`'s boot chain on `image`. `envSize`: the size the board's U-Boot
 * reads (its build's CONFIG_ENV_SIZE, the build passes it); else the one the card's layout.json
 * names.
 */
export function checkBootChain(image: string, profile: BoardProfile, o: { envSize?: number } = {}): BootRule[] {
  const rules: BootRule[] = [];
  const rule = (id: string, step: BootRule['step'], ok: boolean, detail: string): boolean => {
    rules.push({ id, step, ok, detail });
    return ok;
  };
  const mbr = readHead(image, 512);
  const entries = [0, 1, 2, 3].map((i) => ({ slot: i, type: mbr[446 + 16 * i + 4]!, start: mbr.readUInt32LE(446 + 16 * i + 8) }));
  const first = entries.find((e) => e.type !== 0);
  const mbrOk = mbr[510] === 0x55 && mbr[511] === 0xaa && first !== undefined && first.slot === 0 && FAT_TYPES.has(first.type);
  rule('BC_MBR', 'rom', mbrOk, mbrOk ? `MBR; partition 1 is FAT32 (type 0x${first!.type.toString(16)})` : 'the first partition of the MBR must be FAT32 (type 0x0c): the boot ROM and the EEPROM read the first FAT partition');
  if (!mbrOk) return rules;
  // Boot ROMs that read a loader from raw sectors (boot.uboot.raw) look for its signature there.
  const firstStart = Math.min(...entries.filter((e) => e.type !== 0).map((e) => e.start)) * 512;
  for (const r of profile.boot.uboot?.raw ?? []) {
    if (r.signature) {
      const want = Buffer.from(r.signature.hex, 'hex');
      const got = readHead(image, want.length, r.offset + r.signature.at);
      rule('BC_RAW', 'rom', got.equals(want) && r.offset < firstStart, `${r.file} at ${r.offset}: ${got.toString('hex')} at byte ${r.signature.at}${got.equals(want) ? '' : ` (the boot ROM looks for ${r.signature.hex})`}${r.offset < firstStart ? '' : '; it is inside a partition'}`);
    } else {
      const got = readHead(image, 512, r.offset);
      rule('BC_RAW', 'rom', got.some((b) => b !== 0) && r.offset < firstStart, `${r.file} at ${r.offset}: ${got.some((b) => b !== 0) ? 'written' : 'only zeros there'}${r.offset < firstStart ? '' : '; it is inside a partition'}`);
    }
  }
  const bootOffset = first!.start * 512;
  let fat: Fat32Reader;
  try {
    fat = new Fat32Reader(image, bootOffset);
  } catch (err) {
    rule('BC_FAT32', 'rom', false, (err as Error).message);
    return rules;
  }
  try {
    rule('BC_FAT32', 'rom', true, 'FAT32 with 512-byte sectors');
    const root = new Map(fat.list().map((e) => [e.name.toLowerCase(), e]));
    const has = (name: string): boolean => root.has(name.toLowerCase());
    const fw = profile.boot.firmware;

    if (fw) {
      // The boot ROM (bootcode.bin) matches 8.3 names only; start*.elf and fixup*.dat are
      // looked up the same way. The short entry must be the name itself, not a ~1 alias.
      for (const name of fw.files) {
        const e = root.get(name.toLowerCase());
        const short = name.toUpperCase();
        rule('BC_FIRMWARE_83', 'firmware', e?.shortName === short, e ? `${name}: short entry ${e.shortName}${e.shortName === short ? '' : ` (the firmware looks for ${short})`}` : `${name} is missing from the root directory`);
      }
      const configEntry = root.get('config.txt');
      if (!rule('BC_CONFIG_TXT', 'config', configEntry?.shortName === 'CONFIG.TXT', configEntry ? `config.txt: short entry ${configEntry.shortName}` : 'config.txt is missing from the root directory')) return rules;
      const config = parseConfigTxt(fat.readFile('config.txt').toString('utf8'));
      if (profile.arch.node === 'arm64') rule('BC_ARM64', 'config', config.get('arm_64bit') === '1', `arm_64bit=${config.get('arm_64bit') ?? '(unset)'}: the firmware starts a 64-bit kernel only with arm_64bit=1`);
      const kernel = config.get('kernel');
      rule('BC_KERNEL', 'config', kernel !== undefined && has(kernel), kernel ? `kernel=${kernel}${has(kernel) ? '' : ' is not on the boot partition'}` : 'config.txt has no kernel= (the firmware would look for kernel8.img)');
      if (profile.console.device === 'ttyS1') rule('BC_UART', 'config', config.get('enable_uart') === '1', `enable_uart=${config.get('enable_uart') ?? '(unset)'}: the mini UART console needs it (it fixes the core clock)`);
      const dtb = config.get('device_tree') ?? profile.devicetree.firmwareName;
      if (dtb !== undefined) rule('BC_DTB', 'config', has(dtb), `${dtb} (the device tree the firmware loads for this board)${has(dtb) ? '' : ' is missing'}`);
    }

    if (profile.boot.uboot) {
      const envEntry = root.get('uboot.env');
      const envSize = o.envSize ?? layoutEnvSize(fat) ?? UBOOT_ENV_SIZE;
      if (!rule('BC_ENV', 'u-boot', envEntry !== undefined && envEntry.size === envSize, envEntry ? `uboot.env: ${envEntry.size} bytes (U-Boot reads ${envSize})` : 'uboot.env is missing: U-Boot would boot its default environment')) return rules;
      let vars: Map<string, string>;
      try {
        vars = decodeEnv(fat.readFile('uboot.env'), { where: 'uboot.env' }).vars;
        rule('BC_ENV_CRC', 'u-boot', true, 'uboot.env: CRC good');
      } catch (err) {
        rule('BC_ENV_CRC', 'u-boot', false, (err as Error).message);
        return rules;
      }
      const device = profile.boot.uboot.device;
      const part = Number(/:(\d+)$/.exec(device)?.[1]);
      rule('BC_DEVICE', 'u-boot', part === first!.slot + 1, `U-Boot reads ${device}: partition ${part}, the boot partition is ${first!.slot + 1}`);
      const bootcmd = vars.get('bootcmd') ?? '';
      const scr = root.get('boot.scr');
      const scrData = scr ? fat.readFile('boot.scr') : undefined;
      const scrOk = scrData !== undefined && scrData.length > 72 && scrData.readUInt32BE(0) === 0x27051956;
      rule('BC_SCRIPT', 'u-boot', scrOk, scrOk ? 'boot.scr: a U-Boot script image (it picks the system slot)' : 'boot.scr is missing or not a U-Boot script image');
      // What bootcmd and boot.scr load (legacy script image: 64-byte header, then the length table).
      const script = scrOk ? scrData.subarray(72).toString('utf8') : '';
      const loadRe = /(?:fatload|load)\s+(\S+\s+\S+)\s+\S+\s+([^\s;&]+)/g;
      // Slot B is empty on a fresh card: its files come with the first update.
      const loads = [...bootcmd.matchAll(loadRe), ...script.matchAll(loadRe)].filter((m) => !m[2]!.toLowerCase().startsWith('slot-b/'));
      const missing = loads.filter((m) => !fat.stat(m[2]!)).map((m) => m[2]!);
      const wrongDevice = loads.filter((m) => m[1] !== device).map((m) => m[1]!);
      rule('BC_LOADS', 'u-boot', loads.length > 0 && missing.length === 0 && wrongDevice.length === 0, loads.length === 0 ? 'bootcmd loads nothing' : missing.length ? `bootcmd and boot.scr load ${missing.join(', ')}, which the boot partition lacks` : wrongDevice.length ? `bootcmd or boot.scr loads from ${wrongDevice.join(', ')}, not ${device}` : `bootcmd and boot.scr load ${[...new Set(loads.map((m) => m[2]))].join(', ')} from ${device}`);
      // Which tree Linux gets: the kit's DTB (with its overlays) wherever the profile names one.
      if (scrOk && profile.devicetree.dtb !== undefined) {
        const handed = [...script.matchAll(/booti\s+\S+\s+\S+\s+(\S+)/g)].map((m) => m[1]!);
        if (profile.boot.method === 'uboot') {
          const loadsDtb = new RegExp(`fatload ${device.replace(/ /g, '\\s+')}\\s+\\$\\{fdt_addr_r\\}\\s+${BOOT_FILES.dtb.replace('.', '\\.')}\\b`).test(script);
          const ok = handed.length > 0 && handed.every((h) => h === '${fdt_addr_r}') && loadsDtb && has(BOOT_FILES.dtb) && /^0x[0-9a-f]+$/i.test(vars.get('fdt_addr_r') ?? '');
          rule('BC_DTB_LINUX', 'linux', ok, ok ? `boot.scr loads ${BOOT_FILES.dtb} to \${fdt_addr_r} (${vars.get('fdt_addr_r')}) and hands it to Linux` : `Linux would get ${[...new Set(handed)].join(', ') || 'no tree'}${loadsDtb ? '' : `; boot.scr does not load ${BOOT_FILES.dtb} to \${fdt_addr_r}`}${vars.get('fdt_addr_r') ? '' : '; uboot.env has no fdt_addr_r'}: this board's U-Boot is its firmware, and its own tree would ignore the kit's`);
        } else {
          const ok = handed.length > 0 && handed.every((h) => h === '${fdtcontroladdr}');
          rule('BC_DTB_LINUX', 'linux', ok, ok ? 'Linux gets the tree the firmware loaded and handed U-Boot (BC_DTB)' : `Linux would get ${[...new Set(handed)].join(', ') || 'no tree'}, not the one the firmware loaded`);
        }
      }
      const args = vars.get('bootargs') ?? '';
      const want = mbrPartUuid(mbr.readUInt32LE(440), first!.slot + 1);
      const named = /(?:^|\s)nodeos\.boot=PARTUUID=(\S+)/.exec(args)?.[1];
      rule('BC_BOOT_PARTUUID', 'linux', named === want, `bootargs name the boot partition ${named ? `PARTUUID=${named}` : '(not at all)'}; the card's is ${want}`);
      // The last console= is /dev/console (init's output, the first REPL): the board's serial
      // console; another may only be the screen's.
      const consoles = [...args.matchAll(/(?:^|\s)console=(\S+)/g)].map((m) => m[1]!.split(',')[0]!);
      const last = consoles.at(-1);
      const stray = consoles.slice(0, -1).find((c) => c !== profile.console.device && c !== profile.screen?.console);
      rule('BC_CONSOLE', 'linux', last === profile.console.device && !stray, stray ? `console=${stray} is neither the board's console (${profile.console.device}) nor its screen's${profile.screen ? ` (${profile.screen.console})` : ''}` : `the last console= is ${last ?? '(unset)'}; the board's console is ${profile.console.device}`);
    }
  } finally {
    fat.close();
  }
  return rules;
}
