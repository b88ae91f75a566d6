/**
 * The end-to-end cases every emulated board gets from its profile, with no test code of its
 * own (as Zephyr's twister derives tests from board files): the REPL is NodeOS's on arm64,
 * the system slot is read-only, and (booted from the card) the users' partition is on /home
 * and the card's environment names the board; the profile's example pin (GPIO17, else its first GPIO) is driven
 * through `board` with its global number found from the sysfs base of the controller the
 * profile names. The expressions use no double quotes, so they also go on the kernel
 * command line as nodeos.run= lines.
 */
import assert from 'node:assert/strict';
import { examplePin, loadBoards, type BoardProfile } from '../../src/index.js';
import type { Console } from './console.js';

/** One check: an expression typed at the REPL and what its answer must be. */
export interface BoardCheck {
  what: string;
  expr: string;
  answer: RegExp;
}

/** The boards with an `emulation` block, from a boards directory (default: the kit's). */
export function emulatedBoards(boardsDir?: string): BoardProfile[] {
  return loadBoards(boardsDir ? { boardsDir } : {})
    .boards.map((b) => b.profile)
    .filter((p) => p.emulation)
    .sort((a, b) => a.id.localeCompare(b.id));
}

export { typesUnderQemu } from '../../src/index.js';

const fs = "require('fs')";
const mounts = `${fs}.readFileSync('/proc/mounts','utf8')`;

/** The checks a profile implies. */
export function boardChecks(p: BoardProfile): BoardCheck[] {
  const pin = examplePin(p);
  assert.ok(pin?.line !== undefined, `${p.id}: a GPIO pin on its header`);
  const ctl = p.gpio.controllers.find((c) => c.id === pin.controller) ?? p.gpio.controllers[0]!;
  const label = ctl.label ?? ctl.id;
  const base = `+${fs}.readFileSync('/sys/class/gpio/'+${fs}.readdirSync('/sys/class/gpio').find(n=>n.startsWith('gpiochip')&&${fs}.readFileSync('/sys/class/gpio/'+n+'/label','utf8').trim()==='${label}')+'/base','utf8')`;
  const b = `board.${pin.label}`;
  return [
    // No SSH key and no display under these cases: init and this REPL are all the Node there is (issue 33).
    { what: 'at the prompt only init and this REPL run Node', expr: `${fs}.readdirSync('/proc').filter(n=>+n>0).filter(n=>{try{return ${fs}.readlinkSync('/proc/'+n+'/exe')===${fs}.readlinkSync('/proc/self/exe')}catch(e){return false}}).length`, answer: /^2$/ },
    { what: 'the profile is the board', expr: 'board.profile.id', answer: new RegExp(`^'${p.id}'$`) },
    { what: 'Node runs on arm64', expr: 'process.arch', answer: /^'arm64'$/ },
    { what: 'the system slot is mounted read-only', expr: `${mounts}.includes(' / squashfs ro,')`, answer: /^true$/ },
    ...(p.partitions.some((x) => x.name === 'users') ? [{ what: "the users' partition is on /home", expr: `${mounts}.includes(' /home ')`, answer: /^true$/ }] : []),
    { what: "the card's uboot.env names the board", expr: "board.env.get('board_name')", answer: new RegExp(`^'${p.id}'$`) },
    { what: `${pin.label} is line ${pin.line} of ${label}, whatever base the kernel gave it`, expr: `${b}.global-${base}`, answer: new RegExp(`^${pin.line}$`) },
    { what: `${pin.label} driven high`, expr: `${b}.write(1).value`, answer: /^1$/ },
    { what: `${pin.label} high in sysfs`, expr: `${fs}.readFileSync('/sys/class/gpio/gpio'+${b}.global+'/value','utf8').trim()`, answer: /^'1'$/ },
    { what: `${pin.label} driven low`, expr: `${b}.write(0).value`, answer: /^0$/ },
  ];
}

/** The checks as kernel arguments, run by the first REPL as if typed. */
export const startupArgs = (checks: BoardCheck[]): string[] => checks.map((k) => `nodeos.run="${k.expr}"`);

/** Each answer, typed at the REPL (`typed`) or read where the nodeos.run= lines printed it (`startup`). */
export async function runChecks(c: Console, checks: BoardCheck[], mode: 'typed' | 'startup', ms = 300_000): Promise<void> {
  if (mode === 'typed') {
    for (const k of checks) assert.match(await c.eval(k.expr), k.answer, k.what);
    return;
  }
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  await c.waitFor(new RegExp(`> ${esc(checks.at(-1)!.expr)}\\n[^\\n]*\\n> $`), ms, 0);
  let at = 0;
  for (const k of checks) {
    const echo = `> ${k.expr}\n`;
    const i = c.output.indexOf(echo, at);
    assert.ok(i >= 0, `${k.what}: the REPL ran ${k.expr}`);
    const answer = c.output.slice(i + echo.length).split('\n')[0]!;
    assert.match(answer, k.answer, k.what);
    at = i + echo.length;
  }
}

/** What every boot must show: init's line naming board and build, no kernel crash. */
export function assertBootLog(c: Console, p: BoardProfile, build: string): void {
  assert.match(c.output, new RegExp(`nodeos: [^\\n]*\\(${p.id}\\), Node\\.js v\\S+ arm64, build ${build}\\n`), 'init says which build runs');
  assert.doesNotMatch(c.output, /Kernel panic|Internal error|Oops/);
}
