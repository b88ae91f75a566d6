/** A fleet job's bundle download: resumed with Range after a cut or a reboot, checked before it is kept. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { downloadResumable } from '../../src/fleet/download.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

const body = randomBytes(300_000);
const sha = createHash('sha256').update(body).digest('hex');

/** A file server; `cutAt` ends the first response after that many bytes; `ranges: false` ignores Range. */
async function serve(o: { cutAt?: number; ranges?: boolean; status?: number; data?: Buffer } = {}): Promise<{ url: string; server: Server; requests: (string | undefined)[] }> {
  const data = o.data ?? body;
  const requests: (string | undefined)[] = [];
  let cut = o.cutAt;
  const server = createServer((req, res) => {
    requests.push(req.headers.range);
    if (o.status) return res.writeHead(o.status).end();
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = m && o.ranges !== false ? Number(m[1]) : 0;
    if (from >= data.length) return res.writeHead(416).end();
    res.writeHead(from ? 206 : 200, { 'content-length': data.length - from, ...(from ? { 'content-range': `bytes ${from}-${data.length - 1}/${data.length}` } : {}) });
    if (cut !== undefined) {
      const n = cut;
      cut = undefined;
      res.write(data.subarray(from, from + n), () => res.destroy());
      return;
    }
    res.end(data.subarray(from));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/b.nodeos-update`, server, requests };
}

describe('fleet: resumable bundle download', () => {
  after(cleanupTemp);

  it('downloads, reports progress, checks the SHA-256 and renames into place', async () => {
    const { url, server } = await serve();
    const file = join(tempDir(), 'b');
    const seen: number[] = [];
    try {
      const r = await downloadResumable({ url, file, sha256: sha, size: body.length, onPercent: (p) => seen.push(p) });
      assert.deepEqual(r, { file, size: body.length, resumedFrom: 0 });
      assert.ok(readFileSync(file).equals(body));
      assert.equal(seen.at(-1), 100);
      assert.ok(!existsSync(`${file}.partial`));
    } finally {
      server.close();
    }
  });

  it('a connection cut in the middle is resumed with a Range request from the byte it stopped at', async () => {
    const { url, server, requests } = await serve({ cutAt: 100_000 });
    const file = join(tempDir(), 'b');
    try {
      await downloadResumable({ url, file, sha256: sha, size: body.length, retryMs: 10 });
      assert.deepEqual(requests, [undefined, 'bytes=100000-']);
      assert.ok(readFileSync(file).equals(body));
    } finally {
      server.close();
    }
  });

  it('a partial file left by a reboot is resumed; a server that ignores Range is read again from the start', async () => {
    const dir = tempDir();
    const file = join(dir, 'b');
    writeFileSync(`${file}.partial`, body.subarray(0, 123_456));
    const a = await serve();
    try {
      const r = await downloadResumable({ url: a.url, file, sha256: sha, size: body.length });
      assert.equal(r.resumedFrom, 123_456);
      assert.deepEqual(a.requests, ['bytes=123456-']);
    } finally {
      a.server.close();
    }
    const file2 = join(dir, 'c');
    writeFileSync(`${file2}.partial`, body.subarray(0, 5000));
    const b = await serve({ ranges: false });
    try {
      await downloadResumable({ url: b.url, file: file2, sha256: sha, size: body.length });
      assert.ok(readFileSync(file2).equals(body), 'the whole body, not the old bytes twice');
    } finally {
      b.server.close();
    }
  });

  it('refusals: another SHA-256 (the partial file goes), an HTTP 404 (no retry), a body larger than the job says', async () => {
    const a = await serve();
    const dir = tempDir();
    try {
      const e = await downloadResumable({ url: a.url, file: join(dir, 'x'), sha256: 'f'.repeat(64), size: body.length }).catch((err: Error) => err);
      assert.equal((e as { code?: string }).code, 'EFLEET_CHECKSUM');
      assert.match((e as Error).message, new RegExp(`its SHA-256 is ${sha}, the job says f{64}: not installed`));
      assert.ok(!existsSync(join(dir, 'x.partial')) && !existsSync(join(dir, 'x')));
      const big = await downloadResumable({ url: a.url, file: join(dir, 'y'), sha256: sha, size: 1000 }).catch((err: Error) => err);
      assert.match((big as Error).message, /larger than the 1000 bytes the job says/);
      assert.ok(!existsSync(join(dir, 'y.partial')));
    } finally {
      a.server.close();
    }
    const missing = await serve({ status: 404 });
    try {
      const e = await downloadResumable({ url: missing.url, file: join(dir, 'z'), sha256: sha, retryMs: 10 }).catch((err: Error) => err);
      assert.match((e as Error).message, /HTTP 404/);
      assert.equal(missing.requests.length, 1, 'a 404 is not retried');
    } finally {
      missing.server.close();
    }
  });

  it('a server that keeps failing: EFLEET_DOWNLOAD after the tries, the bytes kept for the next one', async () => {
    const { url, server, requests } = await serve({ status: 503 });
    const file = join(tempDir(), 'b');
    try {
      const e = await downloadResumable({ url, file, sha256: sha, size: body.length, attempts: 3, retryMs: 10 }).catch((err: Error) => err);
      assert.equal((e as { code?: string }).code, 'EFLEET_DOWNLOAD');
      assert.match((e as Error).message, /HTTP 503; 0 of 300000 bytes after 3 tries \(kept: the next try resumes\)/);
      assert.equal(requests.length, 3);
    } finally {
      server.close();
    }
  });
});
