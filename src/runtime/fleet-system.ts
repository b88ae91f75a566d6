/**
 * The board as the fleet agent sees it (src/fleet/agent.ts's FleetSystem): its state read
 * from what init and the kernel keep (image.json, the card's slots, /run/nodeos, /proc), an
 * update downloaded with resume onto the users' partition and installed by the same signed
 * A/B install as `board.system.update()`, a reboot asked of init, an app restarted by init's
 * supervisor. Files are read under `root` (`/` on the board; a folder in tests).
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { BspError } from '../errors.js';
import type { BoardState, FleetSystem } from '../fleet/agent.js';
import { downloadResumable } from '../fleet/download.js';
import type { JobAction } from '../fleet/jobs.js';
import { nameProblem } from '../fleet/topics.js';
import type { ImageLayout } from '../layout/index.js';
import { readAppsState } from './app-control.js';
import { clockState, serialNumber } from './board/info.js';
import { envFiles } from './env-files.js';
import { readFullyAt } from '../fat/index.js';
import { openBundle } from '../update/bundle.js';
import { systemState } from './system-slot.js';

/** What the image says about itself (/etc/nodeos/image.json), as far as the fleet needs it. */
interface ImageFacts {
  board: { id: string };
  build: string;
  layout: ImageLayout;
}

/**
 * The board's id in its fleet: its serial number (the device tree's, or /proc/cpuinfo's, as
 * `board.info` shows it), else the MAC address of its first network card (boards and
 * emulated machines without a serial), as 12 hex digits. Undefined when neither can be read
 * or the serial is not a name a topic can hold.
 */
export function fleetBoardId(root = '/'): string | undefined {
  const read = (p: string): Buffer | undefined => {
    try {
      return readFileSync(join(root, p));
    } catch {
      return undefined;
    }
  };
  const serial = serialNumber(read);
  if (serial && !/^0+$/.test(serial)) return nameProblem('board', serial) ? undefined : serial;
  const net = join(root, 'sys/class/net');
  const names = existsSync(net) ? readdirSync(net).filter((n) => n !== 'lo').sort() : [];
  for (const n of names) {
    const mac = read(`sys/class/net/${n}/address`)?.toString('latin1').trim().toLowerCase();
    if (mac && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) && mac !== '00:00:00:00:00:00') return mac.replace(/:/g, '');
  }
  return undefined;
}

/** The build a bundle file holds (its header; the signature is the install's to check). */
function bundleBuild(file: string): string {
  const fd = openSync(file, 'r');
  try {
    return openBundle((p, n) => readFullyAt(fd, p, n), fstatSync(fd).size, file).header.build;
  } finally {
    closeSync(fd);
  }
}

export interface LinuxFleetOptions {
  root?: string;
  boardId: string;
  /** Install a downloaded bundle (runtime/update.ts's updateBoard on the board). */
  install: (file: string) => Promise<unknown>;
  /** Ask init to reboot (SIGTERM to PID 1 on the board). */
  reboot: () => void;
  restartApp: (name: string) => Promise<unknown>;
}

export class LinuxFleetSystem implements FleetSystem {
  private readonly root: string;

  constructor(private readonly o: LinuxFleetOptions) {
    this.root = o.root ?? '/';
  }

  private at(p: string): string {
    return join(this.root, p);
  }

  private image(): ImageFacts {
    return JSON.parse(readFileSync(this.at('etc/nodeos/image.json'), 'utf8')) as ImageFacts;
  }

  /** Whether init's clock keeper set the clock from a time source (/run/nodeos/clock.json). */
  clockSynced(): boolean {
    try {
      return clockState(readFileSync(this.at('run/nodeos/clock.json'))).synced;
    } catch {
      return false;
    }
  }

  async state(): Promise<Omit<BoardState, 'groups' | 'lastJob' | 'at'>> {
    const info = this.image();
    const boot = this.at('boot');
    const env = existsSync(join(boot, info.layout.env.file)) ? envFiles(boot, info.layout.env.file, info.layout.env.backup, info.layout.env.size) : undefined;
    const sys = systemState(info.build, readFileSync(this.at('proc/cmdline'), 'utf8'), env);
    const apps = readAppsState(this.at('run/nodeos/apps.json'))?.apps ?? [];
    const mem = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync(this.at('proc/meminfo'), 'utf8'));
    const home = this.at('home');
    let storageFreeMiB: number | undefined;
    if (existsSync(join(home, '.nodeos'))) {
      const s = statfsSync(home);
      storageFreeMiB = Math.floor((s.bavail * s.bsize) / 2 ** 20);
    }
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal)
      .map((a) => a!.address);
    return {
      board: this.o.boardId,
      profile: info.board.id,
      build: info.build,
      slot: sys.slot ?? '-',
      confirmed: sys.confirmed,
      apps: apps.map((a) => ({ name: a.name, state: a.state, ...(a.version ? { version: a.version } : {}), source: a.source })),
      ...(sys.lastFailedUpdate ? { lastFailedUpdate: sys.lastFailedUpdate } : {}),
      addresses,
      clockSynced: this.clockSynced(),
      uptimeSeconds: Math.round(Number(readFileSync(this.at('proc/uptime'), 'utf8').split(' ')[0])),
      bootId: readFileSync(this.at('proc/sys/kernel/random/boot_id'), 'utf8').trim(),
      memAvailableMiB: mem ? Math.floor(Number(mem[1]) / 1024) : 0,
      ...(storageFreeMiB !== undefined ? { storageFreeMiB } : {}),
    };
  }

  /** Download onto the users' partition (resuming a download a reboot or a cut cut short), check the build it holds, install it into the other slot. */
  async update(a: Extract<JobAction, { type: 'update' }>, onPercent: (percent: number) => void): Promise<void> {
    if (!existsSync(this.at('home/.nodeos'))) throw new BspError('EFLEET_NO_USERS', "updates are downloaded to the users' partition (/home), which this boot does not have");
    const dir = this.at('home/.cache/nodeos');
    mkdirSync(dir, { recursive: true });
    // One download at a time, named by what it must hash to: a new job's bundle never resumes another's.
    for (const f of readdirSync(dir)) if (f.startsWith('fleet-') && !f.startsWith(`fleet-${a.sha256}`)) rmSync(join(dir, f), { force: true });
    const file = join(dir, `fleet-${a.sha256}.nodeos-update`);
    try {
      await downloadResumable({ url: a.url, file, sha256: a.sha256, ...(a.size !== undefined ? { size: a.size } : {}), onPercent });
      // The job names the build it brings (the rollout judges the board by it): checked before anything is written.
      const build = bundleBuild(file);
      if (build !== a.version) throw new BspError('EFLEET_JOB', `the bundle at ${a.url} holds build ${build}, the job says ${a.version}: not installed`);
      await this.o.install(file);
    } finally {
      rmSync(file, { force: true });
    }
  }

  reboot(): void {
    this.o.reboot();
  }

  async restartApp(name: string): Promise<void> {
    await this.o.restartApp(name);
  }
}
