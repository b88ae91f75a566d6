/**
 * The settings an image file or a card holds (`nodeos-bsp settings show`): read from the
 * U-Boot environment on its boot partition, as the board's init will read them: uboot.env,
 * or its copy when uboot.env is unreadable.
 */
import { BspError } from '../errors.js';
import { Fat32Reader, fileReadAt } from '../fat/index.js';
import { readLayout } from '../layout/index.js';
import { decodeEnv } from '../uboot-env/index.js';
import { settingsFromEnv, type SettingsView } from './index.js';

/** The settings of a raw image or a card's device node, and which environment file they came from. */
export function readCardSettings(path: string): SettingsView & { from: string } {
  if (/\.(xz|gz|zst)$/.test(path)) throw new BspError('EUSAGE', `${path} is compressed: show the settings of the raw image (out/*.img) or of a card`);
  const read = fileReadAt(path);
  const { layout, boot } = readLayout(read, path);
  const fat = new Fat32Reader(read, boot.offset);
  try {
    let first: unknown;
    for (const file of [layout.env.file, layout.env.backup]) {
      try {
        const { vars } = decodeEnv(fat.readFile(file), { where: `${path}: ${file}` });
        return { ...settingsFromEnv(vars), from: file };
      } catch (err) {
        first ??= err;
      }
    }
    throw first;
  } finally {
    fat.close();
  }
}
