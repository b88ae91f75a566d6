/**
 * Apps built into the image, end to end on rpi3b through U-Boot: examples/thermometer and
 * examples/blink (`build --app`) start at boot as the app user; blink's GPIO17 toggles (init
 * exported the line for it); QEMU's TMP105 on I2C bus 1 is set from the
 * host through the monitor and the app's HTTP answer, reached through a forward of the
 * host's loopback, carries that temperature; the app killed from the REPL is back within its
 * backoff and board.apps counts one restart; its log, on the users' partition, is still
 * there after a reboot, with both runs in it. Then a user's own app: a package with a bin
 * installed from the test's registry with `.npm install -g`, `board.apps.enable()`d, runs at
 * once and again after a reboot, as the app user; disabled, it no longer starts.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { join } from 'node:path';
import { freeLoopbackPort, getBoard, packageRoot, prepareEmulation, startEmulation } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { monitor } from '../helpers/monitor.js';
import { startRegistry } from '../helpers/registry.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const PROMPT = /\n> $/;
const BOOT_MS = 300_000;

/** GET http://127.0.0.1:port/ → the parsed JSON (undefined while nothing answers). */
function fetchJson(port: number): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/', timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as Record<string, unknown>);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

async function answer(port: number, ms: number): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await fetchJson(port);
    if (r) return r;
    if (Date.now() > end) throw new Error(`nothing answered on 127.0.0.1:${port} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe('apps: examples/thermometer built into the rpi3b image', () => {
  after(cleanupTemp);

  it('starts at boot, serves the temperature set through QEMU, is restarted after a kill, and its log survives a reboot', async () => {
    const out = join(packageRoot(), 'out', 'apps-e2e');
    const b = await runCli('build', '--board', 'rpi3b', '--out', out, '--app', join(packageRoot(), 'examples/thermometer'), '--app', join(packageRoot(), 'examples/blink'), '--json');
    assert.equal(b.code, 0, b.err);
    const dir = tempDir();
    const sock = join(dir, 'monitor.sock');
    const port = await freeLoopbackPort();
    const ticker = { name: 'nodeos-ticker', version: '1.0.0', main: 'module.exports = 1;\n', bin: { 'nodeos-ticker': 'ticker.js' }, files: { 'ticker.js': "#!/usr/bin/env node\nconsole.log(`ticker up: uid ${process.getuid()}, home ${process.env.HOME}`);\nsetInterval(() => {}, 60_000);\n" } };
    const registry = await startRegistry([ticker], 'http://10.0.2.100/');
    const e = prepareEmulation(join(out, 'nodeos-rpi3b.img'), getBoard('rpi3b').profile, {
      monitorSocket: sock,
      overlay: join(dir, 'card.qcow2'),
      net: { forward: [{ host: port, board: 8080 }], services: [{ board: 80, host: registry.port }] },
      sensors: [{ model: 'tmp105', bus: 1, address: 0x48 }],
    });
    const c = new Console(startEmulation(e, 'pipe'));
    try {
      await c.waitFor(PROMPT, BOOT_MS, 0);
      assert.match(c.output, /nodeos: apps: thermometer, blink; board\.apps shows them; the app user may use [^\n]*i2c-1/);
      const reply = await monitor(sock, 'qom-set /machine/peripheral/sensor0 temperature 23500');
      assert.doesNotMatch(reply, /Error/i, reply);
      const first = await answer(port, 120_000);
      assert.equal(first.celsius, 23.5, JSON.stringify(first));
      assert.equal(first.sensor, 'tmp105');

      // As the app user, not root; board.apps shows it running.
      const pid = Number(await c.eval('board.apps.thermometer.pid'));
      assert.ok(pid > 1, `pid ${pid}`);
      assert.equal(await c.eval(`require('fs').readFileSync('/proc/${pid}/status', 'utf8').match(/^Uid:\\s+(\\d+)/m)[1]`), "'1000'");
      assert.equal(await c.eval('board.apps.thermometer.state'), "'running'");
      assert.match(await c.eval('board.apps'), /thermometer\s+running\s+\d+\s+0\s+\d+ s\s+1\.0\.0/);

      // blink drives GPIO17 as the app user: init exported the line for it (the FIFO), group app.
      const gpio = Number(await c.eval('board.GPIO17.global'));
      // The app may still be starting (Node under QEMU takes seconds): wait for the line.
      for (let i = 0; i < 60 && (await c.eval(`require('fs').existsSync('/sys/class/gpio/gpio${gpio}/value')`)) !== 'true'; i++) await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await c.eval('board.apps.blink.restarts'), '0', await c.eval('.logs blink'));
      const blinkPid = Number(await c.eval('board.apps.blink.pid'));
      assert.equal(await c.eval(`require('fs').readFileSync('/proc/${blinkPid}/status', 'utf8').match(/^Uid:\\s+(\\d+)/m)[1]`), "'1000'");
      assert.equal(await c.eval(`require('fs').statSync('/sys/class/gpio/gpio${gpio}/value').gid`), '1000');
      const seen = new Set<string>();
      for (let i = 0; i < 20 && seen.size < 2; i++) {
        seen.add(await c.eval(`require('fs').readFileSync('/sys/class/gpio/gpio${gpio}/value', 'utf8').trim()`));
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.deepEqual([...seen].sort(), ["'0'", "'1'"], 'GPIO17 blinks');
      assert.match(await c.eval('.logs blink'), /blink: <Pin GPIO17 J8:11[^>]*> every 500 ms; button on <Pin GPIO27 J8:13/);

      // Killed from the REPL: back within the first backoff (1 s), one restart counted.
      await c.eval(`process.kill(${pid}, 'SIGKILL')`);
      await until(() => c.messages.some((m) => /app thermometer: killed by SIGKILL; starting again in 1 s/.test(m)), `the supervisor's line; messages:\n${c.messages.join('\n')}`, 60_000);
      let restarted = '';
      const end = Date.now() + 120_000;
      while (Date.now() < end) {
        restarted = await c.eval("JSON.stringify([board.apps.thermometer.state, board.apps.thermometer.restarts, board.apps.thermometer.pid])");
        if (/running/.test(restarted)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      const [state, restarts, pid2] = JSON.parse(restarted.slice(1, -1)) as [string, number, number];
      assert.deepEqual([state, restarts], ['running', 1], restarted);
      assert.notEqual(pid2, pid);
      await monitor(sock, 'qom-set /machine/peripheral/sensor0 temperature -4500');
      assert.equal((await answer(port, 120_000)).celsius, -4.5);

      // The log is on the users' partition: both runs, and the kill between them.
      const logs = await c.eval('.logs thermometer');
      assert.match(logs, /thermometer 1\.0\.0 started, pid \d+[\s\S]*thermometer: http:\/\/<board>:8080\/[\s\S]*killed by SIGKILL[\s\S]*started, pid \d+/);
      assert.equal(await c.eval("require('fs').existsSync('/home/.local/state/nodeos/logs/thermometer.log')"), 'true');

      // After a reboot: the app starts again, the old runs are still in its log.
      const from = c.output.length;
      c.child.stdin!.write('board.reboot()\n');
      await c.waitFor(/Loading Environment from FAT\.\.\. OK[\s\S]*\n> $/, BOOT_MS, from);
      assert.equal((await answer(port, 120_000)).celsius, -4.5);
      const after = await c.eval('.logs thermometer 100');
      assert.equal(after.match(/started, pid/g)?.length, 3, after);
      assert.match(after, /killed by SIGKILL/);
      assert.equal(await c.eval('board.apps.thermometer.restarts'), '0', 'a new boot counts afresh');

      // A user's own app: npm install -g from the test's registry, enable, runs now and at boot.
      await c.eval('.npm config set registry http://10.0.2.100/', 120_000);
      assert.doesNotMatch(await c.eval('.npm install -g nodeos-ticker', 300_000), /npm exited/);
      assert.match(await c.eval("(await board.apps.enable('nodeos-ticker')).state"), /'running'|'waiting'/);
      const said = async (re: RegExp): Promise<string> => {
        const end = Date.now() + 120_000;
        for (;;) {
          const text = await c.eval('.logs nodeos-ticker');
          if (re.test(text) || Date.now() > end) return text;
          await new Promise((r) => setTimeout(r, 2000));
        }
      };
      assert.match(await said(/ticker up/), /ticker up: uid 1000, home \/home\/apps\/nodeos-ticker/);
      assert.match(await c.eval("require('fs').readFileSync('/home/.local/state/nodeos/apps.json', 'utf8')"), /nodeos-ticker/);
      assert.match(await c.eval("await board.apps.enable('nodeos-nothere').catch(e => e.code)"), /EAPP_NOT_INSTALLED/);
      const third = c.output.length;
      c.child.stdin!.write('board.reboot()\n');
      await c.waitFor(/Loading Environment from FAT\.\.\. OK[\s\S]*\n> $/, BOOT_MS, third);
      assert.match(c.output.slice(third), /nodeos: apps: thermometer, blink, nodeos-ticker \(user\)/);
      assert.equal((await said(/(ticker up[\s\S]*){2}/)).match(/ticker up/g)?.length, 2, 'ran again after the reboot');
      assert.equal(await c.eval("board.apps['nodeos-ticker'].source"), "'user'");
      // Disabled: stopped now, and not in the list any more.
      assert.equal(await c.eval("(await board.apps.disable('nodeos-ticker')).state"), "'stopped'");
      assert.equal(await c.eval("Object.keys(board.apps).join()"), "'thermometer,blink'");
    } finally {
      c.stop();
      await registry.close();
    }
  });
});
