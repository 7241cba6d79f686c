import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  files: string[];
  profile?: string;
  out?: string;
  'out-dir'?: string;
  'skip-signed'?: boolean;
  replace?: boolean;
  nest?: boolean;
  description?: string;
  'tsa-url'?: string[];
  timestamp?: boolean;
  'ca-file'?: string;
  'pin-leaf'?: string[];
  subject?: string;
  concurrency?: number;
  release?: boolean;
  'allow-unsigned-fallback'?: boolean;
}

export const signCommand: CommandModule<GlobalArgs, Args> = {
  command: 'sign <files..>',
  describe:
    'Sign (and timestamp) .exe/.dll/.msi files with a signing profile; verify each before accepting it',
  builder: (y) =>
    y
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'Files to sign' })
      .option('profile', {
        type: 'string',
        describe: 'Signing profile (default: signing.defaultProfile or SIGNET_SIGNING_PROFILE)',
      })
      .option('out', {
        type: 'string',
        describe: 'Write the signed file here (one input only); default: in place',
      })
      .option('out-dir', {
        type: 'string',
        describe: 'Write the signed files into this directory (same names); default: in place',
      })
      .option('skip-signed', {
        type: 'boolean',
        default: false,
        describe: 'Accept files already signed and verifying under this profile (re-runs converge)',
      })
      .option('replace', {
        type: 'boolean',
        default: false,
        describe: 'Remove an existing signature, then sign',
      })
      .option('nest', {
        type: 'boolean',
        default: false,
        describe: 'Append a nested signature (e.g. SHA-1 + SHA-256)',
      })
      .option('description', {
        type: 'string',
        describe: 'Signature description (-n); default: the file name',
      })
      .option('tsa-url', {
        type: 'string',
        array: true,
        describe: 'RFC 3161 TSA URLs tried in order (replaces the profile list)',
      })
      .option('timestamp', {
        type: 'boolean',
        describe: '--no-timestamp signs without a timestamp (refused with --release)',
      })
      .option('ca-file', { type: 'string', describe: 'CA bundle for the verify after signing' })
      .option('pin-leaf', {
        type: 'string',
        array: true,
        describe: 'Accepted signer certificate SHA-256 (repeatable)',
      })
      .option('subject', { type: 'string', describe: 'Expected signer subject (substring)' })
      .option('concurrency', { type: 'number', describe: 'Files signed at once (default: number of cores)' })
      .option('release', {
        type: 'boolean',
        default: false,
        describe: 'Release path: timestamps required, dev profiles and fallbacks refused',
      })
      .option('allow-unsigned-fallback', {
        type: 'boolean',
        default: false,
        describe:
          'Remote backend only: keep the unsigned file (signed: false) when signing fails. Never for release.',
      }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { resolve, dirname } = await import('node:path');
    const { createSigner, signFiles } = await import('../../lib/sign/index.ts');
    const { SignetError, EXIT } = await import('../../lib/errors.ts');
    const { logger } = await import('../../lib/log.ts');
    const loaded = ctx.config();
    const overrides = {
      ...(args['tsa-url']?.length ? { tsaUrls: args['tsa-url'] } : {}),
      ...(args.timestamp === false ? { noTimestamp: true } : {}),
      ...(args['ca-file'] ? { caFile: resolve(ctx.cwd, args['ca-file']) } : {}),
      ...(args['pin-leaf']?.length ? { leafSha256: args['pin-leaf'] } : {}),
      ...(args.subject ? { subject: args.subject } : {}),
      ...(args['allow-unsigned-fallback'] ? { allowUnsignedFallback: true } : {}),
    };
    const signer = createSigner(loaded.config, {
      ...(args.profile ? { profile: args.profile } : {}),
      overrides,
      releasePath: Boolean(args.release),
      baseDir: loaded.path ? dirname(loaded.path) : ctx.cwd,
    });
    if (args.out && args.files.length > 1)
      throw new SignetError('E_USAGE', '--out takes a single input file');
    if (signer.dev)
      logger.warn(`profile "${signer.profile}" is a DEV profile: the signatures are NOT FOR RELEASE`);
    const files = args.files.map((f) => resolve(ctx.cwd, f));
    const concurrency = args.concurrency ?? loaded.config.signing.concurrency;
    const result = await signFiles(signer, files, {
      ...(concurrency ? { concurrency } : {}),
      ...(args['out-dir'] ? { outDir: resolve(ctx.cwd, args['out-dir']) } : {}),
      ...(args['skip-signed'] ? { skipSigned: true } : {}),
      sign: {
        ...(args.out ? { out: resolve(ctx.cwd, args.out) } : {}),
        replace: Boolean(args.replace),
        nest: Boolean(args.nest),
        ...(args.description ? { description: args.description } : {}),
      },
      onResult: (r) => {
        if (r.ok && r.signed && !ctx.json) logger.info(`signed ${r.artifact?.path ?? r.path}`);
      },
    });
    const rows = result.results.map((r) => ({
      path: r.artifact?.path ?? r.path,
      ok: r.ok,
      signed: r.signed,
      ...(r.skipped ? { skipped: true } : {}),
      ...(r.artifact
        ? {
            subject: r.artifact.signature.subject,
            leafSha256: r.artifact.signature.leafSha256,
            digest: r.artifact.signature.digest,
            timestamp: r.artifact.signature.timestamp ?? null,
            signatures: r.artifact.signature.signatures,
            sha256: r.artifact.sha256,
            size: r.artifact.size,
          }
        : {}),
      ...(r.unsigned ? { sha256: r.unsigned.sha256, size: r.unsigned.size } : {}),
      ...(r.fallback
        ? { fallback: r.fallback, warning: 'NOT SIGNED: kept by --allow-unsigned-fallback' }
        : {}),
      ...(r.error ? { error: r.error } : {}),
      durationMs: Math.round(r.durationMs),
    }));
    const summary = `${result.signed} signed, ${result.failed} failed${result.unsigned ? `, ${result.unsigned} LEFT UNSIGNED (fallback)` : ''}`;
    const human = rows
      .map((r) =>
        r.signed
          ? `✓ ${r.path}\n    ${r.subject}\n    leaf sha256 ${r.leafSha256}  digest ${r.digest}  timestamp ${r.timestamp ?? 'none'}`
          : r.fallback
            ? `! ${r.path}  NOT SIGNED (${r.fallback.code})`
            : `✗ ${r.path}  [${r.error?.code}] ${r.error?.message}`,
      )
      .concat(summary)
      .join('\n');
    ctx.emit(
      {
        ok: result.ok,
        profile: signer.profile,
        dev: signer.dev,
        summary: { signed: result.signed, failed: result.failed, unsigned: result.unsigned },
        files: rows,
      },
      human,
    );
    if (!result.ok) {
      const first = result.results.find((r) => !r.ok)?.error;
      const exit =
        result.signed > 0
          ? EXIT.partial
          : first
            ? new SignetError(first.code as never, first.message).exitCode
            : EXIT.failed;
      logger.error(`sign: ${summary}`);
      process.exitCode = exit;
    }
  },
};
