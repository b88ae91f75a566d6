/**
 * Wi-Fi end to end on QEMU's virt machine with the kernel's mac80211_hwsim radios (no QEMU
 * machine has a Pi's SDIO radio): a board variant (one profile file in a copy of boards/)
 * loads mac80211_hwsim, which makes two radios on one simulated medium. The board's Wi-Fi
 * (wlan0) is set at build time as a user sets it at flash time (--wifi, the passphrase from a
 * file, --wifi-country); the test's access point runs inside the guest on the other radio
 * (wlan1): the image's own wpa_supplicant in AP mode and busybox's udhcpd, test-only, started
 * from the REPL. The board joins with the stored PSK and gets its address over the radio;
 * then the AP changes its passphrase and the board reports the wrong key.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootPartitionIn, getBoard, prepareEmulation, startEmulation } from '../../src/index.js';
import { wpaPsk } from '../../src/settings/env.js';
import { boardVariant } from '../helpers/board-variant.js';
import { runCli } from '../helpers/cli.js';
import { Console } from '../helpers/console.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const VARIANT = `# QEMU virt with two simulated radios: wlan0 is the board's Wi-Fi, wlan1 the test's access point.
id: qemu-virt-wifi
extends: qemu-virt
name: QEMU arm64 virt with mac80211_hwsim radios
status: community
statusReason: a test board for Wi-Fi, with the kernel's simulated radios
detection:
  compatible: { remove: ["linux,dummy-virt"], add: ["nodeos-test,qemu-virt-wifi"] }
kernel:
  modules:
    # mac80211 asks the crypto API for ccm(aes) (CCMP) and cmac(aes) (management frame
    # protection) with request_module; the board has no modprobe.
    add: [cfg80211, mac80211, mac80211_hwsim, ccm, cmac]
wifi:
  chip: mac80211_hwsim (two simulated radios on one medium)
  modules: [mac80211_hwsim]
`;

const SSID = 'nodeos-test';
const PASSPHRASE = 'correct horse battery';
const AP_IP = '192.168.77.1';
// The router the lease names: not an address of this guest (the AP's is, and the kernel refuses
// a default route through a local address), so the route through it can be checked.
const ROUTER = '192.168.77.254';

/** The access point's wpa_supplicant.conf (AP mode, WPA2-PSK, channel 1). */
const apConf = (passphrase: string): string =>
  ['ctrl_interface=/run/ap', 'network={', `ssid="${SSID}"`, 'mode=2', 'frequency=2412', 'key_mgmt=WPA-PSK', 'proto=RSN', 'pairwise=CCMP', 'group=CCMP', `psk="${passphrase}"`, '}', ''].join('\\n');

describe('Wi-Fi on mac80211_hwsim radios (QEMU virt, board variant)', () => {
  after(cleanupTemp);

  it('joins the network set at build time with its PSK, gets an address over the radio, and reports a wrong passphrase', async () => {
    const boards = await boardVariant('qemu-virt-wifi', VARIANT);
    const out = tempDir();
    const pskFile = join(tempDir(), 'psk');
    writeFileSync(pskFile, `${PASSPHRASE}\n`);
    const b = await runCli('build', '--board', 'qemu-virt-wifi', '--boards-dir', boards, '--out', out, '--wifi', SSID, '--wifi-psk-file', pskFile, '--wifi-country', 'DE', '--json');
    assert.equal(b.code, 0, b.err);
    assert.ok(!readFileSync(join(out, 'nodeos-qemu-virt-wifi.img')).includes(PASSPHRASE), 'the passphrase is nowhere on the card');

    const profile = getBoard('qemu-virt-wifi', { boardsDir: boards }).profile;
    const overlay = join(tempDir(), 'card.qcow2');
    const c = new Console(startEmulation(prepareEmulation(join(out, 'nodeos-qemu-virt-wifi.img'), profile, { overlay }), 'pipe'));
    try {
      await c.waitFor(/\n> $/, 420_000, 0);
      // Wi-Fi's lines come at any time (its supervisor starts after the prompt): they are the
      // console's background lines, kept out of the REPL's answers.
      const said = (re: RegExp, ms: number): Promise<void> => until(() => c.messages.some((m) => re.test(m)), `${re}; console messages:\n${c.messages.join('\n')}`, ms);
      // First boot moved the network off the card; the supervisor looks for it.
      await said(new RegExp(`wifi: wlan0 searching for "${SSID}"`), 60_000);
      assert.match(c.printed, new RegExp(`wifi: "${SSID}" moved from the card to the users' partition`));
      assert.equal(await c.eval("board.wifi.status().country"), "'DE'");
      assert.doesNotMatch(await c.eval("require('fs').readFileSync('/home/.config/nodeos/wifi.json', 'utf8')"), /correct horse/);
      // The card's boot partition (FAT: any PC reads it) as the board left it, the image under
      // its overlay read while QEMU runs: the PSK and the variable are gone from every sector,
      // not only from the files' current clusters. (The PSK now lives in the users' partition, 0600.)
      const raw = join(tempDir(), 'card.raw');
      execFileSync('qemu-img', ['convert', '-U', '-O', 'raw', overlay, raw]);
      const boot = bootPartitionIn(raw);
      const fat = Buffer.alloc(boot.size);
      const fd = openSync(raw, 'r');
      readSync(fd, fat, 0, boot.size, boot.offset);
      closeSync(fd);
      rmSync(raw);
      const psk = wpaPsk(SSID, PASSPHRASE);
      assert.ok(readFileSync(join(out, 'nodeos-qemu-virt-wifi.img')).includes(psk), 'the card as flashed holds the PSK');
      assert.equal(fat.includes(psk), false, 'the PSK is still in the boot partition after the first boot');
      assert.equal(fat.includes('nodeos_wifi='), false, 'the variable is still in the boot partition after the first boot');
      assert.ok(fat.includes('bootdelay='), 'the environment is there');

      // The access point, test-only, on the second radio.
      await c.eval(`require('fs').writeFileSync('/tmp/ap.conf', '${apConf(PASSPHRASE)}'); 'ok'`);
      await c.eval(
        `globalThis.ap = require('child_process').spawn('/bin/wpa_supplicant', ['-i', 'wlan1', '-c', '/tmp/ap.conf'], { stdio: 'ignore' }); 'ok'`,
      );
      await c.eval(
        `require('fs').writeFileSync('/tmp/udhcpd.conf', 'start 192.168.77.10\\nend 192.168.77.20\\ninterface wlan1\\noption subnet 255.255.255.0\\noption router ${ROUTER}\\nlease_file /tmp/udhcpd.leases\\n'); require('fs').writeFileSync('/tmp/udhcpd.leases', ''); 'ok'`,
      );
      await new Promise((r) => setTimeout(r, 5000));
      await c.eval(
        `require('child_process').spawnSync('/bin/busybox', ['ip', 'addr', 'add', '${AP_IP}/24', 'dev', 'wlan1']).status + ':' + (globalThis.dhcpd = require('child_process').spawn('/bin/busybox', ['udhcpd', '-f', '/tmp/udhcpd.conf'], { stdio: 'ignore' })).pid`,
      );

      // The board joins with the PSK from the card and gets its address over the radio.
      await said(new RegExp(`wifi: wlan0 joined "${SSID}" \\([0-9a-f:]{17}\\), address 192\\.168\\.77\\.1\\d`), 180_000);
      c.neverPrinted(/wifi: ip /, 'the lease was applied without an error');
      const status = await c.eval('JSON.stringify(board.wifi.status())');
      assert.match(status, /"state":"connected"/);
      assert.match(status, new RegExp(`"ssid":"${SSID}"`));
      assert.match(status, new RegExp(`"router":"${ROUTER}"`));
      assert.match(await c.eval("require('child_process').spawnSync('/bin/busybox', ['ip', 'route'], { encoding: 'utf8' }).stdout"), /default via 192\.168\.77\.254 dev wlan0\s+metric 600/);
      const scan = await c.eval('JSON.stringify((await board.wifi.scan()).map((r) => r.ssid))', 60_000);
      assert.match(scan, new RegExp(SSID));

      // The AP takes another passphrase: the board loses it and says the key is wrong.
      await c.eval(`globalThis.ap.kill(); require('fs').writeFileSync('/tmp/ap.conf', '${apConf('another passphrase')}'); 'ok'`);
      await new Promise((r) => setTimeout(r, 2000));
      await c.eval(`globalThis.ap = require('child_process').spawn('/bin/wpa_supplicant', ['-i', 'wlan1', '-c', '/tmp/ap.conf'], { stdio: 'ignore' }); 'ok'`);
      await said(new RegExp(`wifi: "${SSID}" refused the passphrase`), 180_000);
      assert.match(await c.eval('board.wifi.status().state'), /'wrong-key'/);
      // A passphrase WPA cannot take is refused before anything changes.
      assert.match(await c.eval("await board.wifi.connect('x', 'short').catch((e) => e.code)"), /'EWIFI_SETTING'/);
      // The right one, given from the REPL, is kept and joins again.
      assert.match(await c.eval(`(await board.wifi.connect('${SSID}', 'another passphrase', { timeoutMs: 150000 })).state`, 180_000), /'connected'/);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- console (end) ---\n${c.output.slice(-12000)}`, { cause: err });
    } finally {
      c.stop();
    }
  });
});
