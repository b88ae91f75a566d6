/**
 * The whole boot model of one board from prepared inputs: U-Boot's half (its build
 * configuration, its binary, the DTB the firmware hands it), the card and the claimed
 * functions under Linux, and each revision's tree (the Pi 5's D0) checked as the board's is.
 * The build runs it before anything is written; `boards check --model` runs it from the
 * pinned packages alone.
 */
import type { BoardProfile } from '../boards/index.js';
import { BspError } from '../errors.js';
import { ubootModelFor } from './artifacts.js';
import { checkLinuxCard, checkLinuxFunctions, type ModelFinding, type UbootModel } from './check.js';
import { parseFdt } from './fdt.js';
import type { KernelTables } from './linux.js';

export interface BoardModelInput {
  /** The unpacked U-Boot package. */
  ubootDir: string;
  /** The board's DTB as it goes on the card (overlays applied). */
  dtb?: Buffer;
  envFile: string;
  envSize: number;
  /** The kernel's driver tables, read only when the profile claims a card or functions. */
  tables: () => KernelTables;
  /** Revisions the firmware gives another tree: their trees, as they go to Linux. */
  variants?: { id: string; dtb: string; tree: Buffer }[];
}

export interface BoardModel {
  uboot: UbootModel;
  /** Every rule, kept or not, variants' prefixed with the revision. */
  findings: ModelFinding[];
  /** Modules the card needs (stage 1 loads them), over the board's tree and every revision's. */
  card?: string[];
  /** Modules the claimed functions need (the system loads them). */
  functions: string[];
}

const union = (a: string[], more: string[][]): string[] => [...new Set([...a, ...more.flat()])];

/** Run every rule of the model for `profile`. */
export function boardModel(profile: BoardProfile, i: BoardModelInput): BoardModel {
  const uboot = ubootModelFor(profile, { ubootDir: i.ubootDir, ...(i.dtb ? { dtb: i.dtb } : {}), envFile: i.envFile, envSize: i.envSize });
  const tree = i.dtb ? parseFdt(i.dtb, profile.devicetree.dtb) : undefined;
  const tables = tree && (profile.boot.card || profile.functions) ? i.tables() : undefined;
  const linuxCard = tree && tables && profile.boot.card ? checkLinuxCard(tree, profile.boot.card, tables, profile.boot.cardPlatform ?? []) : undefined;
  const linuxFunctions = tree && tables && profile.functions ? checkLinuxFunctions(tree, profile.functions, tables) : undefined;
  // Each revision's tree is checked as the board's is: its card and functions may need other drivers.
  const variants = (i.variants ?? []).map((v) => {
    const t = parseFdt(v.tree, v.dtb);
    const card = tables && profile.boot.card ? checkLinuxCard(t, profile.boot.card, tables, profile.boot.cardPlatform ?? []) : undefined;
    const functions = tables && profile.functions ? checkLinuxFunctions(t, profile.functions, tables) : undefined;
    const findings = [...(card?.findings ?? []), ...(functions?.findings ?? [])].map((f) => ({ ...f, detail: `${v.id} (${v.dtb}): ${f.detail}` }));
    return { findings, card: card?.modules ?? [], functions: functions?.modules ?? [] };
  });
  return {
    uboot,
    findings: [...uboot.findings, ...(linuxCard?.findings ?? []), ...(linuxFunctions?.findings ?? []), ...variants.flatMap((v) => v.findings)],
    ...(linuxCard ? { card: union(linuxCard.modules, variants.map((v) => v.card)) } : {}),
    functions: union(linuxFunctions?.modules ?? [], variants.map((v) => v.functions)),
  };
}

/** The refusal for a model with broken rules (EBOOT_MODEL), or undefined when every rule holds. */
export function modelRefusal(profile: BoardProfile, m: Pick<BoardModel, 'findings'>): BspError | undefined {
  const broken = m.findings.filter((f) => !f.ok);
  if (!broken.length) return undefined;
  return new BspError('EBOOT_MODEL', `the card for ${profile.id} would not boot on a real ${profile.name}: ${broken.map((f) => `${f.id}: ${f.detail}${f.fix ? ` (fix: ${f.fix})` : ''}`).join('; ')}`);
}
