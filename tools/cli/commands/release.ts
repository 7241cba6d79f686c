import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';
import { describePlan, type PlanArgs, planOptions } from './version.ts';

interface Args extends PlanArgs {
  'dry-run'?: boolean;
  push?: boolean;
  force?: boolean;
  date?: string;
}

export const releaseCommand: CommandModule<GlobalArgs, Args> = {
  command: 'release',
  describe:
    'Apply the plan. stable: manifests + CHANGELOG.md → commit → tag; beta: tag HEAD. --push sends them; --dry-run shows the diff',
  builder: (y) =>
    planOptions(y)
      .option('dry-run', {
        type: 'boolean',
        describe: 'Print the plan and the diff of every file; touch nothing',
      })
      .option('push', {
        type: 'boolean',
        describe: 'Push the commit and tag (stable, atomically) or the tag (beta)',
      })
      .option('force', {
        type: 'boolean',
        describe: 'beta: move a same-named tag that points at another commit',
      })
      .option('date', {
        type: 'string',
        describe: 'Release date YYYY-MM-DD for the notes (default: today UTC)',
      }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { applyRelease } = await import('../../lib/release/apply.ts');
    const { parseRunNumber } = await import('../../lib/version/repo.ts');
    const { config } = ctx.config();
    if (args.force && args.channel === 'stable') {
      const { SignetError } = await import('../../lib/errors.ts');
      throw new SignetError('E_USAGE', '--force applies to beta tags only; stable tags are never moved');
    }
    const r = await applyRelease({
      cwd: ctx.cwd,
      config,
      channel: args.channel,
      runNumber: parseRunNumber(args['run-number'], '--run-number'),
      tagPrefix: args['tag-prefix'],
      component: args.component,
      dryRun: args['dry-run'],
      push: args.push,
      force: args.force,
      date: args.date,
    });
    const lines = [describePlan(r.plan, ctx.verbose)];
    if (r.plan.released) {
      if (r.dryRun) {
        lines.push(
          '',
          `dry run: would ${r.plan.prerelease ? 'tag HEAD' : 'write, commit and tag'} ${r.tag}${args.push ? ' and push' : ''}`,
        );
        if (r.diff) lines.push('', r.diff.trimEnd());
      } else if (r.resumed) {
        lines.push(
          `tagged ${r.tag} on the release commit at HEAD (finished an interrupted release)${r.pushed ? `; pushed to ${config.git.remote}` : ''}`,
        );
      } else if (r.unchanged) {
        lines.push(`tag ${r.tag} already on HEAD; nothing moved${r.pushed ? ' (pushed)' : ''}`);
      } else {
        lines.push(
          r.commit
            ? `committed ${r.commit.slice(0, 12)} (${r.files.join(', ')}), tagged ${r.tag}`
            : `tagged ${r.tag}`,
        );
        if (r.pushed) lines.push(`pushed to ${config.git.remote}`);
      }
    }
    const { notes, ...rest } = r;
    ctx.emit({ ...rest, notes: notes?.body }, lines.join('\n'));
  },
};
