import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  forge: 'github' | 'gitea';
  force?: boolean;
  actions?: string;
}

export const initCommand: CommandModule<GlobalArgs, Args> = {
  command: 'init',
  describe:
    'Set up this repository: a commented signet.config.yaml at the git root and the release and site-installers workflows',
  builder: (y) =>
    y
      .option('forge', {
        choices: ['github', 'gitea'] as const,
        default: 'github' as const,
        describe: 'Workflows go to .github/workflows (github) or .gitea/workflows (gitea, Forgejo)',
      })
      .option('actions', {
        type: 'string',
        describe:
          "Where the workflows take Signet's actions from: OWNER/REPO@REF (default signet-release/signet@v1), or a Gitea mirror https://HOST/OWNER/REPO@REF",
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'Replace files that already exist (otherwise nothing is written)',
      }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { runInit } = await import('../../lib/project/init.ts');
    const result = runInit({
      cwd: ctx.cwd,
      forge: args.forge,
      force: Boolean(args.force),
      ...(args.actions ? { actions: args.actions } : {}),
    });
    // dev-cert writes relative to where it runs; the config expects the PKI at the root
    const at = ctx.cwd === result.root ? 'signet' : `signet --cwd ${result.root}`;
    const human = [
      `initialised ${result.root}`,
      ...result.files.map((f) => `  ${f.replaced ? 'replaced' : 'wrote   '} ${f.path}`),
      '',
      'Next:',
      `  ${at} dev-cert   # a throwaway PKI for the dev profile (NOT FOR RELEASE)`,
      `  ${at} check      # the config, the profiles, the tools and secrets they need`,
      `  ${at} version    # what the next release would be`,
      'For releases, add the secrets SIGNET_SIGN_PFX_BASE64 and SIGNET_SIGN_PASSWORD to the repository',
      'and uncomment the release profile in signet.config.yaml.',
    ].join('\n');
    ctx.emit(result, human);
  },
};
