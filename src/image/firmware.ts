/**
 * Firmware the board's drivers load at run time, put in the system slot under
 * /usr/lib/firmware: the Wi-Fi radio's files the profile lists (from the pinned
 * firmware package) and the regulatory database cfg80211 reads for the country setting
 * (wireless-regdb, signed: the kernel checks regulatory.db.p7s against the keys built into it).
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import type { Artifacts } from '../artifacts/index.js';
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';

/** Where a Debian package puts firmware (usrmerged or not). */
const FIRMWARE_DIRS = ['usr/lib/firmware', 'lib/firmware'];

/** Debian's regulatory database and its signature, named as update-alternatives would name them on Debian. */
const REGDB_FILES: [string, string][] = [
  ['regulatory.db-debian', 'regulatory.db'],
  ['regulatory.db.p7s-debian', 'regulatory.db.p7s'],
];

/**
 * One firmware file of an unpacked package: symbolic links followed (linux-firmware names most
 * boards' NVRAM files as links to another board's), never out of the package.
 */
export function firmwareFile(pkgRoot: string, pkg: string, file: string): Buffer {
  for (const dir of FIRMWARE_DIRS) {
    const path = join(pkgRoot, dir, file);
    if (!existsSync(path)) continue;
    const real = realpathSync(path);
    const inside = relative(realpathSync(pkgRoot), real);
    if (inside.startsWith('..') || inside.startsWith(sep)) throw new BspError('EWIFI_FIRMWARE', `${file} in ${pkg} links out of the package (${real})`);
    return readFileSync(real);
  }
  const base = FIRMWARE_DIRS.map((d) => join(pkgRoot, d, dirname(file))).find(existsSync);
  const stem = file.split('/').pop()!.split('.')[0]!;
  const near = base ? readdirSync(base).filter((n) => n.startsWith(stem)).sort() : [];
  throw new BspError(
    'EWIFI_FIRMWARE',
    `${file} is not in ${pkg}${near.length ? ` (it has ${near.slice(0, 8).join(', ')}${near.length > 8 ? ', …' : ''})` : ''}: correct wifi.firmware.files in the board profile, or name the package that has it in wifi.firmware.package`,
  );
}

/** The system slot's firmware files (paths without the leading /), for a board with Wi-Fi; none for one without. */
export function firmwareEntries(profile: BoardProfile, a: Artifacts): { path: string; data: Buffer }[] {
  const w = profile.wifi;
  if (!w) return [];
  const pkg = a.debs.wifiFirmware;
  const regdb = a.debs.regdb;
  const fw = w.firmware;
  if ((fw && !pkg) || !regdb) throw new BspError('EARTIFACT', `Wi-Fi needs ${fw ? `${fw.package} and ` : ''}wireless-regdb (boards with wifi fetch them)`);
  return [
    ...(fw ? fw.files.map((f) => ({ path: `usr/lib/firmware/${f}`, data: firmwareFile(pkg!, fw.package, f) })) : []),
    ...REGDB_FILES.map(([from, to]) => ({ path: `usr/lib/firmware/${to}`, data: firmwareFile(regdb, 'wireless-regdb', from) })),
  ];
}
