import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  files?: string[];
  callback: string;
  token?: string;
  'sealed-token-file'?: string;
  'seal-private-key': string;
  'request-id': string;
  status: 'success' | 'failure';
  'error-code'?: string;
  'error-message'?: string;
  'ca-file'?: string;
  timeout: number;
}

export const deliverCommand: CommandModule<GlobalArgs, Args> = {
  command: 'deliver [files..]',
  describe:
    "Deliver files (per-site installers) only to the vendor's server: authenticated HTTPS uploads to the callback, then a completion notice with the request id; --status failure sends only a failure notice",
  builder: (y) =>
    y
      .positional('files', {
        type: 'string',
        array: true,
        describe: 'Files or globs (ignored with --status failure)',
      })
      .option('callback', {
        type: 'string',
        demandOption: true,
        describe: 'https:// URL the server gave in the dispatch (http only to loopback)',
      })
      .option('token', { type: 'string', describe: 'Bearer token as env:NAME or file:PATH' })
      .option('sealed-token-file', {
        type: 'string',
        describe: 'File holding the token sealed with `signet seal` to the seal public key',
      })
      .option('seal-private-key', {
        type: 'string',
        default: 'env:SIGNET_SEAL_PRIVATE_KEY',
        describe: 'Opens --sealed-token-file: env:NAME or file:PATH',
      })
      .option('request-id', {
        type: 'string',
        demandOption: true,
        describe: 'The id the server chose (echoed back)',
      })
      .option('status', {
        choices: ['success', 'failure'] as const,
        default: 'success' as const,
        describe: 'failure: send only the failure notice',
      })
      .option('error-code', { type: 'string', describe: 'With --status failure (default E_BUILD_FAILED)' })
      .option('error-message', { type: 'string', describe: 'With --status failure: what went wrong' })
      .option('ca-file', {
        type: 'string',
        describe: "PEM of a private CA that issued the callback's certificate",
      })
      .option('timeout', {
        type: 'number',
        default: 60,
        describe: 'Seconds without progress before a request is retried',
      }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { resolve } = await import('node:path');
    const { SignetError } = await import('../../lib/errors.ts');
    const { deliver } = await import('../../lib/deliver/index.ts');
    if (Boolean(args.token) === Boolean(args['sealed-token-file']))
      throw new SignetError(
        'E_USAGE',
        'give exactly one of --token (env:NAME|file:PATH) and --sealed-token-file',
      );
    let token: import('../../lib/deliver/token.ts').TokenSource;
    if (args.token) token = { kind: 'ref', ref: args.token };
    else {
      const { parseSecretRef, resolveSecret } = await import('../../lib/secrets.ts');
      const ref = parseSecretRef(args['seal-private-key'], '--seal-private-key');
      const sealed = `file:${resolve(ctx.cwd, args['sealed-token-file'] as string)}`;
      token = { kind: 'sealed', sealed, privateKey: resolveSecret(ref, '--seal-private-key') };
    }
    if (!(args.timeout > 0))
      throw new SignetError('E_USAGE', '--timeout must be a positive number of seconds');
    const r = await deliver({
      callback: args.callback,
      token,
      requestId: args['request-id'],
      status: args.status,
      error: { code: args['error-code'], message: args['error-message'] },
      files: args.files ?? [],
      cwd: ctx.cwd,
      caFile: args['ca-file'] ? resolve(ctx.cwd, args['ca-file']) : undefined,
      idleTimeoutMs: args.timeout * 1000,
    });
    const human =
      r.status === 'success'
        ? `delivered ${r.delivered} file(s) for request ${r.requestId} to ${r.callback}\n${r.files
            .map((f) => `  ${f.sha256}  ${f.size}  ${f.name}`)
            .join('\n')}`
        : `failure notice for request ${r.requestId} accepted by ${r.callback}`;
    ctx.emit(r, human);
  },
};
