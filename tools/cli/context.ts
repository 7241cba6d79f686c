/**
 * What every command receives from the global options, plus the two ways of answering:
 * `emit` prints a result (JSON on stdout with --json, the human text otherwise).
 */
import { resolve } from 'node:path';
import { type LoadedConfig, loadConfig } from '../lib/config/load.ts';
import { logger } from '../lib/log.ts';
import { redact } from '../lib/redact.ts';

export interface GlobalArgs {
  cwd?: string;
  config?: string;
  json?: boolean;
  verbose?: boolean;
  color?: boolean;
}

export interface CliContext {
  cwd: string;
  configPath: string | undefined;
  json: boolean;
  verbose: boolean;
  color: boolean;
  /** Loads (once) and returns the validated config. */
  config(): LoadedConfig;
  emit(result: unknown, human: string): void;
}

export function makeContext(args: GlobalArgs): CliContext {
  const cwd = resolve(args.cwd ?? process.cwd());
  const color = args.color !== false && !process.env['NO_COLOR'] && Boolean(process.stdout.isTTY);
  logger.color = color && Boolean(process.stderr.isTTY);
  if (args.verbose) logger.level = 'debug';
  let loaded: LoadedConfig | undefined;
  return {
    cwd,
    configPath: args.config,
    json: Boolean(args.json),
    verbose: Boolean(args.verbose),
    color,
    config() {
      loaded ??= loadConfig(cwd, args.config);
      return loaded;
    },
    emit(result, human) {
      if (args.json) process.stdout.write(`${redact(JSON.stringify(result, null, 2))}\n`);
      else if (human) process.stdout.write(`${redact(human)}${human.endsWith('\n') ? '' : '\n'}`);
    },
  };
}
