import type { CommandModule } from 'yargs';
import type { BuildProgress } from '../../lib/installers/build.ts';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  agent: string;
  sites?: string;
  'sites-format'?: 'json' | 'yaml' | 'csv';
  'site-code'?: string;
  'server-url'?: string;
  company?: string;
  'site-name'?: string;
  department?: string;
  'device-type'?: string;
  tag?: string[];
  'enrollment-key'?: string;
  'key-version'?: number;
  out: string;
  profile?: string;
  'product-version'?: string;
  compression?: 'none' | 'zlib' | 'lzma';
  concurrency?: number;
  'allow-unsigned-agent'?: boolean;
  force?: boolean;
}

export const siteInstallersCommand: CommandModule<GlobalArgs, Args> = {
  command: 'site-installers',
  describe: 'Build a signed NSIS bootstrapper and a signed MSI per site around the signed agent',
  builder: (y) =>
    y
      .option('agent', { type: 'string', demandOption: true, describe: 'The signed agent (.exe)' })
      .option('sites', {
        type: 'string',
        describe: 'Sites file (JSON, YAML or CSV), or --sites=- for stdin',
      })
      .option('sites-format', { choices: ['json', 'yaml', 'csv'] as const, describe: 'Format of --sites' })
      .option('site-code', { type: 'string', describe: 'One site from flags: its code' })
      .option('server-url', { type: 'string', describe: 'One site: server URL (https)' })
      .option('company', { type: 'string' })
      .option('site-name', { type: 'string' })
      .option('department', { type: 'string' })
      .option('device-type', { type: 'string' })
      .option('tag', { type: 'string', array: true, describe: 'One site: a tag (repeatable)' })
      .option('enrollment-key', {
        type: 'string',
        describe: 'One site: the enrollment key as env:NAME or file:PATH (never literally)',
      })
      .option('key-version', { type: 'number', describe: 'One site: N of the enrollment key' })
      .option('out', { type: 'string', default: 'dist/installers', describe: 'Output folder' })
      .option('profile', { type: 'string', describe: 'Signing profile (default: signing.defaultProfile)' })
      .option('product-version', {
        type: 'string',
        describe: 'x.y.z of the installers (default: the version resource of the agent)',
      })
      .option('compression', { choices: ['none', 'zlib', 'lzma'] as const, describe: 'NSIS compression' })
      .option('concurrency', { type: 'number', describe: 'Sites built at once (default: CPU cores)' })
      .option('allow-unsigned-agent', {
        type: 'boolean',
        default: false,
        describe: 'Dev profile only: accept an unsigned agent (everything built is marked dev)',
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'Rebuild sites the cache says are current',
      }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { runSiteInstallers } = await import('../../lib/app/site-installers.ts');
    const loaded = ctx.config();
    const outcome = await runSiteInstallers({
      cwd: ctx.cwd,
      config: loaded.config,
      configPath: loaded.path,
      json: ctx.json,
      agent: args.agent,
      out: args.out,
      ...(args.sites !== undefined ? { sites: args.sites } : {}),
      ...(args['sites-format'] ? { sitesFormat: args['sites-format'] } : {}),
      flags: {
        ...(args['site-code'] !== undefined ? { siteCode: args['site-code'] } : {}),
        ...(args['server-url'] !== undefined ? { serverUrl: args['server-url'] } : {}),
        ...(args.company !== undefined ? { company: args.company } : {}),
        ...(args['site-name'] !== undefined ? { siteName: args['site-name'] } : {}),
        ...(args.department !== undefined ? { department: args.department } : {}),
        ...(args['device-type'] !== undefined ? { deviceType: args['device-type'] } : {}),
        ...(args.tag !== undefined ? { tags: args.tag } : {}),
        ...(args['enrollment-key'] !== undefined ? { enrollmentKeyRef: args['enrollment-key'] } : {}),
        ...(args['key-version'] !== undefined ? { keyVersion: args['key-version'] } : {}),
      },
      ...(args.profile ? { profile: args.profile } : {}),
      ...(args['product-version'] ? { version: args['product-version'] } : {}),
      ...(args.compression ? { compression: args.compression } : {}),
      ...(args.concurrency ? { concurrency: args.concurrency } : {}),
      allowUnsignedAgent: Boolean(args['allow-unsigned-agent']),
      force: Boolean(args.force),
      ...(!ctx.json && process.stderr.isTTY ? { onProgress: progressLine() } : {}),
    });
    ctx.emit(outcome.json, outcome.human);
    if (outcome.exitCode) process.exitCode = outcome.exitCode;
  },
};

/** A one-line progress display on a terminal (stderr). */
function progressLine(): (e: BuildProgress) => void {
  let done = 0;
  let failed = 0;
  let cached = 0;
  return (e) => {
    if (e.type === 'start') {
      process.stderr.write(`\r\x1b[2K[${done}/${e.total}] building ${e.siteCode}…`);
      return;
    }
    done++;
    if (e.type === 'failed') failed++;
    else if (e.cached) cached++;
    process.stderr.write(
      `\r\x1b[2K[${done}/${e.total}] ${cached} cached, ${failed} failed${done === e.total ? '\n' : ''}`,
    );
  };
}
