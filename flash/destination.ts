/**
 * Where an image is written: a whole block device (unmounted, opened exclusively, its cache
 * dropped before reading back) or a regular file. Stages write, read and sync through this
 * interface only, so a library user (or a test) can supply a destination of its own.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { constants, type FileHandle, open } from 'node:fs/promises';
import { FlashError } from '../src/errors.js';
import { readFullyAt, type ReadAt } from '../src/fat/index.js';
import { handleReadAt } from './pieces.js';
import type { FlashTarget } from './plan.js';

/** A card (or file) being written. */
export interface Destination {
  /** The path the user gave (a /dev path or a file). */
  readonly device: string;
  write(data: Buffer, offset: number): Promise<void>;
  /** Up to `length` bytes at `offset`, fewer only at the end. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Synchronous reads, for the FAT reader that checks customisation. */
  readSync: ReadAt;
  /** Make written data durable. */
  sync(): Promise<void>;
  /** Drop what the system cached, so the next reads come from the medium. */
  dropCache(): void;
  /** Close; after a good flash a block device's partitions are re-read. */
  close(o?: { rereadPartitions?: boolean }): Promise<void>;
}

/** Create a missing target file, as bmaptool does with a file target (only with `forceFile`). */
export function createMissingFile(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, 'w'));
}

/** Unmount every mounted partition of a target's drive; EMOUNTED when one is in use. */
export function unmountTarget(t: FlashTarget): void {
  for (const m of t.drive?.mountpoints ?? []) {
    if (m === '[SWAP]') continue;
    const r = spawnSync('umount', [m], { encoding: 'utf8' });
    if (r.status !== 0) throw new FlashError('EMOUNTED', `${t.device}: cannot unmount ${m} (${r.stderr.trim()}); close what uses it and retry: nothing was written`, t.device);
  }
}

/** A destination over an open file handle (a block device or a file). */
export function handleDestination(device: string, fh: FileHandle, blockDevice: boolean): Destination {
  return {
    device,
    write: async (data, offset) => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, offset + done);
        if (bytesWritten === 0) throw new FlashError('EWRITE', `${device}: no byte written at ${offset + done}: the card or file is full`, device);
        done += bytesWritten;
      }
    },
    read: (offset, length) => handleReadAt(fh, offset, length),
    readSync: (position, length) => readFullyAt(fh.fd, position, length),
    sync: () => fh.datasync(),
    dropCache: () => {
      // The kernel's cached pages of a block device go, so read-back comes from the card.
      if (blockDevice) spawnSync('blockdev', ['--flushbufs', device]);
    },
    close: async (o) => {
      await fh.close().catch(() => undefined);
      // Let the kernel see the new partition table (best effort: loop devices without partscan refuse).
      if (blockDevice && o?.rereadPartitions) spawnSync('blockdev', ['--rereadpt', device]);
    },
  };
}

/** Open an accepted target for writing: a block device exclusively (EMOUNTED if anyone holds it). */
export async function openDestination(t: FlashTarget): Promise<Destination> {
  let fh: FileHandle;
  try {
    // O_EXCL on a block device: fails if the kernel or anyone else holds it.
    fh = await open(t.device, t.file ? constants.O_RDWR : constants.O_RDWR | constants.O_EXCL);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FlashError(code === 'EBUSY' ? 'EMOUNTED' : code === 'EROFS' || code === 'EACCES' || code === 'EPERM' ? 'EREAD_ONLY' : 'EWRITE', `${t.device}: cannot open for writing: ${(err as Error).message}`, t.device, { cause: err });
  }
  return handleDestination(t.device, fh, !t.file);
}

/** Unmount every target, then open them all; if one cannot be opened, none stays open. */
export async function openDestinations(targets: FlashTarget[]): Promise<Destination[]> {
  for (const t of targets) unmountTarget(t);
  const open: Destination[] = [];
  try {
    for (const t of targets) open.push(await openDestination(t));
  } catch (err) {
    for (const d of open) await d.close();
    throw err;
  }
  return open;
}
