/** `docs`: regenerate the generated parts of the README and the profile JSON Schema. */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { staleGeneratedFiles } from '../boards/generated-docs.js';
import type { Io } from './output.js';

export function registerDocs(program: Command, io: Io): void {
  program
    .command('docs')
    .description("regenerate the README's boards table and boards/board-profile.schema.json")
    .option('--write', 'write the files (default: exit 1 if they are out of date)')
    .addHelpText('after', '\nExamples:\n  $ nodeos-bsp docs           # check\n  $ nodeos-bsp docs --write   # regenerate (npm run docs)')
    .action((o: { write?: boolean }) => {
      const stale = staleGeneratedFiles();
      if (o.write) {
        for (const f of stale) writeFileSync(f.path, f.text);
        io.out(stale.length ? `updated ${stale.map((f) => f.path).join(', ')}\n` : 'up to date\n');
      } else if (stale.length) {
        io.err(`out of date: ${stale.map((f) => f.path).join(', ')}; run npm run docs [EDOCS_STALE]\n`);
        process.exitCode = 1;
      } else io.out('up to date\n');
    });
}
