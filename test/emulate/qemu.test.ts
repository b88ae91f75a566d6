import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { BspError, createImage, findQemu, getBoard, networkArgs, parseForward, parseService, prepareEmulation, relayCommand, qemuOptValue, serialIndex, writeSparseImage } from '../../src/index.js';
import { cardExtents, smallLayout } from '../helpers/card.js';
import { runCli } from '../helpers/cli.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** A stand-in qemu-system-aarch64 that reports a version and a machine list. */
function fakeQemu(version: string, machines: string[]): string {
  const p = join(tempDir(), 'qemu-system-aarch64');
  writeFileSync(p, `#!/bin/sh\nif [ "$1" = --version ]; then echo "QEMU emulator version ${version}"; else echo "Supported machines are:"; ${machines.map((m) => `echo "${m}  Raspberry Pi"`).join('; ')}; fi\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('emulate: finding QEMU', () => {
  after(cleanupTemp);
  const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;

  it('names the package when QEMU is missing', () => {
    assert.throws(() => findQemu('raspi3b', '/nonexistent/qemu-system-aarch64'), (e: unknown) => code('EQEMU_MISSING')(e) && /apt-get install qemu-system-arm/.test((e as Error).message));
  });

  it('says which QEMU a machine needs when this one is too old', () => {
    const q = fakeQemu('7.2.22', ['raspi3b', 'raspi3ap']);
    assert.deepEqual(findQemu('raspi3b', q).version, [7, 2, 22]);
    assert.throws(() => findQemu('raspi4b', q), (e: unknown) => code('EQEMU_MACHINE')(e) && /needs QEMU 9\.0 or later/.test((e as Error).message) && /bookworm-backports/.test((e as Error).message));
  });

  it("maps the board's console to QEMU's serial ports", () => {
    const p = getBoard('rpi3b').profile;
    assert.equal(serialIndex(p), 1, 'the mini UART is the raspi machines\' second port');
    assert.equal(serialIndex({ ...p, console: { ...p.console, device: 'ttyAMA0' } }), 0);
    assert.throws(() => serialIndex({ ...p, console: { ...p.console, device: 'ttyAMA10' } }), (e: unknown) => code('EQEMU_MACHINE')(e) && /emulation\.qemu\.serial/.test((e as Error).message));
  });
});

describe('emulate: paths in QEMU option lists', () => {
  after(cleanupTemp);

  it('an --overlay path with commas stays one path (QEMU itself opens it), it cannot add options', async () => {
    const dir = tempDir();
    const overlay = join(dir, 'card,if=none,readonly=on.qcow2');
    const value = qemuOptValue(overlay);
    assert.equal(value.split(/(?<!,),(?!,)/).length, 1, 'no lone comma is left to start a new option');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', overlay, '64M']);
    // Ask the real QEMU which file it opened for the drive.
    const r = spawnSync('qemu-system-aarch64', ['-M', 'virt', '-display', 'none', '-nodefaults', '-S', '-drive', `file=${value},if=none,format=qcow2,id=card`, '-monitor', 'stdio'], {
      input: 'info block\nquit\n',
      encoding: 'utf8',
      timeout: 30000,
    });
    assert.match(r.stdout, /card \(#block\d+\): .*card,if=none,readonly=on\.qcow2 \(qcow2\)/, r.stderr);
    assert.doesNotMatch(r.stdout, /Read-only/);
  });

  it('prepareEmulation passes the --overlay path through the same escaping', () => {
    const dir = tempDir();
    const image = join(dir, 'card.img');
    const env = createImage('bootcmd=boot\n', { size: 0x4000, pad: 0 });
    writeSparseImage(image, 128 << 20, cardExtents(smallLayout(4, 64, 1), [{ path: 'uboot.env', data: env }, { path: 'u-boot.bin', data: Buffer.from('uboot') }]));
    const overlay = join(dir, 'my,card.qcow2');
    const e = prepareEmulation(image, getBoard('qemu-virt').profile, { overlay, qemu: fakeQemu('10.0.2', ['virt']) });
    try {
      assert.ok(e.args.includes(`file=${overlay.replace(',', ',,')},if=none,format=qcow2,cache=writethrough,id=card`), e.args.join(' '));
    } finally {
      e.cleanup();
    }
  });
});

describe('emulate: the board network', () => {
  const code = (c: string) => (e: unknown) => e instanceof BspError && e.code === c;

  it('restricted user networking with the profile NIC, forwards on 127.0.0.1 only; --no-net removes the card', () => {
    const rpi = getBoard('rpi3b').profile;
    assert.deepEqual(networkArgs(rpi, { forward: [parseForward('2222:22'), { host: 8080, board: 80 }] }), ['-netdev', 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8080-:80', '-device', 'usb-net,netdev=net0']);
    assert.deepEqual(networkArgs(getBoard('qemu-virt').profile, undefined), ['-netdev', 'user,id=net0,restrict=on', '-device', 'virtio-net-device,netdev=net0']);
    assert.deepEqual(networkArgs(rpi, false), ['-nic', 'none']);
    assert.deepEqual(networkArgs(getBoard('qemu-virt').profile, { mac: '52:54:00:AB:00:02' }).slice(2), ['-device', 'virtio-net-device,netdev=net0,mac=52:54:00:ab:00:02'], 'a board of its own (--mac)');
    for (const mac of ['53:54:00:00:00:01', '52:54:00:00:01', '52-54-00-00-00-01']) assert.throws(() => networkArgs(rpi, { mac }), code('EUSAGE'), mac);
    assert.deepEqual(networkArgs(getBoard('rpi4b').profile, {}), ['-netdev', 'user,id=net0,restrict=on', '-device', 'usb-net,netdev=net0'], 'usb-net on the dwc2 the overlay puts in host mode');
    const p4 = getBoard('rpi4b').profile;
    const noNic = { ...p4, emulation: { qemu: { ...p4.emulation!.qemu, nic: undefined } } };
    assert.deepEqual(networkArgs(noNic, {}), ['-nic', 'none'], 'no emulated NIC in the profile');
    assert.throws(() => networkArgs(noNic, { forward: [{ host: 1, board: 2 }] }), code('EUSAGE'));
    assert.throws(() => parseForward('22'), code('EUSAGE'));
    assert.deepEqual(networkArgs(rpi, { forward: [parseForward('5353:5353/udp'), parseForward('2222:22/tcp')] }).slice(0, 2), ['-netdev', 'user,id=net0,restrict=on,hostfwd=udp:127.0.0.1:5353-:5353,hostfwd=tcp:127.0.0.1:2222-:22']);
    assert.throws(() => parseForward('53:53/sctp'), code('EUSAGE'));
    assert.throws(() => networkArgs(rpi, { forward: [{ host: 70000, board: 22 }] }), code('EUSAGE'));
  });

  it('emulate --service and --ssh reach the QEMU command line (--dry-run)', async () => {
    const dir = tempDir();
    const image = join(dir, 'card.img');
    const env = createImage('bootcmd=boot\n', { size: 0x4000, pad: 0 });
    writeSparseImage(image, 128 << 20, cardExtents(smallLayout(4, 64, 1), [{ path: 'uboot.env', data: env }, { path: 'u-boot.bin', data: Buffer.from('uboot') }]));
    const r = await runCli('emulate', image, '--board', 'qemu-virt', '--service', '80:4873', '--ssh', '--dry-run');
    assert.equal(r.code, 0, r.err);
    const netdev = r.out.split(/\s+/).find((a) => a.includes('restrict=on'))!;
    assert.match(netdev, /hostfwd=tcp:127\.0\.0\.1:\d+-:22/, '--ssh forwards a port of 127.0.0.1 to 22');
    assert.match(netdev, /guestfwd=tcp:10\.0\.2\.100:80-cmd:/, '--service 80:4873');
    assert.match(r.out, /host:"127\.0\.0\.1",,port:4873/, 'relayed to 127.0.0.1:4873');
  });

  it('services: the board reaches 127.0.0.1 ports only through guestfwd to 10.0.2.100, one relay per connection', async () => {
    const args = networkArgs(getBoard('qemu-virt').profile, { services: [parseService('80:4873')] });
    const netdev = args[1]!;
    assert.match(netdev, /^user,id=net0,restrict=on,guestfwd=tcp:10\.0\.2\.100:80-cmd:/);
    // The relay's own commas are doubled, so it cannot add options to -netdev.
    assert.deepEqual(netdev.replace(/,,/g, '').split(',').map((o) => o.split(/[=:]/)[0]), ['user', 'id', 'restrict', 'guestfwd']);
    assert.equal(netdev.split('-cmd:')[1]!.replace(/,,/g, ','), relayCommand(4873));
    assert.throws(() => parseService('80'), code('EUSAGE'));
    // The relay joins its stdin/stdout to 127.0.0.1:port, as QEMU runs it for each connection.
    const srv = createServer((sock) => sock.on('data', (d) => sock.end(`echo ${d}`)));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      // Asynchronously: the server answers from this process.
      const p = spawn('sh', ['-c', relayCommand((srv.address() as { port: number }).port)]);
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stdin.end('ping');
      assert.equal(await new Promise((r) => p.on('close', r)), 0);
      assert.equal(out, 'echo ping');
    } finally {
      srv.close();
    }
  });
});
