/**
 * The boot model's findings for one board: each a rule, whether the build keeps it, and when
 * not, the node, the property and the fix. The U-Boot part proves that U-Boot finds the card
 * it was started from: the number its build gives the card's controller (aliases, else tree
 * order of the controllers it drives), where that build reads and saves its environment, and
 * that the kit's bootcmd, boot.scr and boot counting (saveenv of uboot.env) use that device.
 */
import { nodeAt, type FdtNode } from './fdt.js';
import { functionNeeds, type FunctionNeeds, type KernelTables } from './linux.js';
import { envRangesOnCard, ubootEnvLocation, ubootMmcNumbers, type UbootEnvLocation, type UbootMmc } from './uboot.js';

/** One rule of the model. */
export interface ModelFinding {
  /** Stable id, e.g. `BM_UBOOT_CARD`. */
  id: string;
  ok: boolean;
  detail: string;
  /** The device-tree node or build setting the finding is about. */
  node?: string;
  property?: string;
  /** What to change when it fails. */
  fix?: string;
}

/** The U-Boot half's inputs, all from the build's artifacts and the profile. */
export interface UbootModelInput {
  /** The DTB U-Boot runs with (the firmware hands it the kit's; overlays applied); absent when U-Boot brings its own. */
  tree?: FdtNode;
  /** The U-Boot build's `.config`. */
  config: ReadonlyMap<string, string>;
  /** Whether the U-Boot binary has a driver for a compatible string. */
  isDriven: (compatible: string) => boolean;
  /** Device-tree path of the card's controller (profile boot.card); absent when the card is not on MMC (virtio). */
  card?: string;
  /** The kit's `mmc N:P` (profile boot.uboot.device). */
  device: string;
  /** The kit's environment file and size on the boot partition (the layout's). */
  envFile: string;
  envSize: number;
}

/** The U-Boot facts the model computed, and its findings. */
export interface UbootModel {
  mmc: UbootMmc[];
  /** The card's `mmc` number under this U-Boot, when it drives the card's controller. */
  cardNumber?: number;
  env: UbootEnvLocation;
  findings: ModelFinding[];
}

/** Check how a U-Boot build finds the card; every rule is reported, kept or not. */
export function checkUbootModel(i: UbootModelInput): UbootModel {
  const findings: ModelFinding[] = [];
  const add = (f: ModelFinding): boolean => (findings.push(f), f.ok);
  const aliasSeq = i.config.get('DM_SEQ_ALIAS') === 'y' && i.config.get('OF_CONTROL') === 'y';
  const mmc = i.tree ? ubootMmcNumbers(i.tree, i.isDriven, aliasSeq) : [];
  const env = ubootEnvLocation(i.config);
  const dev = /^(\w+) (\d+):(\d+)$/.exec(i.device);
  const order = mmc.map((m) => `${m.path}: ${m.number}${m.by === 'alias' ? ' (alias)' : ''}`).join(', ') || 'none';
  const model: UbootModel = { mmc, env, findings };
  if (!i.tree || !i.card) {
    // No tree of ours or no MMC card (QEMU virt: virtio, U-Boot's own DTB): only the environment's home is checked.
    if (env.kind === 'fat') add({ id: 'BM_UBOOT_ENV_DEVICE', ok: false, property: 'boot.card', detail: `U-Boot keeps its environment on ${env.interface} ${env.device}, but the profile names no card controller to check it against`, fix: 'set boot.card and devicetree.dtb' });
    else add({ id: 'BM_UBOOT_ENV_DEVICE', ok: true, property: 'CONFIG_ENV_IS_IN_*', detail: elsewhere(env, i) });
    return model;
  }
  const cardNode = nodeAt(i.tree, i.card);
  const card = mmc.find((m) => m.path === i.card);
  if (card) model.cardNumber = card.number;
  if (
    !add({
      id: 'BM_UBOOT_CARD',
      ok: card !== undefined,
      node: i.card,
      detail: card
        ? `U-Boot drives the card's controller ${i.card} (${card.compatible}) as mmc ${card.number}${card.by === 'alias' ? ' by its alias' : ' in tree order'}; its MMC devices: ${order}`
        : !cardNode
          ? `the device tree has no node ${i.card}`
          : `U-Boot does not bind ${i.card} (${cardNode.props.has('status') ? 'status ' + JSON.stringify(cardNode.props.get('status')!.toString('latin1').replace(/\0$/, '')) : 'no driver for its compatible'}); its MMC devices: ${order}`,
      fix: 'set boot.card to the path of the controller the card sits on, enabled, with a compatible this U-Boot drives',
    })
  ) {
    return model;
  }
  const number = card!.number;
  add({
    id: 'BM_UBOOT_DEVICE',
    ok: dev !== null && dev[1] === 'mmc' && Number(dev[2]) === number,
    node: i.card,
    property: 'boot.uboot.device',
    detail: `bootcmd and boot.scr load from ${i.device}; the card is mmc ${number} (${order})`,
    fix: number === 0 ? `set boot.uboot.device to "mmc 0:${dev?.[3] ?? 1}"` : `make the card mmc 0 with an overlay adding /aliases mmc0 = "${i.card}" (U-Boot's environment is on a fixed device), or set boot.uboot.device to "mmc ${number}:${dev?.[3] ?? 1}"`,
  });
  if (env.kind === 'fat') {
    const [edev, epart] = env.device.split(':');
    const onCard = env.interface === 'mmc' && (env.device.startsWith(':') ? true : Number(edev) === number && dev !== null && Number(epart) === Number(dev[3]));
    add({
      id: 'BM_UBOOT_ENV_DEVICE',
      ok: onCard,
      node: i.card,
      property: 'CONFIG_ENV_FAT_DEVICE_AND_PART',
      detail: `U-Boot reads and saves its environment (boot counting's saveenv too) from ${env.interface} ${env.device} ${env.file}; the card's boot partition is mmc ${number}:${dev?.[3] ?? '?'}`,
      fix: `give the card's controller the alias mmc${edev} in the device tree (an overlay: /aliases { mmc${edev} = "${i.card}"; }), so U-Boot numbers it ${edev}`,
    });
    add({
      id: 'BM_UBOOT_ENV_FILE',
      ok: env.file === i.envFile && env.size === i.envSize && !env.redundant,
      property: 'CONFIG_ENV_FAT_FILE, CONFIG_ENV_SIZE, CONFIG_SYS_REDUNDAND_ENVIRONMENT',
      detail: `U-Boot reads ${env.file}, ${env.size} bytes${env.redundant ? ', redundant' : ''}; the kit writes ${i.envFile}, ${i.envSize} bytes, single`,
      fix: "write the environment under the build's file name and size",
    });
  } else {
    // U-Boot keeps its environment elsewhere (QEMU virt: flash): boot.scr imports uboot.env itself.
    add({ id: 'BM_UBOOT_ENV_DEVICE', ok: true, property: 'CONFIG_ENV_IS_IN_*', detail: elsewhere(env, i) });
  }
  return model;
}

/** Where U-Boot keeps an environment that is not a FAT file, and what the kit does about it. */
function elsewhere(env: Exclude<UbootEnvLocation, { kind: 'fat' }>, i: UbootModelInput): string {
  const imports = `boot.scr imports ${i.envFile} from ${i.device} and saves it there`;
  if (env.kind === 'other') return `U-Boot keeps its environment in ${env.where}: ${imports}`;
  const at = env.offsets.map((o) => `0x${o.toString(16)}`).join(' and ');
  const onCard = envRangesOnCard(env, i.device).length > 0;
  return `U-Boot keeps its environment on mmc ${env.device}${env.part ? ` (hardware partition ${env.part})` : ''} at ${at}, ${env.size} bytes${onCard ? ': that is the card, and the image writes zeros there (an environment another system left would be loaded instead of U-Boot\'s own)' : ''}; ${imports}`;
}

/** The card under Linux: what its controller's closure needs in the small initramfs, and whether everything in it can probe. */
export interface LinuxCardModel {
  /** Modules stage 1 must load, dependencies first. */
  modules: string[];
  findings: ModelFinding[];
}

/** What keeps a closure from probing: disabled providers and providers no driver matches, each with who needs it. */
function closureProblems(needs: FunctionNeeds): string[] {
  return [
    ...needs.disabled.map((d) => `${d.node} is disabled${d.via ? ` (needed by ${d.via})` : ''}`),
    ...needs.undriven.map((d) => `no driver for ${d.node}${d.compatibles.length ? ` (${d.compatibles.join(', ')})` : ''}${d.via ? `, needed by ${d.via}` : ''}`),
  ];
}

/** Check the card's closure (BM_LINUX_CARD): no disabled provider, no provider without a driver; `platform`: the profile's boot.cardPlatform. */
export function checkLinuxCard(tree: FdtNode, card: string, tables: KernelTables, platform: string[] = []): LinuxCardModel {
  const node = nodeAt(tree, card);
  if (!node) return { modules: [], findings: [{ id: 'BM_LINUX_CARD', ok: false, node: card, detail: `the device tree has no node ${card}`, fix: 'set boot.card to the card controller\'s path in the board\'s DTB' }] };
  // Platform devices a provider's driver creates (a PMIC's regulators): the tree names their parent only.
  const needs = functionNeeds(tree, [node], tables, [], platform);
  const problems = closureProblems(needs);
  const list = needs.modules.map((m) => `${m.module}${m.via ? ` (${m.via})` : ''}`).join(', ');
  return {
    modules: needs.modules.map((m) => m.module),
    findings: [
      problems.length
        ? { id: 'BM_LINUX_CARD', ok: false, node: card, detail: `the card's controller cannot probe: ${problems.join('; ')}`, fix: 'enable the provider with an overlay, or build its driver' }
        : { id: 'BM_LINUX_CARD', ok: true, node: card, detail: `the card's controller and what it references probe with ${list || 'built-in drivers only'}; stage 1 loads ${needs.modules.length && !tables.allBuiltIn ? 'those modules' : 'no module for it'}${needs.modules.length && tables.allBuiltIn ? ' (all built in)' : ''}` },
    ],
  };
}

/** A function the profile claims: its device-tree nodes, and devices the tree only implies. */
export interface FunctionClaim {
  nodes: string[];
  /** PCI devices as `vendor:device/class` (e.g. the Pi 4's VL805 `1106:3483/0c0330`). */
  pci?: string[];
  /** Platform devices a driver creates (e.g. dwc3's `xhci-hcd`). */
  platform?: string[];
  /** SDIO functions as `vendor:device` (the Pi 3's radio: `02d0:a9a6`). */
  sdio?: string[];
}

/** The functions under Linux (BM_LINUX_FUNCTION, one per function): the modules the system loads for them, in order. */
export function checkLinuxFunctions(tree: FdtNode, functions: Record<string, FunctionClaim>, tables: KernelTables): { modules: string[]; findings: ModelFinding[] } {
  const modules: string[] = [];
  const findings: ModelFinding[] = [];
  for (const [name, claim] of Object.entries(functions)) {
    const missing = claim.nodes.filter((p) => !nodeAt(tree, p));
    const needs = functionNeeds(tree, claim.nodes.flatMap((p) => nodeAt(tree, p) ?? []), tables, claim.pci ?? [], claim.platform ?? [], claim.sdio ?? []);
    const problems = [...missing.map((p) => `the device tree has no node ${p}`), ...closureProblems(needs)];
    for (const m of needs.modules) if (!modules.includes(m.module)) modules.push(m.module);
    const list = needs.modules.map((m) => m.module).join(', ') + (needs.modules.length && tables.allBuiltIn ? ' (built in)' : '') || 'built-in drivers only';
    findings.push(
      problems.length
        ? { id: 'BM_LINUX_FUNCTION', ok: false, node: name, detail: `${name}: ${problems.join('; ')}`, fix: `fix functions.${name} in the profile (the nodes of the board's DTB), enable the provider with an overlay, or build its driver` }
        : { id: 'BM_LINUX_FUNCTION', ok: true, node: name, detail: `${name}: ${list}` },
    );
  }
  return { modules, findings };
}
