/**
 * The QEMU monitor helper reads each reply up to the next prompt, however long QEMU takes:
 * a check that an answer holds no error must see the whole answer (needs qemu-system-aarch64).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { monitor, monitorAll } from './monitor.js';
import { cleanupTemp, tempDir } from './tmp.js';

describe('QEMU monitor helper', function () {
  this.timeout(30_000);
  after(cleanupTemp);

  it('a slow reply (after 1.5 s) is read whole, so an error in it is seen', async () => {
    const sock = join(tempDir(), 'slow.sock');
    const srv = createServer((c) => {
      c.write('QEMU 10.0.2 monitor - type \'help\' for more information\r\n(qemu) ');
      c.on('data', (d: Buffer) => {
        const line = d.toString().trim();
        c.write(`${line}\r\n`);
        setTimeout(() => c.write(`Error: Property 'tmp105.temperature' not found\r\n(qemu) `), 1500);
      });
    });
    await new Promise<void>((r) => srv.listen(sock, r));
    try {
      assert.match(await monitor(sock, 'qom-set /machine/peripheral/tmp0 temperature 1'), /^Error: Property/);
    } finally {
      srv.close();
    }
  });

  it("with QEMU's own monitor: a command's reply, an error's reply, several commands on one connection", async () => {
    const dir = tempDir();
    const sock = join(dir, 'hmp.sock');
    const q = spawn('qemu-system-aarch64', ['-M', 'virt', '-S', '-display', 'none', '-nodefaults', '-monitor', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(await monitor(sock, 'info status'), /VM status: paused/);
      assert.match(await monitor(sock, 'qom-set /machine/peripheral/nothing temperature 1'), /Device '\/machine\/peripheral\/nothing' not found/);
      const both = await monitorAll(sock, ['info status', 'info name'], 0);
      assert.match(both, /VM status: paused/);
    } finally {
      q.kill('SIGKILL');
    }
  });
});
