/**
 * What init starts only once the serial console's REPL shows its prompt: at the prompt the
 * board runs init and that REPL and nothing else (every other Node process, and the work of
 * the in-process services, would be read from the card and run on the CPU before the prompt).
 * The SSH server comes only when a key exists; the screen's REPL when a display is connected,
 * or when Enter is pressed there (BusyBox init's `askfirst`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A queue run once, when the prompt shows (or when the REPL could not show one). */
export class AfterPrompt {
  private queue: { what: string; start: () => void }[] = [];
  private done = false;

  constructor(private readonly log: (msg: string) => void) {}

  /** Start `start` once the prompt showed (at once when it has); `what` names it in the console. */
  add(what: string, start: () => void): void {
    if (this.done) this.run({ what, start });
    else this.queue.push({ what, start });
  }

  /** What is waiting, in the order it starts. */
  pending(): string[] {
    return this.queue.map((q) => q.what);
  }

  get shown(): boolean {
    return this.done;
  }

  /** The prompt showed: start everything queued, each on its own (one that throws is said, the rest still start). */
  promptShown(): void {
    if (this.done) return;
    this.done = true;
    for (const q of this.queue.splice(0)) this.run(q);
  }

  private run(q: { what: string; start: () => void }): void {
    try {
      q.start();
    } catch (err) {
      this.log(`${q.what}: not started: ${(err as Error).message}`);
    }
  }
}

/** Whether any key may log in over SSH: the card's `nodeos_ssh_keys` or a line of ~/.ssh/authorized_keys that is not blank or a comment. The server itself checks each key. */
export function sshKeysPresent(envValue: string | undefined, authorizedKeys: string | undefined): boolean {
  const lines = (t: string | undefined): boolean => (t ?? '').split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  return lines(envValue) || lines(authorizedKeys);
}

/** ~/.ssh/authorized_keys as text; absent or unreadable (a directory, no permission) is no keys, never a failure of init. */
export function readAuthorizedKeys(file: string): string | undefined {
  try {
    return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

/** A name from the users' own files as the console may show it: plain, or quoted with its escapes. */
export const shownName = (name: string): string => (/^[\w@./-]+$/.test(name) ? name : JSON.stringify(name));

/** What the console says when no key may log in over SSH (init, before starting anything; the server, when the keys it finds are unusable). */
export const sshOff = (authorized: string): string => `ssh: off: no authorized key (build or flash with --ssh-key FILE, or put one in ${authorized} and reboot)`;

/** The connectors of the board's display controllers (/sys/class/drm/card*-*), each with its status file's word. */
export function drmConnectors(sys = '/sys'): { name: string; status: string }[] {
  const dir = join(sys, 'class/drm');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^card\d+-/.test(n))
    .flatMap((name) => {
      try {
        return [{ name, status: readFileSync(join(dir, name, 'status'), 'utf8').trim() }];
      } catch {
        return [];
      }
    });
}

/** A display is connected when a connector says so ("connected"; "unknown" and "disconnected" are not). */
export const displayConnected = (connectors: { status: string }[]): boolean => connectors.some((c) => c.status === 'connected');
