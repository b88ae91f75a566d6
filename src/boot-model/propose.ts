/**
 * What a board's device tree asks of the kernel, for a profile being written (`boards
 * modules`, `boards new --dtb`): the card's closure (stage 1), each function the profile
 * claims, and the module drivers of every other enabled node, so a new board starts from what
 * its tree needs rather than from a sibling's guess.
 */
import { checkLinuxCard, checkLinuxFunctions, type FunctionClaim } from './check.js';
import { isEnabled, nodeAt, walk, type FdtNode } from './fdt.js';
import { driverOf, withDependencies, type KernelTables } from './linux.js';

/** The modules a tree needs, by what needs them. */
export interface ModuleProposal {
  /** The card's closure: stage 1 must load these (undefined without a card node). */
  card?: string[];
  /** Each claimed function whose nodes are in the tree: the system loads these. */
  functions: Record<string, string[]>;
  /** Other enabled nodes a module drives (node path -> module), not already above. */
  others: { node: string; module: string }[];
  /** The union, in load order (dependencies first). */
  all: string[];
  /** What the model found wrong (a claimed node missing, a provider without a driver). */
  problems: string[];
}

/** Propose modules for `tree` from the kernel's tables. */
export function proposeModules(tree: FdtNode, tables: KernelTables, o: { card?: string; cardPlatform?: string[]; functions?: Record<string, FunctionClaim> } = {}): ModuleProposal {
  const problems: string[] = [];
  const all: string[] = [];
  const add = (mods: string[]): void => {
    for (const m of mods) for (const x of withDependencies(m, tables.dep)) if (!all.includes(x)) all.push(x);
  };
  let card: string[] | undefined;
  if (o.card) {
    const c = checkLinuxCard(tree, o.card, tables, o.cardPlatform ?? []);
    card = c.modules;
    add(card);
    problems.push(...c.findings.filter((f) => !f.ok).map((f) => f.detail));
  }
  const functions: Record<string, string[]> = {};
  for (const [name, claim] of Object.entries(o.functions ?? {})) {
    // A sibling's function this tree does not have is left out, not a problem.
    if (!claim.nodes.every((p) => nodeAt(tree, p))) continue;
    const r = checkLinuxFunctions(tree, { [name]: claim }, tables);
    functions[name] = r.modules;
    add(r.modules);
    problems.push(...r.findings.filter((f) => !f.ok).map((f) => f.detail));
  }
  const others: ModuleProposal['others'] = [];
  const builtin = new Set(tables.builtinCompatibles);
  for (const n of walk(tree)) {
    if (!n.props.has('compatible') || !isEnabled(n)) continue;
    // A node under a disabled one is never probed either.
    let off = false;
    for (let a = n.parent; a; a = a.parent) if (!isEnabled(a)) off = true;
    if (off) continue;
    const d = driverOf(n, tables, builtin);
    if (d.kind !== 'module') continue;
    for (const m of [d.module, ...(d.also ?? [])]) {
      if (all.includes(m)) continue;
      others.push({ node: n.path, module: m });
      add([m]);
    }
  }
  return { ...(card ? { card } : {}), functions, others, all, problems };
}

/** What proposeModules needs for a profile, from its kernel package and its DTB (after its overlays). */
export interface BoardTreeSource {
  tree: FdtNode;
  tables: KernelTables;
  release: string;
}
