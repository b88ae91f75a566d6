/**
 * The gadget's network as init starts it (src/runtime/usb-gadget.ts: the board's address,
 * the DHCP server on 0.0.0.0:67 answering to the link's broadcast), run by the interop test
 * inside a network namespace on `iface` (a veth standing in for usb0). The configfs tree and
 * the UDC are a temporary directory, and the "kernel" names the function's interface `iface`.
 * Events go to stdout as JSON lines (`log`, `leases`); stdin takes `leases` and `stop`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { getBoard } from '../../src/boards/index.js';
import { startGadgetNetwork } from '../../src/runtime/usb-gadget.js';

const [iface, boardId] = [process.argv[2]!, process.argv[3]!];
const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const root = mkdtempSync(join(tmpdir(), 'nodeos-gadget-'));
mkdirSync(join(root, 'config/usb_gadget'), { recursive: true });
mkdirSync(join(root, 'udc/3f980000.usb'), { recursive: true });
const naming = setInterval(() => {
  const dir = join(root, 'config/usb_gadget/nodeos/functions/ncm.usb0');
  if (existsSync(join(root, 'config/usb_gadget/nodeos/UDC'))) writeFileSync(join(dir, 'ifname'), `${iface}\n`);
}, 20);
const g = await startGadgetNetwork({
  profile: getBoard(boardId).profile,
  serial: '00000000c0ffee01',
  log: (msg) => say({ type: 'log', msg }),
  ip: (args) => {
    const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
    return r.status === 0 ? undefined : r.stderr.trim() || `exit ${r.status}`;
  },
  configfs: join(root, 'config'),
  udcDir: join(root, 'udc'),
});
clearInterval(naming);
if (!g) {
  say({ type: 'error', error: 'the gadget network did not start' });
  process.exit(1);
}
say({ type: 'ready', iface: g.iface, address: g.address });
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'leases') say({ type: 'leases', leases: Object.fromEntries(g.server.leases) });
  if (line === 'stop') {
    g.server.close();
    rmSync(root, { recursive: true, force: true });
    process.exit(0);
  }
}
