/**
 * The board's mDNS responder, as init starts it (test/helpers/netns-mdns.ts: the real
 * multicast-dns socket, probing first), against avahi-daemon 0.8 from Debian, in network
 * namespaces this test makes (avahi on its own private D-Bus, its runtime directory on a
 * tmpfs in its own mount namespace: nothing of this machine's is touched):
 *  - the name avahi holds is taken: the board probes, says so, answers as `<name>-2.local`;
 *  - avahi-resolve finds the board at its address, and avahi at its own;
 *  - avahi started later with the board's name finds it held (a conflict) and renames itself,
 *    while the board keeps its name.
 * Root only (namespaces), as CI runs.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netnsPair, startBoardHelper, stopChild, type BoardHelper, type NetnsPair } from '../helpers/netns.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { isRoot, requireTool } from '../helpers/tools.js';
import { until } from '../helpers/until.js';

describe('interop: the mDNS responder against avahi (network namespaces)', function () {
  this.timeout(90000);
  let dir: string;
  let pair: NetnsPair;
  let bus: ChildProcess | undefined;
  let avahi: ChildProcess | undefined;
  let board: BoardHelper | undefined;
  let avahiLog = '';
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(dir, 'bus')}` });

  const startAvahi = async (name: string): Promise<void> => {
    writeFileSync(join(dir, 'avahi.conf'), `[server]\nhost-name=${name}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=vs\nenable-dbus=yes\n[publish]\npublish-addresses=yes\npublish-workstation=no\n[wide-area]\nenable-wide-area=no\n`);
    avahiLog = '';
    avahi = pair.spawn(pair.peer, ['unshare', '-m', 'sh', '-c', `mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon && exec avahi-daemon -f ${join(dir, 'avahi.conf')} --no-drop-root --no-chroot --no-rlimits`], { env: env() });
    const a = avahi;
    a.stdout!.on('data', (d: Buffer) => (avahiLog += d.toString()));
    a.stderr!.on('data', (d: Buffer) => (avahiLog += d.toString()));
    await until(() => /Server startup complete/.test(avahiLog) || a.exitCode !== null, `avahi to start:\n${avahiLog}`, 20000);
    assert.equal(a.exitCode, null, avahiLog);
  };
  const resolve = (name: string): string => {
    const r = spawnSync('ip', ['netns', 'exec', pair.peer, 'avahi-resolve', '-4', '-n', name], { env: env(), encoding: 'utf8', timeout: 10000 });
    return `${r.stdout}${r.stderr}`.trim();
  };

  before(async function () {
    if (!isRoot()) this.skip();
    for (const [tool, pkg] of [['avahi-daemon', 'avahi-daemon'], ['avahi-resolve', 'avahi-utils'], ['dbus-daemon', 'dbus']] as const) requireTool(tool, ['--version'], pkg);
    dir = tempDir();
    // avahi talks to its clients over D-Bus: a private bus, on a socket in this test's directory.
    writeFileSync(join(dir, 'bus.conf'), `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=${join(dir, 'bus')}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>\n`);
    pair = netnsPair('10.55.0.1/24');
    // The board as after its DHCP lease: its address and a default route.
    pair.run(pair.board, 'ip', 'addr', 'add', '10.55.0.2/24', 'dev', 'vc');
    pair.run(pair.board, 'ip', 'route', 'add', 'default', 'via', '10.55.0.1');
    bus = pair.spawn(pair.peer, ['dbus-daemon', '--config-file', join(dir, 'bus.conf'), '--nofork', '--print-address']);
    let out = '';
    bus.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('unix:path='), 'the private D-Bus', 10000);
  });

  after(async () => {
    board?.say('stop');
    await stopChild(board?.child);
    await stopChild(avahi);
    await stopChild(bus);
    pair?.remove();
    cleanupTemp();
  });

  it("the board probes, finds avahi's name held and answers as name-2; avahi resolves both; avahi coming later with the board's name renames itself", async () => {
    await startAvahi('kitchen');
    assert.equal(resolve('kitchen.local'), 'kitchen.local\t10.55.0.1');

    board = startBoardHelper(pair, './netns-mdns.ts', ['kitchen']);
    const b = board;
    await until(() => b.events.some((e) => e.type === 'ready' || e.type === 'helper-exit'), `the responder; ${JSON.stringify(b.events)}`, 20000);
    assert.deepEqual(b.events.filter((e) => e.type !== 'log').map((e) => [e.type, e.name]), [['ready', 'kitchen-2']]);
    assert.deepEqual(b.events.filter((e) => e.type === 'log').map((e) => e.msg), ['mdns: kitchen.local is taken on this network; answering as kitchen-2.local']);
    assert.equal(resolve('kitchen-2.local'), 'kitchen-2.local\t10.55.0.2', 'avahi finds the board');
    assert.equal(resolve('kitchen.local'), 'kitchen.local\t10.55.0.1', "and itself, where it was: the board took nothing that was avahi's");

    // avahi restarts as kitchen-2, the board's name now: its probe is answered by the board.
    await stopChild(avahi);
    await startAvahi('kitchen-2');
    assert.match(avahiLog, /Host name conflict, retrying with kitchen-3/);
    assert.match(avahiLog, /Host name is kitchen-3\.local/);
    assert.equal(resolve('kitchen-2.local'), 'kitchen-2.local\t10.55.0.2', 'the board kept its name');
    assert.deepEqual(b.events.filter((e) => 'fault' in e || e.type === 'helper-exit'), []);
  });
});
