import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getBoard } from '../../src/boards/index.js';
import { BspError } from '../../src/errors.js';
import { createBoard } from '../../src/runtime/board/board.js';
import { mockFor } from '../../src/runtime/board/mock.js';
import { describeWifi, parseScanResults, parseUdhcpcLine, parseWpaLine, pickWireless, wpaConfig } from '../../src/runtime/wifi.js';
import { wpaPsk } from '../../src/settings/env.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;

describe('Wi-Fi on the board (runtime/wifi.ts)', () => {
  after(cleanupTemp);

  it("wpa_supplicant.conf holds the PSK (never a passphrase), the SSID in hex, priorities and the country", () => {
    const psk = wpaPsk('home "net"', 'correct horse battery');
    const text = wpaConfig({ country: 'DE', networks: [{ ssid: 'home "net"', psk, priority: 5 }, { ssid: 'café', psk: 'a'.repeat(64), priority: 0 }] });
    assert.match(text, /^ctrl_interface=DIR=\/run\/wpa_supplicant\nupdate_config=0\nap_scan=1\ncountry=DE\n/);
    assert.match(text, new RegExp(`\\tssid=${Buffer.from('home "net"').toString('hex')}\\n[\\s\\S]*\\tpsk=${psk}\\n[\\s\\S]*\\tpriority=5\\n`));
    assert.match(text, new RegExp(`\\tssid=${Buffer.from('café').toString('hex')}\\n`));
    assert.doesNotMatch(text, /correct horse|"/);
    assert.equal(text.match(/network=\{/g)?.length, 2);
    assert.doesNotMatch(wpaConfig({ networks: [] }), /country|network/);
  });

  it('wpa_supplicant.conf takes no value that could end a line or a block, whatever its way in', () => {
    const psk = 'a'.repeat(64);
    const refused = (o: Parameters<typeof wpaConfig>[0]): void => assert.throws(() => wpaConfig(o), (e: unknown) => e instanceof BspError && e.code === 'EWIFI_SETTING');
    refused({ networks: [{ ssid: 'x', psk, priority: '0\n}\nnetwork={\n\tkey_mgmt=NONE\n}\npkcs11_engine_path=/tmp/x.so' as unknown as number }] });
    refused({ networks: [{ ssid: 'x', psk: `${psk}\n}`, priority: 0 }] });
    refused({ networks: [], country: 'DE\nctrl_interface=/tmp' });
  });

  it("reads wpa_supplicant 2.10's output lines: join, loss, wrong key, none in range, regulatory domain", () => {
    assert.deepEqual(parseWpaLine("wlan0: Trying to associate with 02:00:00:00:01:00 (SSID='nodeos-test' freq=2412 MHz)"), { type: 'trying', bssid: '02:00:00:00:01:00', ssid: 'nodeos-test' });
    assert.deepEqual(parseWpaLine("wlan0: Trying to associate with 02:00:00:00:01:00 (SSID='caf\\xc3\\xa9 \\\"x\\\"' freq=2437 MHz)"), { type: 'trying', bssid: '02:00:00:00:01:00', ssid: 'café "x"' });
    assert.deepEqual(parseWpaLine('wlan0: CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]'), { type: 'connected', bssid: '02:00:00:00:01:00' });
    assert.deepEqual(parseWpaLine('wlan0: CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=3 locally_generated=1'), { type: 'disconnected', bssid: '02:00:00:00:01:00', reason: 3, locally: true });
    assert.deepEqual(parseWpaLine('wlan0: CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=15'), { type: 'disconnected', bssid: '02:00:00:00:01:00', reason: 15, locally: false });
    assert.deepEqual(parseWpaLine('wlan0: CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid="nodeos-test" auth_failures=1 duration=10 reason=WRONG_KEY'), { type: 'wrong-key', ssid: 'nodeos-test' });
    assert.deepEqual(parseWpaLine('wlan0: CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid="n" auth_failures=2 duration=20 reason=CONN_FAILED'), { type: 'temp-disabled', ssid: 'n', reason: 'CONN_FAILED' });
    assert.deepEqual(parseWpaLine('wlan0: CTRL-EVENT-NETWORK-NOT-FOUND'), { type: 'not-found' });
    assert.deepEqual(parseWpaLine('wlan0: CTRL-EVENT-REGDOM-CHANGE init=USER type=COUNTRY alpha2=DE'), { type: 'regdom', alpha2: 'DE' });
    assert.equal(parseWpaLine('Successfully initialized wpa_supplicant'), undefined);
    assert.equal(parseWpaLine('wlan0: CTRL-EVENT-SCAN-RESULTS '), undefined);
  });

  it("reads udhcpc's script lines: a lease with its prefix, routers and servers; deconfig without one", () => {
    assert.deepEqual(parseUdhcpcLine('nodeos-dhcp|bound|192.168.77.10|24|255.255.255.0|192.168.77.1|192.168.77.1 9.9.9.9|864000|192.168.77.1'), {
      event: 'bound',
      lease: { address: '192.168.77.10', prefix: 24, routers: ['192.168.77.1'], dns: ['192.168.77.1', '9.9.9.9'], ntp: [], server: '192.168.77.1', leaseSeconds: 864000, t1: 432000, t2: 756000 },
    });
    // Older busybox gives no $mask: the prefix comes from $subnet.
    assert.equal(parseUdhcpcLine('nodeos-dhcp|renew|10.0.0.5||255.255.0.0|||600|10.0.0.1')?.lease?.prefix, 16);
    assert.deepEqual(parseUdhcpcLine('nodeos-dhcp|deconfig|||||||'), { event: 'deconfig' });
    assert.equal(parseUdhcpcLine('udhcpc: started, v1.37.0'), undefined);
  });

  it('scan results: strongest first, one per SSID, hidden networks by BSSID', () => {
    const text = 'bssid / frequency / signal level / flags / ssid\n02:00:00:00:01:00\t2412\t-30\t[WPA2-PSK-CCMP][ESS]\tnodeos-test\n02:00:00:00:02:00\t2437\t-70\t[WPA2-PSK-CCMP][ESS]\tnodeos-test\n02:00:00:00:03:00\t5180\t-50\t[ESS]\tcaf\\xc3\\xa9\n02:00:00:00:04:00\t2462\t-80\t[WPA2-PSK-CCMP][ESS]\t\n';
    assert.deepEqual(parseScanResults(text).map((r) => [r.ssid, r.bssid, r.signal]), [
      ['nodeos-test', '02:00:00:00:01:00', -30],
      ['café', '02:00:00:00:03:00', -50],
      ['', '02:00:00:00:04:00', -80],
    ]);
  });

  it('the radio is the first interface with wireless in sysfs, not Ethernet', () => {
    const net = tempDir();
    for (const [n, wireless] of [['eth0', false], ['wlan1', true], ['wlan0', true], ['lo', false]] as const) {
      mkdirSync(join(net, n, wireless ? 'wireless' : 'queues'), { recursive: true });
      writeFileSync(join(net, n, 'address'), '02:00:00:00:00:01\n');
    }
    assert.equal(pickWireless(net), 'wlan0');
    assert.equal(pickWireless(join(net, 'eth0')), undefined);
  });

  it('one console line per state, never a key', () => {
    assert.equal(describeWifi({ iface: 'wlan0', state: 'idle', networks: [] }), 'wifi: wlan0 up, no network configured (flash --wifi, or board.wifi.connect(ssid, passphrase))');
    assert.equal(describeWifi({ iface: 'wlan0', state: 'connected', ssid: 'n', bssid: '02:00:00:00:01:00', address: '10.0.0.2', networks: ['n'] }), 'wifi: wlan0 joined "n" (02:00:00:00:01:00), address 10.0.0.2');
    assert.match(describeWifi({ iface: 'wlan0', state: 'wrong-key', ssid: 'n', networks: ['n'] }), /^wifi: "n" refused the passphrase/);
  });

  it('board.wifi on the mock: scan, a refused passphrase changes nothing, a network in range joins; boards without Wi-Fi say so', async () => {
    const profile = getBoard('rpi3b').profile;
    const m = mockFor(profile);
    const board = createBoard(profile, m);
    assert.equal(board.wifi.status().state, 'idle');
    assert.deepEqual((await board.wifi.scan()).map((r) => r.ssid), ['nodeos-mock']);
    await assert.rejects(board.wifi.connect('nodeos-mock', 'short'), (e: unknown) => code('EWIFI_SETTING')(e) && !/short/.test((e as Error).message));
    assert.equal(m.wifi.networks.length, 0);
    const st = await board.wifi.connect('nodeos-mock', 'correct horse battery', { timeoutMs: 0 });
    assert.equal(st.state, 'connected');
    assert.equal(m.wifi.networks[0]!.psk, wpaPsk('nodeos-mock', 'correct horse battery'));
    assert.equal((await board.wifi.connect('elsewhere', 'correct horse battery', { timeoutMs: 0 })).ssid, 'nodeos-mock', 'a network out of range is kept, not joined');
    assert.equal(board.info.wifi?.state, 'connected', 'board.info shows Wi-Fi on a board with a radio');
    const virt = getBoard('qemu-virt').profile;
    await assert.rejects(createBoard(virt, mockFor(virt)).wifi.scan(), code('EWIFI'));
    assert.equal(createBoard(virt, mockFor(virt)).info.wifi, undefined);
  });
});
