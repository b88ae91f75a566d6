/** QEMU's human monitor (HMP) on a unix socket, for tests that change devices or links. */
import { createConnection } from 'node:net';

/** Send one HMP command to QEMU's monitor socket and return its reply. */
export async function monitor(sock: string, command: string): Promise<string> {
  const s = createConnection(sock);
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise((r) => s.once('connect', r));
  await new Promise((r) => setTimeout(r, 300));
  s.write(`${command}\n`);
  await new Promise((r) => setTimeout(r, 500));
  s.destroy();
  return text;
}

/** Send several HMP commands over one connection, `gapMs` apart (e.g. keys typed with sendkey). */
export async function monitorAll(sock: string, commands: string[], gapMs = 150): Promise<string> {
  const s = createConnection(sock);
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise((r) => s.once('connect', r));
  await new Promise((r) => setTimeout(r, 300));
  for (const c of commands) {
    s.write(`${c}\n`);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  await new Promise((r) => setTimeout(r, 300));
  s.destroy();
  return text;
}
