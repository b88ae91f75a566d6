/**
 * Two network namespaces joined by a veth pair, for the interop tests: the peer (a Debian
 * server or client) on one side, the board's code on the other. Private addresses that never
 * leave them; both removed by `remove()`. Root only (CI runs as root).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface NetnsPair {
  /** The peer's namespace (interface `vs`) and the board's (interface `vc`). */
  peer: string;
  board: string;
  /** Run a command in a namespace; its stdout. Throws on a non-zero exit. */
  run(ns: string, ...args: string[]): string;
  spawn(ns: string, args: string[], opts?: SpawnOptions): ChildProcess;
  mac(ns: string): string;
  remove(): void;
}

let made = 0;

/** Make the pair; `peerAddress` (CIDR) on the peer's side when given, both links up. */
export function netnsPair(peerAddress?: string): NetnsPair {
  const tag = `${process.pid}x${made++}`;
  const peer = `nbp${tag}`;
  const board = `nbb${tag}`;
  const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'pipe' });
  const run = (ns: string, ...args: string[]): string => execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  ip('netns', 'add', peer);
  ip('netns', 'add', board);
  ip('link', 'add', 'vs', 'netns', peer, 'type', 'veth', 'peer', 'name', 'vc', 'netns', board);
  for (const [ns, dev] of [[peer, 'vs'], [board, 'vc']] as const) {
    run(ns, 'ip', 'link', 'set', 'lo', 'up');
    run(ns, 'ip', 'link', 'set', dev, 'up');
  }
  if (peerAddress) run(peer, 'ip', 'addr', 'add', peerAddress, 'dev', 'vs');
  return {
    peer,
    board,
    run,
    spawn: (ns, args, opts = {}) => spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts }),
    mac: (ns) => run(ns, 'cat', `/sys/class/net/${ns === peer ? 'vs' : 'vc'}/address`).trim(),
    remove: () => {
      spawnSync('ip', ['netns', 'del', board]);
      spawnSync('ip', ['netns', 'del', peer]);
    },
  };
}

/** Stop a child and wait for it (no-op when it has ended). */
export async function stopChild(c: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  await done;
}

/** A board-side helper (test/helpers/netns-*.ts) run in the board's namespace: its JSON-line events, and a way to talk to it. */
export interface BoardHelper {
  events: Record<string, unknown>[];
  child: ChildProcess;
  say(line: string): void;
}

export function startBoardHelper(pair: NetnsPair, helper: string, args: string[]): BoardHelper {
  const file = fileURLToPath(new URL(helper, import.meta.url));
  const child = pair.spawn(pair.board, [process.execPath, '--import', 'tsx', file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const events: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => events.push({ ...(JSON.parse(l) as Record<string, unknown>), at: Date.now() }));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.on('exit', (code) => {
    if (code) events.push({ type: 'helper-exit', code, stderr: err });
  });
  return { events, child, say: (line) => void child.stdin!.write(`${line}\n`) };
}
