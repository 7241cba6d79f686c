/**
 * The `signet` command line: a yargs root with global options and one small CommandModule per
 * command (tools/cli/commands). Commands parse input, call the core library, print the result.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EXIT, isSignetError, toSignetError } from '../lib/errors.ts';
import { logger } from '../lib/log.ts';
import { redact } from '../lib/redact.ts';
import { commands } from './commands/index.ts';

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
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail(false);
  for (const command of commands) parser = parser.command(command);
  return parser;
}

export function reportError(e: unknown, json: boolean): number {
  if (
    e instanceof Error &&
    !isSignetError(e) &&
    (e.name === 'YError' ||
      /^(Unknown|Not enough|Missing required|Invalid values|Unknown argument)/.test(e.message))
  ) {
    const msg = redact(e.message);
    if (json) process.stdout.write(`${JSON.stringify({ error: { code: 'E_USAGE', message: msg } })}\n`);
    logger.error(`[E_USAGE] ${msg}\n  hint: run \`signet --help\` or \`signet <command> --help\``);
    return EXIT.usage;
  }
  const err = toSignetError(e);
  if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
  logger.error(`[${err.code}] ${err.message}\n  hint: ${err.hint}`);
  if (err.code === 'E_INTERNAL' && e instanceof Error && e.stack) logger.debug(redact(e.stack));
  return err.exitCode;
}

export async function main(argv: string[] = hideBin(process.argv)): Promise<number> {
  const json = argv.includes('--json');
  try {
    await buildParser(argv).parseAsync();
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    return reportError(e, json);
  }
}
