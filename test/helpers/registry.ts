/**
 * A tiny npm registry on this machine's loopback for the emulated board: packuments and
 * tarballs made with the real `npm pack`, tarball URLs at the address the board uses, and a
 * `Date` header the test chooses (the board's HTTP time source).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { tempDir } from './tmp.js';

export interface TestPackage {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  /** index.js */
  main: string;
  /** More files in the package, by path (e.g. binding.gyp, prebuilds/linux-arm64/x.node). */
  files?: Record<string, string | Buffer>;
  scripts?: Record<string, string>;
  /** package.json "bin" (command name → file in the package). */
  bin?: Record<string, string>;
}

export interface TestRegistry {
  port: number;
  /** Requests served, e.g. `GET /nodeos-greet`. */
  log: string[];
  close(): Promise<void>;
}

/** Serve `packages` on 127.0.0.1; tarball URLs start with `boardUrl` (what the board sees). */
export async function startRegistry(packages: TestPackage[], boardUrl: string, date: () => Date = () => new Date()): Promise<TestRegistry> {
  const dir = tempDir('nodeos-registry-');
  const docs = new Map<string, unknown>();
  const tarballs = new Map<string, Buffer>();
  for (const p of packages) {
    const src = join(dir, `${p.name}-src`);
    mkdirSync(src);
    writeFileSync(join(src, 'package.json'), JSON.stringify({ name: p.name, version: p.version, main: 'index.js', license: 'MIT', ...(p.dependencies ? { dependencies: p.dependencies } : {}), ...(p.scripts ? { scripts: p.scripts } : {}), ...(p.bin ? { bin: p.bin } : {}) }));
    writeFileSync(join(src, 'index.js'), p.main);
    for (const [name, data] of Object.entries(p.files ?? {})) {
      mkdirSync(dirname(join(src, name)), { recursive: true });
      writeFileSync(join(src, name), data);
    }
    const file = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: src, encoding: 'utf8' }).trim().split('\n').pop()!;
    const data = readFileSync(join(dir, file));
    const path = `/${p.name}/-/${p.name}-${p.version}.tgz`;
    tarballs.set(path, data);
    docs.set(`/${p.name}`, {
      name: p.name,
      'dist-tags': { latest: p.version },
      versions: {
        [p.version]: {
          name: p.name,
          version: p.version,
          main: 'index.js',
          ...(p.dependencies ? { dependencies: p.dependencies } : {}),
          ...(p.scripts ? { scripts: p.scripts } : {}),
          ...(p.bin ? { bin: p.bin } : {}),
          ...(p.scripts?.install || p.scripts?.preinstall || p.scripts?.postinstall ? { hasInstallScript: true } : {}),
          dist: {
            tarball: `${boardUrl.replace(/\/$/, '')}${path}`,
            shasum: createHash('sha1').update(data).digest('hex'),
            integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
          },
        },
      },
    });
  }
  const log: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    log.push(`${req.method} ${url}`);
    res.setHeader('Date', date().toUTCString());
    const doc = docs.get(url);
    const tgz = tarballs.get(url);
    if (doc) {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(doc));
    } else if (tgz) {
      res.setHeader('Content-Type', 'application/octet-stream');
      res.end(tgz);
    } else if (url === '/') {
      res.end('nodeos test registry\n');
    } else {
      res.statusCode = 404;
      res.end('{"error":"not found"}');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    log,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
