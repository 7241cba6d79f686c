import type { CommandModule } from 'yargs';
import type { ErrorCode, ExitKind } from '../../lib/errors.ts';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  files: string[];
  profile?: string;
  'ca-file'?: string;
  'tsa-ca-file'?: string;
  'pin-leaf'?: string[];
  subject?: string;
  'require-timestamp'?: boolean;
  release?: boolean;
}

export const verifyCommand: CommandModule<GlobalArgs, Args> = {
  command: 'verify <files..>',
  describe: 'Verify Authenticode signatures: chain, pinned signer, timestamp; per-file report (--json)',
  builder: (y) =>
    y
      .positional('files', { type: 'string', array: true, demandOption: true })
      .option('profile', { type: 'string', describe: "Use this profile's trust settings (CA, pins)" })
      .option('ca-file', {
        type: 'string',
        describe: 'CA bundle (PEM); default: the profile, else the system store',
      })
      .option('tsa-ca-file', { type: 'string', describe: 'CA bundle for timestamp authorities' })
      .option('pin-leaf', {
        type: 'string',
        array: true,
        describe: 'Accepted signer certificate SHA-256 (repeatable)',
      })
      .option('subject', {
        type: 'string',
        describe: 'Expected signer subject: the whole one-line DN, exactly',
      })
      .option('require-timestamp', {
        type: 'boolean',
        describe: 'Fail without a valid timestamp (default with --release)',
      })
      .option('release', {
        type: 'boolean',
        default: false,
        describe: 'Release policy: timestamp and a signer pin (leaf SHA-256 or exact subject) required',
      }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { resolve, dirname } = await import('node:path');
    const { inspectSignature, requireSignerPin, resolveProfile, verifyOptionsOf } = await import(
      '../../lib/sign/index.ts'
    );
    const { ERRORS, EXIT } = await import('../../lib/errors.ts');
    const { logger } = await import('../../lib/log.ts');
    const loaded = ctx.config();
    const cfg = loaded.config;
    const wanted = args.profile ?? process.env['SIGNET_SIGNING_PROFILE'] ?? cfg.signing.defaultProfile;
    const useProfile = Boolean(args.profile) || wanted in cfg.signing.profiles;
    const profile = useProfile
      ? resolveProfile(cfg, { profile: wanted, baseDir: loaded.path ? dirname(loaded.path) : ctx.cwd })
      : undefined;
    const options = profile ? verifyOptionsOf(profile) : {};
    if (args['ca-file']) options.caFile = resolve(ctx.cwd, args['ca-file']);
    if (args['tsa-ca-file']) options.tsaCaFile = resolve(ctx.cwd, args['tsa-ca-file']);
    if (args['pin-leaf']?.length) options.leafSha256 = args['pin-leaf'];
    if (args.subject) options.subject = args.subject;
    if (args.release)
      requireSignerPin(
        options,
        profile ? `profile "${profile.name}"` : 'verify --release',
        profile
          ? `signing.profiles.${profile.name}.verify.leafSha256 or .subject (or --pin-leaf / --subject)`
          : '--pin-leaf SHA256 or --subject DN (or a profile that pins the signer)',
      );
    const requireTimestamp =
      args['require-timestamp'] ?? (Boolean(args.release) && (profile ? profile.timestamp !== false : true));
    const reports = await Promise.all(
      args.files.map((f) =>
        inspectSignature(resolve(ctx.cwd, f), options, {
          requireTimestamp,
          ...(profile ? { profile: profile.name, dev: profile.dev } : {}),
        }),
      ),
    );
    const ok = reports.every((r) => r.signed);
    const human = reports
      .map((r) =>
        r.signed
          ? `✓ ${r.path}\n    signer    ${r.subject}\n    leaf      ${r.leafSha256}\n    digest    ${r.digest}   signatures ${r.signatures}\n    timestamp ${r.timestamp ?? 'none'}\n    sha256    ${r.fileSha256}`
          : `✗ ${r.path}  [${r.error?.code}] ${r.error?.message}${r.leafSha256 ? `\n    signer ${r.subject} (${r.leafSha256})` : ''}`,
      )
      .join('\n');
    ctx.emit({ ok, files: reports }, human);
    if (!ok) {
      logger.error(`verify: ${reports.filter((r) => !r.signed).length} of ${reports.length} file(s) failed`);
      // A signature refusal wins; a file that could not be read at all (a folder, a pipe, no
      // permission) exits with its own class (environment, usage).
      const exits = reports
        .filter((r) => !r.signed)
        .map((r) => {
          const def = ERRORS[r.error?.code as ErrorCode] as { exit: ExitKind } | undefined;
          return def ? EXIT[def.exit] : EXIT.refused;
        });
      process.exitCode = exits.includes(EXIT.refused) ? EXIT.refused : (exits[0] ?? EXIT.refused);
    }
  },
};
