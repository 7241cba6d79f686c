import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  files: string[];
  to?: string;
  tag: string;
  channel: 'stable' | 'beta';
  title?: string;
  'notes-file'?: string;
  repo?: string;
  'api-url'?: string;
  token?: string;
  profile?: string;
  'allow-dev-signatures'?: boolean;
  'allow-site-installers'?: boolean;
  prune?: boolean;
  concurrency?: number;
  target?: string;
  'dry-run'?: boolean;
}

export const publishCommand: CommandModule<GlobalArgs, Args> = {
  command: 'publish <files..>',
  describe:
    'Publish a release (draft → upload → verify gate → publish) to GitHub, Gitea or a folder (--to dir:PATH); re-running converges',
  builder: (y) =>
    y
      .positional('files', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'Assets (paths or globs)',
      })
      .option('to', {
        type: 'string',
        describe: 'dir:PATH, github, gitea or auto (default: publish.forge, then auto-detect)',
      })
      .option('tag', {
        type: 'string',
        demandOption: true,
        describe: 'Release tag, e.g. v1.2.0 or v1.3.0-beta.2',
      })
      .option('channel', {
        choices: ['stable', 'beta'] as const,
        default: 'stable' as const,
        describe: 'beta = prerelease',
      })
      .option('title', { type: 'string', describe: 'Release title (default: the tag)' })
      .option('notes-file', { type: 'string', describe: 'Changelog notes (markdown) for the stable body' })
      .option('repo', {
        type: 'string',
        describe: 'owner/name (default: publish.repository, GITHUB_REPOSITORY, origin remote)',
      })
      .option('api-url', { type: 'string', describe: 'GitHub Enterprise (https://HOST/api/v3) or Gitea URL' })
      .option('token', {
        type: 'string',
        describe: 'env:NAME or file:PATH (default: env:SIGNET_FORGE_TOKEN, GITHUB_TOKEN, GITEA_TOKEN)',
      })
      .option('profile', {
        type: 'string',
        describe: 'Signing profile whose trust settings verify .exe/.msi/.dll assets',
      })
      .option('allow-dev-signatures', {
        type: 'boolean',
        default: false,
        describe: 'Accept dev-certificate signatures on a stable release to a forge (test forges only)',
      })
      .option('allow-site-installers', {
        type: 'boolean',
        default: false,
        describe:
          "Publish files that carry a site's site.json (per-site installers, manifests); refused by default: they hold the enrollment key",
      })
      .option('prune', {
        type: 'boolean',
        describe: '--no-prune keeps remote assets not in this release (default: publish.prune)',
      })
      .option('concurrency', {
        type: 'number',
        describe: 'Parallel uploads (default: publish.concurrency, 2)',
      })
      .option('target', { type: 'string', describe: 'Commit for the tag when the forge must create it' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print the plan; change nothing' }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { runPublish } = await import('../../lib/app/publish.ts');
    const { describePlan } = await import('../../lib/forge/publish.ts');
    const loaded = ctx.config();
    const { plan, result } = await runPublish({
      config: loaded.config,
      configPath: loaded.path,
      cwd: ctx.cwd,
      to: args.to,
      repository: args.repo,
      apiUrl: args['api-url'],
      token: args.token,
      tag: args.tag,
      channel: args.channel,
      title: args.title,
      notesFile: args['notes-file'],
      files: args.files,
      profile: args.profile,
      allowDevSignatures: args['allow-dev-signatures'],
      allowSiteInstallers: args['allow-site-installers'],
      prune: args.prune,
      concurrency: args.concurrency,
      target: args.target,
      dryRun: args['dry-run'],
    });
    const { local, remote: _remote, ...planJson } = plan;
    const json = {
      dryRun: Boolean(args['dry-run']),
      plan: {
        ...planJson,
        local: local.map(({ name, size, sha256, kind }) => ({ name, size, sha256, kind })),
        actions: plan.actions.map(({ kind, name, reason }) => ({ kind, name, reason })),
      },
      ...(result ? { result } : {}),
    };
    const human = result
      ? `published ${result.tag}${result.prerelease ? ' (prerelease)' : ''} → ${result.url}\n${result.assets
          .map((a) => `  ${a.sha256}  ${a.name}  [${a.action}]`)
          .join('\n')}`
      : `dry run — nothing changed\n${describePlan(plan)}`;
    ctx.emit(json, human);
  },
};
