/** Run the CLI in-process and capture what it prints. */
import { main } from '../../src/cli/index.js';
import type { Io } from '../../src/cli/output.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function runCli(...argv: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), color: false };
  const saved = process.exitCode;
  process.exitCode = undefined;
  const code = await main(argv, io);
  process.exitCode = saved;
  return { code, out, err };
}
