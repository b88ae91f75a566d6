/**
 * The hardware watchdog (bcm2835-wdt on a Pi: about 15 s): PID 1 pets it from its event
 * loop, so a system that hangs (kernel or init) is reset, and U-Boot counts the reset as a
 * failed try of an unconfirmed slot. Before powering off it is stopped with the magic close
 * ("V"), or it would restart the board it was asked to switch off.
 */
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';

/** A watchdog being fed. */
export interface Watchdog {
  device: string;
  /** Stop feeding and disarm it (magic close). */
  stop(): void;
}

/** The device tree's reason not to start the watchdog (`/chosen/nodeos,no-watchdog`, set only by emulation overlays). */
export function watchdogVeto(root = '/proc/device-tree'): string | undefined {
  try {
    return readFileSync(`${root}/chosen/nodeos,no-watchdog`, 'utf8').replace(/\0+$/, '') || 'the device tree says so';
  } catch {
    return undefined;
  }
}

/** Open `device` and feed it every `everyMs`; undefined when the board has none (or the device tree vetoes it). */
export function startWatchdog(log: (m: string) => void, device = '/dev/watchdog', everyMs = 5000): Watchdog | undefined {
  if (!existsSync(device)) return undefined;
  const veto = watchdogVeto();
  if (veto) {
    log(`watchdog: not started: ${veto}`);
    return undefined;
  }
  let fd: number;
  try {
    fd = openSync(device, 'w');
  } catch (err) {
    log(`watchdog: cannot open ${device}: ${(err as Error).message}`);
    return undefined;
  }
  const feed = (): void => {
    try {
      writeSync(fd, '.');
    } catch {
      // A failed feed shows as a reset, which is what a sick system should get.
    }
  };
  feed();
  const timer = setInterval(feed, everyMs);
  return {
    device,
    stop: () => {
      clearInterval(timer);
      try {
        writeSync(fd, 'V');
        closeSync(fd);
      } catch {
        // Already closed.
      }
    },
  };
}
