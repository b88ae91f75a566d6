/**
 * Apps built into the image, end to end on rpi3b through U-Boot: examples/thermometer,
 * examples/blink and test/fixtures/apps/ports (a native addon from linux-arm64 prebuilds)
 * (`build --app`) start at boot as the app user; blink's GPIO17 toggles (init
 * exported the line for it); QEMU's TMP105 on I2C bus 1 is set from the
 * host through the monitor and the app's HTTP answer, reached through a forward of the
 * host's loopback, carries that temperature; the app killed from the REPL is back within its
 * backoff and board.apps counts one restart; its log, on the users' partition, is still
 * there after a reboot, with both runs in it. Between: `nodeos-bsp deploy` over SSH (OpenSSH to
 * a forward of the board's port 22) of a new thermometer changes the HTTP answer without a
 * reboot; one that throws at start is rolled back (EDEPLOY_CRASHED) and the answer stays; the
 * deployed version still answers after the reboot. Then a user's own app: a package with a bin
 * installed from the test's registry with `.npm install -g`, `board.apps.enable()`d, runs at
 * once and again after a reboot, as the app user; disabled, it no longer starts.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { freeLoopbackPort, getBoard, packageRoot, prepareEmulation, startEmulation } from '../../src/index.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { monitor } from '../helpers/monitor.js';
import { startRegistry } from '../helpers/registry.js';
import { userKey } from '../helpers/ssh.js';
import { cleanupTemp, copyDir, tempDir } from '../helpers/tmp.js';
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

  it('starts at boot, serves the temperature set through QEMU, is restarted after a kill, and its log survives a reboot', async function () {
    // Three boots of an emulated rpi3b through U-Boot, a deploy and two builds: beside another
    // emulated board (CI runs two) that outlasted mocha's 600 s default (394 s in a quiet warm run).
    this.timeout(1_200_000);
    const out = join(packageRoot(), 'out', 'apps-e2e');
    const dir = tempDir();
    const user = userKey(dir, 'user');
    // A project file names the board, two apps and the key; --app adds the third.
    const project = join(dir, 'nodeos.yaml');
    writeFileSync(project, `board: rpi3b\napps:\n  - ${join(packageRoot(), 'examples/thermometer')}\n  - ${join(packageRoot(), 'examples/blink')}\nsshKeys: [user.pub]\n`);
    const b = await runCli('build', '--project', project, '--out', out, '--app', join(packageRoot(), 'test/fixtures/apps/ports'), '--json');
    assert.equal(b.code, 0, b.err);
    const sock = join(dir, 'monitor.sock');
    const port = await freeLoopbackPort();
    const sshPort = await freeLoopbackPort();
    const ticker = { name: 'nodeos-ticker', version: '1.0.0', main: 'module.exports = 1;\n', bin: { 'nodeos-ticker': 'ticker.js' }, files: { 'ticker.js': "#!/usr/bin/env node\nconsole.log(`ticker up: uid ${process.getuid()}, home ${process.env.HOME}`);\nsetInterval(() => {}, 60_000);\n" } };
    const registry = await startRegistry([ticker], 'http://10.0.2.100/');
    const e = prepareEmulation(join(out, 'nodeos-rpi3b.img'), getBoard('rpi3b').profile, {
      monitorSocket: sock,
      overlay: join(dir, 'card.qcow2'),
      net: { forward: [{ host: port, board: 8080 }, { host: sshPort, board: 22 }], services: [{ board: 80, host: registry.port }] },
      sensors: [{ model: 'tmp105', bus: 1, address: 0x48 }],
    });
    const c = new Console(startEmulation(e, 'pipe'));
    try {
      await c.waitFor(PROMPT, BOOT_MS, 0);
      /** An app's log once it matches `re` (or as it is after two minutes). */
      const logSays = async (name: string, re: RegExp): Promise<string> => {
        const end = Date.now() + 120_000;
        for (;;) {
          const text = await c.eval(`.logs ${name}`);
          if (re.test(text) || Date.now() > end) return text;
          await new Promise((r) => setTimeout(r, 2000));
        }
      };
      // Apps start after the prompt (only init and the REPL before it): their line comes then.
      const appsSaid = (re: RegExp, from = 0): Promise<void> => until(() => c.messages.slice(from).some((m) => re.test(m)), `${re}; console messages:\n${c.messages.slice(from).join('\n')}`, 120_000);
      await appsSaid(/nodeos: apps: thermometer, blink, ports; board\.apps shows them; the app user may use [^\n]*i2c-1/);
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
      assert.match(await logSays('blink', /every 500 ms/), /blink: <Pin GPIO17 J8:11[^>]*> every 500 ms; button on <Pin GPIO27 J8:13/);
      // An app whose dependency is a native addon from its linux-arm64 prebuilds (npm ci for the board at build time).
      assert.match(await logSays('ports', /addon loaded/), /ports: arm64 addon loaded: \/usr\/lib\/nodeos\/apps\/ports\/node_modules\/@serialport\/bindings-cpp\/prebuilds\/linux-arm64\/[^\s]+\.node; \d+ exports/);

      // Killed from the REPL: back within the first backoff (1 s), one restart counted.
      await c.eval(`process.kill(${pid}, 'SIGKILL')`);
      await until(() => c.messages.some((m) => /app thermometer: killed by SIGKILL; starting again in 1 s/.test(m)), `the supervisor's line; messages:\n${c.messages.join('\n')}`, 60_000);
      let restarted = '';
      const end = Date.now() + 120_000;
      while (Date.now() < end) {
        restarted = await c.eval("JSON.stringify([board.apps.thermometer.state, board.apps.thermometer.restarts, board.apps.thermometer.pid])");
        // Running again as a new process (the line above is said before the status file is written).
        const [st, , p] = JSON.parse(restarted.slice(1, -1)) as [string, number, number];
        if (st === 'running' && p !== pid) break;
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

      // deploy over SSH: a new version answers without a reboot.
      const ssh = ['--board', '127.0.0.1', '--ssh-port', String(sshPort), '-i', user.file, '--ssh-option', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '--ssh-option', 'StrictHostKeyChecking=accept-new'];
      const v2 = copyDir(join(packageRoot(), 'examples/thermometer'));
      writeFileSync(join(v2, 'package.json'), readFileSync(join(v2, 'package.json'), 'utf8').replace('"version": "1.0.0"', '"version": "1.1.0"'));
      writeFileSync(join(v2, 'server.js'), readFileSync(join(v2, 'server.js'), 'utf8').replace("sensor: 'tmp105',", "sensor: 'tmp105', version: '1.1.0',"));
      const t2 = Date.now();
      const d2 = await runCli('deploy', v2, ...ssh, '--json');
      assert.equal(d2.code, 0, d2.err);
      console.log(`      deploy over SSH (10 s settle included): ${((Date.now() - t2) / 1000).toFixed(1)} s`);
      const r2 = JSON.parse(d2.out) as { version: string; release: string; replacesImageApp?: boolean };
      assert.deepEqual([r2.version, r2.replacesImageApp], ['1.1.0', true]);
      assert.equal((await answer(port, 60_000)).version, '1.1.0', 'the new version answers, no reboot');
      assert.equal(await c.eval("JSON.stringify([board.apps.thermometer.source, board.apps.thermometer.version, board.apps.thermometer.release])"), `'${JSON.stringify(['deployed', '1.1.0', r2.release])}'`);
      // One that throws at start: rolled back, reported, and 1.1.0 answers again.
      const v3 = copyDir(v2);
      writeFileSync(join(v3, 'package.json'), readFileSync(join(v3, 'package.json'), 'utf8').replace('"version": "1.1.0"', '"version": "1.2.0"'));
      writeFileSync(join(v3, 'server.js'), `throw new Error('thermometer 1.2.0 cannot start');\n${readFileSync(join(v3, 'server.js'), 'utf8')}`);
      const t3 = Date.now();
      // 60 s to settle: beside another emulated board (CI runs two), Node can take more than the
      // default 10 s to reach the app's first line, and the crash must happen within the window.
      const d3 = await runCli('deploy', v3, ...ssh, '--settle', '60');
      assert.equal(d3.code, 1, d3.out);
      console.log(`      deploy rolled back: ${((Date.now() - t3) / 1000).toFixed(1)} s`);
      assert.match(d3.err, /thermometer 1\.2\.0 exited with code 1 within 60 s of starting; rolled back to 1\.1\.0, which runs again\. The end of its log:[\s\S]*thermometer 1\.2\.0 cannot start[\s\S]*\[EDEPLOY_CRASHED\]/);
      assert.equal((await answer(port, 60_000)).version, '1.1.0');
      assert.equal(await c.eval("require('fs').readlinkSync('/home/.local/share/nodeos/deployed/thermometer/current')"), `'releases/${r2.release}'`);

      // After a reboot: the app starts again, the old runs are still in its log.
      const from = c.output.length;
      const fromMsg = c.messages.length;
      c.child.stdin!.write('board.reboot()\n');
      await c.waitFor(/Loading Environment from FAT\.\.\. OK[\s\S]*\n> $/, BOOT_MS, from);
      await appsSaid(/nodeos: apps: thermometer \(deployed\), blink, ports;/, fromMsg);
      const again = await answer(port, 120_000);
      assert.deepEqual([again.celsius, again.version], [-4.5, '1.1.0'], 'the deployed version runs at boot');
      const after = await c.eval('.logs thermometer 100');
      // 1.0.0 at boot and after the kill, 1.1.0, 1.2.0 (rolled back), 1.1.0 again, then this boot's.
      assert.equal(after.match(/started, pid/g)?.length, 6, after);
      assert.match(after, /killed by SIGKILL/);
      assert.equal(await c.eval('board.apps.thermometer.restarts'), '0', 'a new boot counts afresh');

      // A user's own app: npm install -g from the test's registry, enable, runs now and at boot.
      await c.eval('.npm config set registry http://10.0.2.100/', 120_000);
      const ticker = await c.evalFull('.npm install -g nodeos-ticker', 300_000);
      assert.doesNotMatch(ticker.printed, /npm exited/, ticker.printed);
      assert.match(await c.eval("(await board.apps.enable('nodeos-ticker')).state"), /'running'|'waiting'/);
      const said = (re: RegExp): Promise<string> => logSays('nodeos-ticker', re);
      assert.match(await said(/ticker up/), /ticker up: uid 1000, home \/home\/apps\/nodeos-ticker/);
      assert.match(await c.eval("require('fs').readFileSync('/home/.local/state/nodeos/apps.json', 'utf8')"), /nodeos-ticker/);
      assert.match(await c.eval("await board.apps.enable('nodeos-nothere').catch(e => e.code)"), /EAPP_NOT_INSTALLED/);
      const third = c.output.length;
      const thirdMsg = c.messages.length;
      c.child.stdin!.write('board.reboot()\n');
      await c.waitFor(/Loading Environment from FAT\.\.\. OK[\s\S]*\n> $/, BOOT_MS, third);
      await appsSaid(/nodeos: apps: thermometer \(deployed\), blink, ports, nodeos-ticker \(user\)/, thirdMsg);
      assert.equal((await said(/(ticker up[\s\S]*){2}/)).match(/ticker up/g)?.length, 2, 'ran again after the reboot');
      assert.equal(await c.eval("board.apps['nodeos-ticker'].source"), "'user'");
      // Disabled: stopped now, and not in the list any more.
      assert.equal(await c.eval("(await board.apps.disable('nodeos-ticker')).state"), "'stopped'");
      assert.equal(await c.eval("Object.keys(board.apps).join()"), "'thermometer,blink,ports'");
    } finally {
      c.stop();
      await registry.close();
    }
  });
});
