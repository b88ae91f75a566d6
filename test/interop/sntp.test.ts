/**
 * The board's SNTP client (src/net/sntp.ts) against chrony from Debian, in network namespaces
 * this test makes: chrony serves its own clock (-x: this machine's clock is never touched).
 * Root only (namespaces), as CI runs.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsPair, stopChild, type NetnsPair } from '../helpers/netns.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';
import { isRoot, requireTool } from '../helpers/tools.js';

describe('interop: SNTP against chrony (network namespaces)', function () {
  this.timeout(60000);
  let dir: string;
  let pair: NetnsPair;
  let chrony: ChildProcess | undefined;

  before(function () {
    if (!isRoot()) this.skip();
    requireTool('chronyd', ['--version'], 'chrony');
    dir = tempDir();
    pair = netnsPair('10.66.0.1/24');
    pair.run(pair.board, 'ip', 'addr', 'add', '10.66.0.99/24', 'dev', 'vc');
  });

  after(async () => {
    await stopChild(chrony);
    pair?.remove();
    cleanupTemp();
  });

  const ask = (server: string): { offsetMs?: number; stratum?: number; error?: string } => {
    const script = `import { sntpQuery } from ${JSON.stringify(fileURLToPath(new URL('../../src/net/sntp.ts', import.meta.url)))}; sntpQuery(${JSON.stringify(server)}, { timeoutMs: 2000 }).then((s) => console.log(JSON.stringify(s)), (e) => console.log(JSON.stringify({ error: e.code + ' ' + e.message })));`;
    const out = execFileSync('ip', ['netns', 'exec', pair.board, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script]).toString().trim();
    return JSON.parse(out.split('\n').at(-1)!) as { offsetMs?: number; stratum?: number; error?: string };
  };

  it("the offset of the same clock and the server's stratum; a silent server is a clear error", async () => {
    const conf = join(dir, 'chrony.conf');
    writeFileSync(conf, ['local stratum 8', 'allow 10.66.0.0/24', 'bindaddress 10.66.0.1', 'port 123', 'cmdport 0', `pidfile ${join(dir, 'chronyd.pid')}`, `driftfile ${join(dir, 'drift')}`, ''].join('\n'));
    chrony = pair.spawn(pair.peer, ['chronyd', '-d', '-x', '-f', conf]);
    let r = ask('10.66.0.1');
    for (let i = 0; i < 10 && r.error; i++) {
      await new Promise((res) => setTimeout(res, 1000));
      r = ask('10.66.0.1');
    }
    assert.equal(r.error, undefined, r.error);
    assert.ok(Math.abs(r.offsetMs!) < 500, `offset ${r.offsetMs} ms from the same clock`);
    assert.equal(r.stratum, 8);
    await stopChild(chrony);
    const silent = ask('10.66.0.1');
    assert.match(silent.error ?? '', /^ESNTP_TIMEOUT ntp 10\.66\.0\.1:123: no answer in 2000 ms/, JSON.stringify(silent));
  });
});
