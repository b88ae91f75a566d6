/**
 * boot.scr: the U-Boot half of the A/B protocol (slots.ts), generated from the layout. It is
 * the same script on every board: the Raspberry Pi's U-Boot runs it from uboot.env's bootcmd;
 * a U-Boot that keeps its environment elsewhere (QEMU virt), or a Pi whose uboot.env is
 * unreadable (U-Boot then starts from its default environment, whose distro boot finds this
 * script on the bootable partition), runs it directly and it imports uboot.env, else the
 * backup copy uboot.bak, else boots with defaults written into it at build time.
 *
 * Hush has no indirect variables, so each slot's steps are written out; `test -gt` compares
 * decimal numbers and setexpr writes hex, which agree for the single digits bootlimit allows.
 */
import { BspError } from '../errors.js';
import { SLOTS, type ImageLayout, type Slot } from './layout.js';
import { SLOT_ENV } from './slots.js';

/**
 * Variables the fallback defaults leave out: not needed to boot, and boot.scr is a file any PC
 * reads for the card's whole life: the SSH keys (they may hold quotes or newlines) and the
 * Wi-Fi networks (their PSKs), which init moves off the card at the first boot.
 */
const NOT_DEFAULTS = new Set(['nodeos_ssh_keys', 'nodeos_wifi']);

/**
 * The script text. `defaults` is the environment the build wrote (addresses, bootargs, the
 * slot variables): used only when neither uboot.env nor uboot.bak can be read; it must set
 * `scriptaddr`, a free 2 MiB of RAM (the script, then the environment buffer 1 MiB above).
 */
export function bootScript(layout: ImageLayout, defaults: [string, string][]): string {
  const d = new Map(defaults);
  const scriptaddr = d.get('scriptaddr');
  if (!scriptaddr || !/^0x[0-9a-fA-F]+$/.test(scriptaddr)) throw new BspError('EPROFILE_INVALID', `${layout.board}: boot.uboot.env needs scriptaddr (hex), a free 2 MiB of RAM for boot.scr and the environment`);
  const envAddr = `0x${(parseInt(scriptaddr, 16) + 0x100000).toString(16)}`;
  const dev = layout.boot.ubootDevice;
  if (layout.boot.loadDtb && !/^0x[0-9a-fA-F]+$/.test(d.get('fdt_addr_r') ?? '')) throw new BspError('EPROFILE_INVALID', `${layout.board}: boot.uboot.env needs fdt_addr_r (hex), where boot.scr loads ${layout.boot.dtb} for Linux (this board's U-Boot is its firmware: its own tree would ignore the kit's)`);
  // The tree Linux gets: the kit's, loaded here, or the one the firmware handed U-Boot.
  const [loadFdt, fdt] = layout.boot.loadDtb ? [`fatload ${dev} \${fdt_addr_r} ${layout.boot.dtb} && `, '${fdt_addr_r}'] : ['', '${fdtcontroladdr}'];
  const size = `0x${layout.env.size.toString(16)}`;
  const { order, build, ok, left } = SLOT_ENV;
  const save = [`env export -c -s ${size} ${envAddr}`, `fatwrite ${dev} ${envAddr} ${layout.env.file} ${size}`];
  const fallback = defaults
    .filter(([k, v]) => !NOT_DEFAULTS.has(k) && !v.includes("'") && !v.includes('\n'))
    .map(([k, v]) => `    setenv ${k} '${v}'`);
  const tryOne = (s: Slot): string[] => [
    `  if test -z "\${nodeos_slot}" && test -n "\${${build(s)}}"; then`,
    `    if test "\${${ok(s)}}" = 1; then`,
    `      setenv nodeos_slot ${s}`,
    `    elif test "\${${left(s)}}" -gt 0; then`,
    `      setexpr ${left(s)} \${${left(s)}} - 1`,
    `      setenv nodeos_slot ${s}`,
    '      setenv nodeos_save 1',
    '    fi',
    '  fi',
  ];
  const choose = [
    'if test "${nodeos_order}" = "B A"; then',
    ...tryOne('B'),
    ...tryOne('A'),
    'else',
    ...tryOne('A'),
    ...tryOne('B'),
    'fi',
  ];
  // The slot goes to the kernel only: the saved bootargs stay as they were. setexpr edits the
  // variable in place: a command word holding "${bootargs}" would be parsed again by U-Boot's
  // hush, which drops quotes from it (nodeos.run="...('x')..." would reach Linux without them).
  const bootSlot = (s: Slot): string[] => {
    const f = layout.boot.slots[s];
    return [
      `  setexpr bootargs sub "^.*$" "\\0 nodeos.slot=${s}"`,
      `  ${loadFdt}fatload ${dev} \${kernel_addr_r} ${f.kernel} && fatload ${dev} \${ramdisk_addr_r} ${f.initramfs} && booti \${kernel_addr_r} \${ramdisk_addr_r}:\${filesize} ${fdt}`,
      `  setexpr bootargs sub " nodeos.slot=${s}$" ""`,
      `  setenv ${ok(s)} 0`,
      `  setenv ${left(s)} 0`,
    ];
  };
  return [
    `# nodeos-bsp boot script for ${layout.board} (${layout.format}): picks system slot A or B.`,
    `# ${order}: slots, preferred first. A slot boots if ${ok('A').replace('A', '<S>')}=1 (confirmed by its`,
    `# init), or while ${left('A').replace('A', '<S>')} > 0, counted down and saved before the try.`,
    'setenv nodeos_slot',
    'setenv nodeos_save',
    `if test -z "\${${order}}"; then`,
    `  if fatload ${dev} ${envAddr} ${layout.env.file} && env import -c ${envAddr} \${filesize}; then`,
    `    echo "nodeos: environment from ${layout.env.file}"`,
    `  elif fatload ${dev} ${envAddr} ${layout.env.backup} && env import -c ${envAddr} \${filesize}; then`,
    `    echo "nodeos: ${layout.env.file} is unreadable: using its copy ${layout.env.backup}"`,
    '    setenv nodeos_save 1',
    '  else',
    `    echo "nodeos: no readable environment: booting with the defaults of the build"`,
    ...fallback,
    '  fi',
    'fi',
    // An imported environment holds the nodeos_slot of the boot that saved it: choose afresh.
    'setenv nodeos_slot',
    ...choose,
    'if test -z "${nodeos_slot}"; then',
    `  echo "nodeos: no slot has tries left: giving each ${layout.bootlimit} again"`,
    ...SLOTS.map((s) => `  if test -n "\${${build(s)}}"; then setenv ${left(s)} ${layout.bootlimit}; fi`),
    '  setenv nodeos_save 1',
    ...choose.map((l) => `  ${l}`),
    'fi',
    'if test -z "${nodeos_slot}"; then setenv nodeos_slot A; fi',
    'if test "${nodeos_save}" = 1; then',
    '  setenv nodeos_save',
    ...save.map((l) => `  ${l}`),
    'fi',
    'echo "nodeos: booting slot ${nodeos_slot}"',
    'if test "${nodeos_slot}" = B; then',
    ...bootSlot('B'),
    'else',
    ...bootSlot('A'),
    'fi',
    'echo "nodeos: slot ${nodeos_slot} did not start: no more tries for it"',
    ...save,
    'reset',
    '',
  ].join('\n');
}
