/**
 * Writing an image to one or more cards, as a pipeline of stages that are each exported:
 * plan the refusals (planFlash), check the whole source before touching a card (checkImage),
 * open the destinations, write the mapped ranges with the first MiB last (writeImage), read
 * back and compare (verifyImage), then write and read back customisation (customizeCards).
 */
import { FlashError } from '../src/errors.js';
import { checkedReader, checkImage } from './check.js';
import { planCustomization, validateCustomization, type Customization, type CustomizationPlan } from './customize.js';
import { createMissingFile, openDestinations } from './destination.js';
import { listDrives, resolveTarget, type ScanOptions } from './drives.js';
import { planFlash, tooSmall } from './plan.js';
import type { FlashProgress } from './progress.js';
import { openSource, type Source } from './source.js';
import { cardFor, customizeCards, failCard, verifyImage, writeImage, type TargetResult } from './write.js';

/** Options of {@link flash}. */
export interface FlashOptions {
  /** Read back and compare after writing. Default true. */
  verify?: boolean;
  /** Allow a regular file as the target (created when missing). */
  forceFile?: boolean;
  /** Allow drives larger than 128 GB. */
  allowLarge?: boolean;
  /** Mapped bytes kept in memory between checking and writing. Default 512 MiB; a larger image is read twice and re-checked as it is written. */
  holdBytes?: number;
  /** A .bmap to use, or false to ignore one next to the image. */
  bmap?: string | false;
  customize?: Customization;
  scan?: ScanOptions;
  onProgress?: (p: FlashProgress) => void;
  /** Called per target once it is finished or failed. */
  onTarget?: (r: TargetResult) => void;
}

/** Outcome of a flash. */
export interface FlashResult {
  source: Source;
  imageSize: number;
  mappedBytes: number;
  targets: TargetResult[];
  ms: number;
}

/** Flash `image` to every device; refusals throw before anything is written. */
export async function flash(image: string, devices: string[], o: FlashOptions = {}): Promise<FlashResult> {
  const t0 = Date.now();
  if (devices.length === 0) throw new FlashError('ENO_DEVICE', 'no target device given: run nodeos-bsp drives, then pass --device');
  if (o.customize) validateCustomization(o.customize);
  const src = openSource(image, o.bmap === undefined ? {} : { bmap: o.bmap });
  const drives = listDrives(o.scan);
  const plan = planFlash(
    src,
    devices.map((d) => {
      if (o.forceFile) createMissingFile(d);
      return resolveTarget(d, drives);
    }),
    { ...(o.forceFile ? { forceFile: true } : {}), ...(o.allowLarge ? { allowLarge: true } : {}) },
  );
  const wantCustom = Boolean(o.customize && Object.keys(o.customize).length > 0);
  const progress = o.onProgress ? { onProgress: o.onProgress } : {};
  // A compressed image too large to hold keeps its boot partition for customisation; a raw one is read again.
  const img = await checkImage(src, { limit: plan.limit, keepBoot: wantCustom, ...(o.holdBytes === undefined ? {} : { holdBytes: o.holdBytes }), ...progress });
  for (const t of plan.targets) if (t.size < img.size) throw tooSmall(t, img.size);
  // Customisation is worked out from the checked image now: a value that cannot be written
  // (EENV_FULL, a command line too long, no uboot.env) stops here, before any card is touched.
  const custom: CustomizationPlan | undefined = wantCustom ? planCustomization(checkedReader(img), src.path, o.customize!) : undefined;
  const cards = (await openDestinations(plan.targets)).map(cardFor);
  try {
    await writeImage(img, cards, progress);
    if (o.verify !== false) await verifyImage(img, cards, progress);
    if (custom) await customizeCards(custom, cards, progress);
  } catch (err) {
    // A stage that cannot go on (the source unreadable on its second read) fails every card.
    for (const c of cards) failCard(c, err);
    throw err;
  } finally {
    for (const c of cards) {
      c.result.ok = !c.result.error;
      await c.dest.close({ rereadPartitions: c.result.ok });
      o.onTarget?.(c.result);
    }
  }
  o.onProgress?.({ phase: 'finished', done: img.mappedBytes, total: img.mappedBytes, bytesPerSecond: 0, etaSeconds: 0 });
  return { source: src, imageSize: img.size, mappedBytes: img.mappedBytes, targets: cards.map((c) => c.result), ms: Date.now() - t0 };
}
