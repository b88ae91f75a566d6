/** QEMU's human monitor (HMP) on a unix socket, for tests that change devices or links. */
import { createConnection, type Socket } from 'node:net';

const PROMPT = '(qemu) ';

/** One HMP connection: each command's reply is what QEMU prints up to its next prompt. */
class Hmp {
  private text = '';
  private wake: (() => void) | undefined;
  private constructor(private readonly s: Socket) {
    s.on('data', (d: Buffer) => {
      this.text += d.toString();
      this.wake?.();
    });
    s.on('close', () => this.wake?.());
  }

  static async open(sock: string, ms: number): Promise<Hmp> {
    const s = createConnection(sock);
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    const h = new Hmp(s);
    await h.prompt(0, ms, 'the monitor\'s first prompt');
    return h;
  }

  /** Wait until a prompt ends the text after `from`; returns the text before it. */
  private async prompt(from: number, ms: number, what: string): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const at = this.text.indexOf(PROMPT, from);
      if (at >= 0) return this.text.slice(from, at);
      if (this.s.destroyed || Date.now() > end) throw new Error(`QEMU monitor: no prompt after ${what} within ${ms} ms; it printed: ${JSON.stringify(this.text.slice(from))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, end - Date.now()));
        this.wake = () => (clearTimeout(t), r());
      });
    }
  }

  /** Send one command; its reply (the echoed command line removed). */
  async send(command: string, ms: number): Promise<string> {
    const from = this.text.lastIndexOf(PROMPT) + PROMPT.length;
    this.s.write(`${command}\n`);
    const reply = await this.prompt(from, ms, JSON.stringify(command));
    // HMP echoes the line it read (with terminal escapes); the reply starts after that line.
    return reply.replace(/^[^\n]*\n/, '');
  }

  close(): void {
    this.s.destroy();
  }
}

/** Send one HMP command to QEMU's monitor socket and return its whole reply (up to the next prompt). */
export async function monitor(sock: string, command: string, ms = 30_000): Promise<string> {
  const h = await Hmp.open(sock, ms);
  try {
    return await h.send(command, ms);
  } finally {
    h.close();
  }
}

/** Send several HMP commands over one connection, each after the previous one's reply and `gapMs` (e.g. keys typed with sendkey). */
export async function monitorAll(sock: string, commands: string[], gapMs = 150, ms = 30_000): Promise<string> {
  const h = await Hmp.open(sock, ms);
  let replies = '';
  try {
    for (const c of commands) {
      replies += await h.send(c, ms);
      await new Promise((r) => setTimeout(r, gapMs));
    }
    return replies;
  } finally {
    h.close();
  }
}
