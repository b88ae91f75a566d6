/**
 * `nodeos-bsp completion bash|zsh|fish` prints a script for the shell; the script asks
 * `nodeos-bsp __complete WORD...` for the candidates at each TAB, so commands, options, board
 * ids (after a `--board <id>`) and removable drives (after `--device`) always match the
 * installed kit and the machine as it is now. Where nothing is offered the shell completes
 * file names.
 */
import type { Command, Option } from 'commander';
import { loadBoards } from '../boards/index.js';
import { UsageError } from '../errors.js';
import { candidateDrives, listDrives } from '../../flash/drives.js';
import type { Io } from './output.js';

export interface CompletionSources {
  boards(): string[];
  drives(): string[];
}

const takesValue = (o: Option): boolean => o.required || o.optional;

function findOption(cmd: Command, word: string): Option | undefined {
  const flag = word.split('=')[0]!;
  for (let c: Command | null = cmd; c; c = c.parent) {
    const o = c.options.find((x) => x.long === flag || x.short === flag);
    if (o) return o;
  }
  return undefined;
}

const visible = (cmd: Command): Command[] => cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);

/**
 * The candidates for the last of `words` (the words after `nodeos-bsp`; the last is the one
 * being completed, possibly empty), from the program's own commands and options.
 */
export function complete(program: Command, words: string[], sources: CompletionSources): string[] {
  let cmd = program;
  const done = words.slice(0, -1);
  const cur = words.at(-1) ?? '';
  for (let i = 0; i < done.length; i++) {
    const w = done[i]!;
    if (w === '--') break;
    if (w.startsWith('-')) {
      const o = findOption(cmd, w);
      if (o && takesValue(o) && !w.includes('=') && w.length > 1) i++;
      continue;
    }
    const sub = visible(cmd).find((c) => c.name() === w || c.aliases().includes(w));
    if (sub) cmd = sub;
  }
  const prev = done.at(-1);
  const pending = prev?.startsWith('-') && !prev.includes('=') ? findOption(cmd, prev) : undefined;
  let out: string[];
  if (pending && takesValue(pending)) {
    if (pending.long === '--board' && /<id>/.test(pending.flags)) out = sources.boards();
    else if (pending.long === '--device') out = sources.drives();
    else out = [];
  } else if (cur.startsWith('-')) {
    const opts: string[] = [];
    for (let c: Command | null = cmd; c; c = c.parent) for (const o of c.options) opts.push(...[o.long, o.short].filter((x): x is string => Boolean(x)));
    out = [...new Set([...opts, '--help'])];
  } else {
    out = visible(cmd).map((c) => c.name());
  }
  return out.filter((c) => c.startsWith(cur)).sort();
}

/** The shell's side: one function that asks `nodeos-bsp __complete` and falls back to file names. */
export function completionScript(shell: string): string {
  switch (shell) {
    case 'bash':
      return `# nodeos-bsp completion for bash: source it, or put it in /etc/bash_completion.d/nodeos-bsp
_nodeos_bsp() {
  local IFS=$'\\n' cur="\${COMP_WORDS[COMP_CWORD]}"
  COMPREPLY=($(nodeos-bsp __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
  if [ \${#COMPREPLY[@]} -eq 0 ]; then COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -o filenames -F _nodeos_bsp nodeos-bsp
`;
    case 'zsh':
      return `#compdef nodeos-bsp
# nodeos-bsp completion for zsh: put it in a directory of $fpath as _nodeos-bsp, or source it
_nodeos_bsp() {
  local -a c
  c=("\${(@f)$(nodeos-bsp __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  c=(\${c:#})
  if (( \${#c} )); then compadd -- "\${c[@]}"; else _files; fi
}
compdef _nodeos_bsp nodeos-bsp
`;
    case 'fish':
      return `# nodeos-bsp completion for fish: put it in ~/.config/fish/completions/nodeos-bsp.fish
function __nodeos_bsp_complete
    set -l words (commandline -opc)[2..-1] (commandline -ct)
    nodeos-bsp __complete -- $words 2>/dev/null
end
complete -c nodeos-bsp -f -a '(__nodeos_bsp_complete)'
complete -c nodeos-bsp -n 'test -z "(__nodeos_bsp_complete)"' -F
`;
    default:
      throw new UsageError(`no completion for the shell "${shell}": bash, zsh or fish`);
  }
}

export function registerCompletion(program: Command, io: Io, full: () => Promise<Command>): void {
  program
    .command('completion')
    .argument('<shell>', 'bash, zsh or fish')
    .description('print the shell completion script (commands, options, board ids, removable drives)')
    .addHelpText(
      'after',
      `
Examples:
  $ nodeos-bsp completion bash | sudo tee /etc/bash_completion.d/nodeos-bsp
  $ source <(nodeos-bsp completion bash)
  $ nodeos-bsp completion zsh > "\${fpath[1]}/_nodeos-bsp"
  $ nodeos-bsp completion fish > ~/.config/fish/completions/nodeos-bsp.fish`,
    )
    .action((shell: string) => io.out(completionScript(shell)));
  program
    .command('__complete', { hidden: true })
    .argument('[words...]')
    .allowUnknownOption()
    .helpOption(false)
    .action(async (words: string[]) => {
      const sources: CompletionSources = {
        boards: () => loadBoards().boards.map((b) => b.profile.id),
        drives: () => {
          try {
            return candidateDrives(listDrives()).map((d) => d.device);
          } catch {
            return [];
          }
        },
      };
      io.out(complete(await full(), words.length ? words : [''], sources).map((c) => `${c}\n`).join(''));
    });
}
