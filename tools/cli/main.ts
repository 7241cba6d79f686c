/**
 * The `signet` command line: a yargs root with global options and one small CommandModule per
 * command (tools/cli/commands). Commands parse input, call the core library, print the result.
 * Every usage problem (no command, an unknown command or option, a missing argument) becomes an
 * E_USAGE SignetError, reported like every other error.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EXIT, SignetError, toSignetError } from '../lib/errors.ts';
import { logger } from '../lib/log.ts';
import { packageVersion } from '../lib/paths.ts';
import { redact } from '../lib/redact.ts';
import { commands } from './commands/index.ts';

/** Global options that take a value (`--cwd DIR`), for finding the command word in argv. */
const VALUED_GLOBALS = new Set(['--cwd', '--config']);
const COMMAND_NAMES = commands.map((c) => String(c.command ?? '').split(/\s/)[0] ?? '');
COMMAND_NAMES.push('completion');

export function buildParser(argv: string[]): Argv {
  let parser = yargs(argv)
    .scriptName('signet')
    .usage('$0 <command> [options]')
    .option('cwd', { type: 'string', describe: 'Run as if started in this directory' })
    .option('config', { type: 'string', describe: 'Path of signet.config.yaml or .json' })
    .option('json', { type: 'boolean', default: false, describe: 'Print machine-readable JSON on stdout' })
    .option('verbose', {
      type: 'boolean',
      default: false,
      describe: 'Print details (commands run, ignored tags, …)',
    })
    .option('color', {
      type: 'boolean',
      default: true,
      describe: 'Colour output (--no-color, or set NO_COLOR)',
    })
    .strictCommands()
    .strictOptions()
    .demandCommand(1, 'Name a command; see --help.')
    .recommendCommands()
    .completion(
      'completion',
      'Print a bash/zsh completion script (add `source <(signet completion)` to ~/.bashrc)',
    )
    .help()
    .alias('h', 'help')
    .version(false)
    .epilogue('Signet --version prints the version; `signet init` sets up a repository.')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      // a handler's error passes through; a message is yargs' own validation (usage)
      if (error) throw error;
      throw usageError(message ?? 'invalid usage', argv);
    });
  for (const command of commands) parser = parser.command(command);
  return parser;
}

/** The first word of argv that is not an option (nor a global option's value): the command. */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (VALUED_GLOBALS.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/** Turns a yargs validation message into E_USAGE with a hint that says the fix. */
export function usageError(message: string, argv: readonly string[]): SignetError {
  const word = commandWord(argv);
  const known = word !== undefined && COMMAND_NAMES.includes(word) ? word : undefined;
  const commandHelp = known ? `signet ${known} --help` : 'signet --help';
  const suggestion = /^Did you mean (\S+?)\?$/.exec(message)?.[1];
  if (suggestion || /^Unknown command/.test(message))
    return new SignetError('E_USAGE', `unknown command "${word ?? ''}"`, {
      hint: suggestion
        ? `Did you mean \`signet ${suggestion}\`? \`signet --help\` lists the commands.`
        : 'Run `signet --help` to list the commands.',
      details: { command: word ?? null, ...(suggestion ? { suggestion } : {}) },
    });
  if (/^Name a command/.test(message)) {
    // names only: a value (`--password=…`) may be a secret
    const unknown = argv
      .filter((a) => a.startsWith('-') && !isGlobalOption(a))
      .map((a) => a.replace(/=.*$/s, ''));
    if (unknown.length)
      return new SignetError('E_USAGE', `unknown option ${unknown.join(', ')}`, {
        hint: "Run `signet --help` for the commands and global options (a command's own options go after it).",
        details: { command: null, unknown },
      });
    return new SignetError('E_USAGE', 'no command given', {
      hint: 'Name a command: `signet --help` lists them (`signet init` sets up a repository).',
      details: { command: null },
    });
  }
  const unknownArgs = /^Unknown arguments?: (.+)$/.exec(message)?.[1];
  if (unknownArgs) {
    const names = unknownArgs.split(', ').map((n) => (n.length === 1 ? `-${n}` : `--${n}`));
    return new SignetError(
      'E_USAGE',
      `unknown ${names.length > 1 ? 'options' : 'option'} ${names.join(', ')}`,
      {
        hint: `Run \`${commandHelp}\` for the accepted options.`,
        details: { command: known ?? null, unknown: names },
      },
    );
  }
  return new SignetError('E_USAGE', message, {
    hint: `Run \`${commandHelp}\` for the accepted options and arguments.`,
    details: { command: known ?? null },
  });
}

function isGlobalOption(a: string): boolean {
  const name = a.replace(/=.*$/, '');
  return [
    '--cwd',
    '--config',
    '--json',
    '--no-json',
    '--verbose',
    '--no-verbose',
    '--color',
    '--no-color',
    '--help',
    '-h',
  ].includes(name);
}

export function reportError(e: unknown, json: boolean): number {
  const err = toSignetError(e);
  if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
  logger.error(`[${err.code}] ${err.message}\n  hint: ${err.hint}`);
  if (err.code === 'E_INTERNAL' && e instanceof Error && e.stack) logger.debug(redact(e.stack));
  return err.exitCode;
}

export async function main(argv: string[] = hideBin(process.argv)): Promise<number> {
  const json = argv.includes('--json');
  if (commandWord(argv) === undefined && argv.includes('--version')) {
    process.stdout.write(
      json ? `${JSON.stringify({ version: packageVersion() })}\n` : `${packageVersion()}\n`,
    );
    return EXIT.ok;
  }
  const parser = buildParser(argv);
  try {
    await parser.parseAsync();
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    if (e instanceof SignetError && e.code === 'E_USAGE' && e.details['command'] === null)
      process.stderr.write(`${await parser.getHelp()}\n\n`);
    return reportError(e, json);
  }
}
