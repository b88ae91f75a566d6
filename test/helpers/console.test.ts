/**
 * The e2e console helper, fed by a fake QEMU process: background lines it moves aside for
 * waiting on answers must still be seen by the checks that something was never printed.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { Console } from './console.js';

/** A stand-in for QEMU's process: what the test writes to `board` is what the board printed. */
function fakeBoard(): { child: ChildProcess; board: PassThrough; typed: string[] } {
  const board = new PassThrough();
  const stdin = new PassThrough();
  const typed: string[] = [];
  stdin.on('data', (b: Buffer) => typed.push(b.toString()));
  const child = { stdout: board, stderr: new PassThrough(), stdin, kill: () => true } as unknown as ChildProcess;
  return { child, board, typed };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('e2e console helper', () => {
  it("a secret on a background line (nodeos: network:) is out of `output` but neverPrinted sees it", async () => {
    const { child, board } = fakeBoard();
    const c = new Console(child);
    board.write('Booting\nnodeos: network: joined "school" with passphrase hunter2-secret\n> ');
    await tick();
    assert.doesNotMatch(c.output, /hunter2/, 'moved aside, as answers need');
    assert.equal(c.messages.length, 1);
    assert.throws(() => c.neverPrinted(/hunter2-secret/, 'the passphrase'), /the passphrase: the board printed "hunter2-secret"/);
    assert.doesNotThrow(() => c.neverPrinted(/something else/, 'x'));
  });

  it('a background line split across chunks is still seen whole by neverPrinted', async () => {
    const { child, board } = fakeBoard();
    const c = new Console(child);
    board.write('nodeos: net');
    await tick();
    board.write('work: psk=abc');
    await tick();
    board.write('def\n');
    await tick();
    assert.throws(() => c.neverPrinted(/psk=abcdef/, 'the PSK'));
  });

  it('evalFull: the answer drops `nodeos: ` lines, `printed` keeps them for "no error" checks', async () => {
    const { child, board, typed } = fakeBoard();
    const c = new Console(child);
    board.write('> ');
    await tick();
    const pending = c.evalFull('.npm install -g x');
    await tick();
    assert.deepEqual(typed, ['.npm install -g x\n']);
    board.write('.npm install -g x\nnodeos: npm: x has a native addon and NodeOS boards have no C/C++ compiler\nadded 1 package\n> ');
    const r = await pending;
    assert.equal(r.answer, 'added 1 package');
    assert.match(r.printed, /no C\/C\+\+ compiler/);
    board.write('');
    const p2 = c.eval('6 * 7');
    await tick();
    board.write('6 * 7\n42\n> ');
    assert.equal(await p2, '42');
  });
  it('kernel lines printed after a prompt (drivers loading later) leave the prompt at the end of `output`', async () => {
    const { child, board } = fakeBoard();
    const c = new Console(child);
    board.write('[    5.120000] Run /init as init process\nwelcome\n> [   41.2');
    await tick();
    board.write('50311] dwc2 3f980000.usb: Not connected\n');
    await tick();
    await c.waitFor(/\n> $/, 1000, 0);
    assert.match(c.output, /Run \/init as init process/, 'a kernel line not after a prompt stays in output');
    assert.doesNotMatch(c.output, /dwc2/);
    assert.deepEqual(c.messages, ['[   41.250311] dwc2 3f980000.usb: Not connected']);
    assert.match(c.printed, /> \[ {3}41\.250311\] dwc2/);
  });

  it('an answer that starts with a bracket after the prompt is not held back as a kernel line', async () => {
    const { child, board } = fakeBoard();
    const c = new Console(child);
    board.write('> ');
    await tick();
    const p = c.eval('[1, 2]');
    await tick();
    board.write('[1, 2]\n[ 1, 2 ]\n> ');
    assert.equal(await p, '[ 1, 2 ]');
  });

  it('kernel lines after a prompt are moved aside wherever the chunks split them (every split point, and byte by byte)', () => {
    const text = 'a REPL on tty1\n> [   22.685458] dwc2 3f980000.usb: Not connected\n[   22.687075] dwc2 3f980000.usb: Not connected\n';
    const feeds = [...Array.from({ length: text.length - 1 }, (_, i) => [text.slice(0, i + 1), text.slice(i + 1)]), [...text]];
    for (const chunks of feeds) {
      const { child, board } = fakeBoard();
      const c = new Console(child);
      for (const ch of chunks) board.emit('data', ch);
      assert.equal(c.output, 'a REPL on tty1\n> ', JSON.stringify(chunks.slice(0, 3)));
      assert.equal(c.messages.length, 2);
    }
  });

  it("QEMU's own messages (its stderr) stay out of `output`, so a prompt stays at its end; a timed-out wait shows them", async () => {
    const { child, board } = fakeBoard();
    const c = new Console(child);
    board.write('> ');
    await tick();
    (child.stderr as PassThrough).write('qemu-system-aarch64: Slirp: Failed to send packet, ret: -1\n');
    await tick();
    await c.waitFor(/\n?> $/, 1000, 0);
    assert.match(c.printed, /Slirp/);
    await assert.rejects(c.waitFor(/never/, 10), /QEMU said:\nqemu-system-aarch64: Slirp/);
  });
});
