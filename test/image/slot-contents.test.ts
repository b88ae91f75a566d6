/** What the system slot leaves out (build-time-only files) and how its contents are reported. */
import assert from 'node:assert/strict';
import { buildOnly, slotContents } from '../../src/image/initramfs.js';

describe('system slot contents', () => {
  it('leaves out C/C++ sources, headers and gyp files, and npm\'s man pages and HTML manual; keeps what runs', () => {
    for (const gone of ['nan/nan.h', 'i2c-bus/src/i2c.cc', 'cpu-features/deps/cpu_features/src/impl_aarch64_linux_or_android.c', 'epoll/binding.gyp', 'node-addon-api/common.gypi', 'npm/man/man1/npm-install.1', 'npm/docs/output/commands/npm-install.html']) assert.ok(buildOnly(gone), gone);
    for (const kept of ['epoll/build/Release/epoll.node', 'npm/docs/content/commands/npm-install.md', 'nan/package.json', 'ssh2/lib/client.js', 'npm/lib/cli.js', 'cpu-features/build/Release/cpufeatures.node', 'node-gyp-build/index.js', 'npm/node_modules/node-gyp/gyp/pylib/gyp/generator/make.py']) assert.ok(!buildOnly(kept), kept);
  });

  it('sums the files by part, largest first: node, each package, kernel modules, libraries, tools, the runtime', () => {
    const f = (path: string, n: number) => ({ path, type: 'file' as const, data: Buffer.alloc(n) });
    const parts = slotContents([
      f('bin/node', 1000),
      f('usr/lib/node_modules/npm/lib/cli.js', 300),
      f('usr/lib/node_modules/npm/package.json', 50),
      f('usr/lib/node_modules/@serialport/bindings-cpp/x.node', 120),
      f('usr/lib/modules/6.12/kernel/x.ko', 200),
      f('usr/lib/aarch64-linux-gnu/libc.so.6', 400),
      f('bin/busybox', 90),
      f('usr/lib/nodeos/runtime/init.js', 150),
      f('usr/lib/nodeos/apps/sensor/index.js', 10),
      { path: 'bin/sh', type: 'symlink' as const, target: 'busybox' },
    ]);
    assert.deepEqual(parts, [
      { part: 'node', bytes: 1000 },
      { part: 'libraries', bytes: 400 },
      { part: 'node_modules/npm', bytes: 350 },
      { part: 'kernel modules', bytes: 200 },
      { part: 'nodeos runtime', bytes: 150 },
      { part: 'node_modules/@serialport/bindings-cpp', bytes: 120 },
      { part: 'tools (busybox, mke2fs, partx, wpa_supplicant)', bytes: 90 },
      { part: 'app sensor', bytes: 10 },
    ]);
  });
});
