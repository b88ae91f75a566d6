import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { grantGpio, parseGpioRequest, requestGpio, serveGpioRequests } from '../../src/runtime/gpio-access.js';
import { until } from '../helpers/until.js';

const chips = [{ base: 512, ngpio: 54 }];

describe('GPIO lines for apps that are not root (init\'s FIFO)', () => {
  it('takes only "export N" / "unexport N" of a line some chip has', () => {
    assert.deepEqual(parseGpioRequest('export 529', chips), { op: 'export', gpio: 529 });
    assert.deepEqual(parseGpioRequest('unexport 512\n', chips), { op: 'unexport', gpio: 512 });
    assert.match(parseGpioRequest('export 17', chips) as string, /GPIO 17 is on no GPIO chip/);
    assert.match(parseGpioRequest('export 529; reboot', chips) as string, /not a GPIO request/);
    assert.match(parseGpioRequest('direction 529 out', chips) as string, /not a GPIO request/);
  });

  it('exports through the FIFO and opens the line\'s files to the app group, 0660 (root)', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const root = mkdtempSync(join(tmpdir(), 'nodeos-gpio-'));
    try {
      // A sysfs stand-in: the "kernel" made gpio529 when export was written (files root 0644).
      const sys = join(root, 'sys');
      mkdirSync(join(sys, 'gpio529'), { recursive: true });
      writeFileSync(join(sys, 'export'), '');
      writeFileSync(join(sys, 'unexport'), '');
      for (const f of ['direction', 'value', 'edge', 'active_low']) writeFileSync(join(sys, 'gpio529', f), '0');
      grantGpio({ op: 'export', gpio: 529 }, 1000, sys);
      for (const f of ['direction', 'value', 'edge', 'active_low']) {
        const st = statSync(join(sys, 'gpio529', f));
        assert.deepEqual([st.uid, st.gid, (st.mode & 0o777).toString(8)], [0, 1000, '660'], f);
      }
      grantGpio({ op: 'unexport', gpio: 529 }, 1000, sys);
      assert.equal(readFileSync(join(sys, 'unexport'), 'utf8'), '529');

      // The FIFO: requests from an app reach init's handler; bad ones are refused and said.
      const fifo = join(root, 'gpio');
      execFileSync('mkfifo', [fifo]);
      const said: string[] = [];
      const sock = serveGpioRequests(fifo, () => chips, 1000, (m) => said.push(m));
      try {
        assert.equal(requestGpio('unexport', 530, { fifo, sys }), true);
        assert.equal(requestGpio('export', 7, { fifo, sys, timeoutMs: 50 }), false, 'no such line: nothing appears');
        await until(() => said.length > 0, 'the refusal', 5000);
        assert.match(said[0]!, /gpio: refused: GPIO 7 is on no GPIO chip/);
        // No FIFO (not NodeOS): the caller goes on by itself.
        assert.equal(requestGpio('export', 529, { fifo: join(root, 'none'), sys }), false);
      } finally {
        sock.destroy();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
