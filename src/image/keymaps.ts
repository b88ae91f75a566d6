/**
 * The screen's keyboard layouts as console keymaps the board loads with busybox `loadkmap`:
 * XKB's layouts (Debian's xkb-data, pinned) turned into kernel keymaps by console-setup's
 * `ckbcomp` (pinned; a Perl script run on this machine, as Debian's setupcon runs it), then
 * into busybox's binary format by kbd's `loadkeys -u -b` (this machine's; .ci/setup installs
 * kbd). Unicode keysyms (-u): the console runs in UTF-8. Cached by the inputs' hashes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Artifacts, Cache } from '../artifacts/index.js';
import { BspError } from '../errors.js';
import { KEYBOARD_LAYOUTS, type KeyboardLayout } from '../settings/env.js';

/** Every layout's binary keymap (busybox's "bkeymap" format). */
export function keymaps(a: Artifacts, cache: Cache): { layout: KeyboardLayout; data: Buffer }[] {
  const xkb = a.debs.xkbData;
  const cs = a.debs.consoleSetup;
  if (!xkb || !cs) throw new BspError('EARTIFACT', 'the keyboard layouts need xkb-data and console-setup (boards with a screen fetch them)');
  const version = spawnSync('loadkeys', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) throw new BspError('ETOOL', 'loadkeys is missing: apt-get install kbd (it writes the keyboard layouts for the screen console)');
  const inputs = [a.lock.debian.xkbData!.sha256, a.lock.debian.consoleSetup!.sha256, (version.stdout + version.stderr).trim()];
  return (Object.keys(KEYBOARD_LAYOUTS) as KeyboardLayout[]).map((layout) => {
    const key = createHash('sha256').update(JSON.stringify([...inputs, KEYBOARD_LAYOUTS[layout]])).digest('hex').slice(0, 24);
    const data = cache.derivedFile(`keymap-${layout}-${key}.bmap`, () => {
      // The pinned XKB data first (-I puts it before the default directories).
      const ck = spawnSync('perl', [join(cs, 'usr/bin/ckbcomp'), `-I${join(xkb, 'usr/share/X11/xkb')}`, '-compact', KEYBOARD_LAYOUTS[layout]], { maxBuffer: 16 << 20 });
      if (ck.error || ck.status !== 0 || !ck.stdout.length) throw new BspError('ETOOL', `ckbcomp ${KEYBOARD_LAYOUTS[layout]} failed: ${ck.error?.message ?? ck.stderr.toString().trim().split('\n').slice(-2).join(' ')}`);
      const lk = spawnSync('loadkeys', ['-u', '-b', '-'], { input: ck.stdout, maxBuffer: 16 << 20 });
      if (lk.error || lk.status !== 0) throw new BspError('ETOOL', `loadkeys -b (layout ${layout}) failed: ${lk.error?.message ?? lk.stderr.toString().trim()}`);
      if (lk.stdout.toString('latin1', 0, 7) !== 'bkeymap') throw new BspError('ETOOL', `loadkeys -b (layout ${layout}) did not write a binary keymap`);
      return lk.stdout;
    });
    return { layout, data };
  });
}
