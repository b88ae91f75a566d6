/**
 * A real Mosquitto (Debian's) for fleet tests: a CA and a server certificate for 127.0.0.1 (and 10.0.2.100, for emulated boards)
 * (openssl), users in a password file (mosquitto_passwd), the config and ACL that
 * `fleet broker-config` makes, listening on a free loopback port. Nothing listens elsewhere.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { HOST_SERVICE_ADDRESS } from '../../src/emulate/index.js';
import { mosquittoConfig } from '../../src/fleet/index.js';

export interface TestBroker {
  /** Mosquitto's process (through exec). */
  pid: number;
  url: string;
  port: number;
  /** The CA the clients pin (PEM). */
  ca: Buffer;
  /** The broker's files (config, ACL, password file, certificates). */
  dir: string;
  password: (user: string) => string;
  stop: () => Promise<void>;
  log: () => string;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

const listening = async (port: number, ms: number): Promise<void> => {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1', () => (c.end(), r(true)));
      c.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** Make a CA and a server certificate for 127.0.0.1 and for the address emulated boards reach this machine's services at, in `dir`. */
export function makeTestCa(dir: string, name = 'ca'): { ca: string; cert: string; key: string } {
  const p = (f: string): string => join(dir, `${name}-${f}`);
  const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', `/CN=nodeos test ${name}`]);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(p('ext'), `subjectAltName=IP:127.0.0.1,IP:${HOST_SERVICE_ADDRESS}\n`);
  run(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('ext')]);
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

/** Start Mosquitto for `fleet` with these boards (user name = board id) and a `controller` user. */
export async function startBroker(dir: string, fleet: string, boards: { board: string; groups: string[] }[], o: { verbose?: boolean } = {}): Promise<TestBroker> {
  const tls = makeTestCa(dir);
  const passwordFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  const users = ['controller', ...boards.map((b) => b.board)];
  const password = (u: string): string => `pw-${u}-${u.length * 7919}`;
  // user:password lines, hashed in place by one mosquitto_passwd run (-U), however many boards.
  writeFileSync(passwordFile, users.map((u) => `${u}:${password(u)}\n`).join(''));
  execFileSync('mosquitto_passwd', ['-U', passwordFile], { stdio: 'ignore' });
  const port = await freePort();
  const { conf, acl } = mosquittoConfig({ fleet, boards, port, bind: '127.0.0.1', cafile: tls.ca, certfile: tls.cert, keyfile: tls.key, passwordFile, aclFile });
  writeFileSync(aclFile, acl);
  writeFileSync(join(dir, 'mosquitto.conf'), conf);
  // Started as root, Mosquitto runs as its own user: it must be able to read the test's files.
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  let out = '';
  // One connection per board: more than the default 1024 open files for a large simulated fleet.
  const child: ChildProcess = spawn('sh', ['-c', `ulimit -n ${Math.max(1024, boards.length + 256)} 2>/dev/null; exec mosquitto -c "$1" ${o.verbose === false ? '' : '-v'}`, 'sh', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  // The log is kept for failures; a large fleet's verbose log is not.
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await Promise.race([listening(port, 10_000), exited.then(() => Promise.reject(new Error(`mosquitto exited: ${out}`)))]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    pid: child.pid!,
    url: `mqtts://127.0.0.1:${port}`,
    port,
    ca: readFileSync(tls.ca),
    dir,
    password,
    log: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
