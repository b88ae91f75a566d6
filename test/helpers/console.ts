/** Drive a serial console (QEMU's stdio) from a test: wait for text, send lines. */
import type { ChildProcess } from 'node:child_process';

/** Lines init prints at any time, whatever the REPL is doing (network, clock, SSH, mDNS, the fleet agent). */
const ASYNC_LINES = ['nodeos: app ', 'nodeos: apps: ', 'nodeos: network: ', 'nodeos: clock: ', 'nodeos: ssh: ', 'nodeos: mdns: ', 'nodeos: usb-gadget: ', 'nodeos: update: ', 'nodeos: wifi: ', 'nodeos: screen: ', 'nodeos: fleet: '];

export class Console {
  /** What the board printed, less the background lines moved to `messages`: for waiting on answers. */
  output = '';
  /** Lines init printed in the background (kept out of `output`, so they never split a REPL answer). */
  readonly messages: string[] = [];
  /** Everything the board printed, in order, nothing moved aside: what absence checks read. */
  printed = '';
  /** What QEMU itself printed (its standard error). */
  stderr = '';
  private held = '';
  private waiters: { re: RegExp; from: number; resolve: (m: RegExpExecArray) => void }[] = [];

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.printed += chunk.replace(/\r/g, '');
      this.output += this.takeMessages(chunk.replace(/\r/g, ''));
      this.check();
    });
    // QEMU's own messages (`Slirp: Failed to send packet` when the guest reaches for an address
    // the restricted network drops) come at any time: kept out of `output`, where they would
    // follow a prompt; shown when a wait times out.
    child.stderr!.on('data', (chunk: Buffer) => {
      this.printed += chunk.toString();
      this.stderr += chunk.toString();
    });
  }

  /**
   * Where the next background line starts in `text`: one of init's {@link ASYNC_LINES}, or a
   * kernel message printed right after a prompt (`> [   41.2] dwc2 ...: Not connected`).
   * Drivers that load once the prompt shows log there, and a wait for the prompt at the end
   * of the output must still see it. Kernel lines anywhere else stay in `output`, where boot
   * checks look for them.
   */
  private nextBackground(text: string): number {
    const starts = ASYNC_LINES.map((m) => text.indexOf(m)).filter((i) => i >= 0);
    const kernel = /\[\s*\d+\.\d+\] /g;
    for (let m = kernel.exec(text); m; m = kernel.exec(text)) {
      if ((this.output.slice(-2) + text.slice(0, m.index)).endsWith('> ')) {
        starts.push(m.index);
        break;
      }
    }
    return Math.min(...starts);
  }

  /** Move complete background lines into `messages`; hold back a line (or a marker prefix) not yet complete. */
  private takeMessages(chunk: string): string {
    let text = this.held + chunk;
    this.held = '';
    for (;;) {
      const at = this.nextBackground(text);
      if (!Number.isFinite(at)) break;
      const end = text.indexOf('\n', at);
      if (end < 0) {
        this.held = text.slice(at);
        text = text.slice(0, at);
        break;
      }
      this.messages.push(text.slice(at, end));
      text = text.slice(0, at) + text.slice(end + 1);
    }
    // A chunk may end inside the marker itself, or inside a kernel line's time stamp after a prompt.
    // A stamp is a few dozen characters: the output's tail is enough context, not all of it.
    const partial = /> (\[[\s\d.]*\]?)$/.exec(this.output.slice(-64) + text)?.[1];
    if (partial && partial.length <= text.length) {
      this.held = text.slice(-partial.length) + this.held;
      return text.slice(0, -partial.length);
    }
    for (let k = Math.min(Math.max(...ASYNC_LINES.map((m) => m.length)) - 1, text.length); k > 0; k--) {
      if (ASYNC_LINES.some((m) => m.startsWith(text.slice(-k)))) {
        this.held = text.slice(-k) + this.held;
        text = text.slice(0, -k);
        break;
      }
    }
    return text;
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      const re = new RegExp(w.re.source, w.re.flags.replace('g', ''));
      const m = re.exec(this.output.slice(w.from));
      if (m) w.resolve(m);
      return !m;
    });
  }

  /** Wait until `re` appears after position `from` (default: anywhere from now on). */
  waitFor(re: RegExp, ms: number, from = this.output.length): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${re}; console so far:\n${this.output.slice(-3000)}${this.stderr ? `\nQEMU said:\n${this.stderr.slice(-1000)}` : ''}`)), ms);
      this.waiters.push({ re, from, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      this.check();
    });
  }

  /**
   * Send a line to the REPL and return what it printed before the next prompt. The wait is
   * generous: e2e files run two at a time (two emulated boards on a two-core machine), and a
   * board busy with a download can take many seconds to print its prompt.
   */
  async eval(line: string, ms = 60_000): Promise<string> {
    return (await this.evalFull(line, ms)).answer;
  }

  /**
   * {@link eval}, with everything printed meanwhile: `answer` is the REPL's value alone
   * (kernel messages and `nodeos: ` lines dropped); `printed` is all the board printed from
   * the input to the prompt, those lines included, for checks that something was not said.
   */
  async evalFull(line: string, ms = 60_000): Promise<{ answer: string; printed: string }> {
    const from = this.output.length;
    const fromPrinted = this.printed.length;
    this.child.stdin!.write(line + '\n');
    const m = await this.waitFor(/\n> $|\n> (?=\S)/, ms, from);
    const text = this.output.slice(from, from + m.index);
    // Drop kernel messages and init's background news (network, Wi-Fi, clock: `nodeos: ...`
    // lines, never a REPL value) that landed in the answer, even before the echo; then the
    // echoed input line.
    const answer = text
      .split('\n')
      .filter((l) => !/^\[\s*\d+\.\d+\] /.test(l) && !/^nodeos: /.test(l))
      .slice(1)
      .join('\n')
      .trim();
    return { answer, printed: this.printed.slice(fromPrinted) };
  }

  /** Fail if `re` appears anywhere in what the board printed (background lines included). */
  neverPrinted(re: RegExp, what: string): void {
    const m = new RegExp(re.source, re.flags.replace('g', '')).exec(this.printed);
    if (m) throw new Error(`${what}: the board printed ${JSON.stringify(m[0])}: ${JSON.stringify(this.printed.slice(Math.max(0, m.index - 200), m.index + m[0].length + 200))}`);
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}
