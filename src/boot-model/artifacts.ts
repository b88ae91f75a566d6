/** The boot model's inputs found in the build's unpacked artifacts. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';
import { checkUbootModel, type UbootModel } from './check.js';
import { parseFdt } from './fdt.js';
import { drives, envRangesOnCard, parseKconfig, ubootEnvLocation } from './uboot.js';
import { ENV_SIZE } from '../layout/index.js';

/**
 * The `.config` of the profile's U-Boot build: Debian ships it beside the binaries, as
 * usr/share/doc/<package>/configs/config.<build>.gz, where <build> is the folder of
 * boot.uboot.file (rpi_arm64/u-boot.bin -> config.rpi_arm64.gz).
 */
export function ubootBuildConfig(profile: BoardProfile, ubootDir: string): Map<string, string> {
  const u = profile.boot.uboot;
  if (!u) throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} has no boot.uboot`);
  const build = u.file.split('/').slice(0, -1).join('/');
  const file = join(ubootDir, 'usr/share/doc', u.package, 'configs', `config.${build}.gz`);
  if (!existsSync(file)) throw new BspError('EARTIFACT', `${u.package} has no build configuration for ${build} (usr/share/doc/${u.package}/configs/config.${build}.gz): the boot model cannot tell where this U-Boot keeps its environment`);
  return parseKconfig(gunzipSync(readFileSync(file)).toString('utf8'));
}

/**
 * The size of the uboot.env the kit writes for this U-Boot build: the build's own
 * CONFIG_ENV_SIZE when it keeps its environment in a FAT file (one copy: a redundant one is
 * the model's finding, BM_UBOOT_ENV_FILE), else the kit's (boot.scr imports the file itself).
 * Some builds read 64 KiB: a 16 KiB file would fail their CRC check.
 */
export function kitEnvSize(profile: BoardProfile, ubootDir: string): number {
  return kitEnv(profile, ubootDir).size;
}

/** What the card carries for this U-Boot build's environment. */
export interface KitEnv {
  /** The size of the kit's uboot.env (see kitEnvSize). */
  size: number;
  /** Raw ranges of the card where U-Boot itself reads an environment (CONFIG_ENV_IS_IN_MMC): the image writes zeros there. */
  clear: { offset: number; size: number }[];
}

/** The environment facts of the profile's U-Boot build, from its configuration, read once. */
export function kitEnv(profile: BoardProfile, ubootDir: string): KitEnv {
  const loc = ubootEnvLocation(ubootBuildConfig(profile, ubootDir));
  const clear = envRangesOnCard(loc, profile.boot.uboot!.device);
  for (const r of clear) {
    if (!Number.isSafeInteger(r.offset) || r.offset < 0 || !Number.isSafeInteger(r.size) || r.size <= 0) {
      throw new BspError('EARTIFACT', `${profile.boot.uboot!.package}'s build keeps its environment on the card at CONFIG_ENV_OFFSET ${r.offset}, CONFIG_ENV_SIZE ${r.size}: the kit cannot place that range (it clears it so no old environment is read)`);
    }
  }
  return { size: loc.kind === 'fat' && Number.isSafeInteger(loc.size) && loc.size > 0 ? loc.size : ENV_SIZE, clear };
}

/**
 * The U-Boot model of a build: `ubootDir` is the unpacked U-Boot package, `dtb` the device tree
 * the firmware hands U-Boot (the kit's, overlays applied), absent when U-Boot brings its own.
 */
export function ubootModelFor(profile: BoardProfile, o: { ubootDir: string; dtb?: Buffer; envFile: string; envSize: number }): UbootModel {
  const u = profile.boot.uboot;
  if (!u) throw new BspError('EBOARD_UNSUPPORTED', `${profile.id} has no boot.uboot`);
  const config = ubootBuildConfig(profile, o.ubootDir);
  // A U-Boot that is the board's firmware numbers devices by its own tree, whose aliases may
  // number the card otherwise than the kernel's tree does.
  if (u.dtb) {
    const own = join(o.ubootDir, 'usr/lib/u-boot', u.dtb);
    if (!existsSync(own)) throw new BspError('EARTIFACT', `${u.dtb} is not in ${u.package} (boot.uboot.dtb)`);
    o = { ...o, dtb: readFileSync(own) };
  }
  const binary = readFileSync(join(o.ubootDir, 'usr/lib/u-boot', u.file));
  return checkUbootModel({
    ...(o.dtb && profile.boot.card ? { tree: parseFdt(o.dtb, u.dtb ?? profile.devicetree.dtb ?? 'the DTB'), card: profile.boot.card } : {}),
    config,
    isDriven: drives(binary),
    device: u.device,
    envFile: o.envFile,
    envSize: o.envSize,
  });
}
