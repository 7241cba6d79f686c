import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';
import { type PlanArgs, planOptions } from './version.ts';

interface Args extends Omit<PlanArgs, 'channel'> {
  version?: string;
  from?: string;
  to?: string;
  all?: boolean;
  write?: boolean;
  date?: string;
}

export const changelogCommand: CommandModule<GlobalArgs, Args> = {
  command: 'changelog',
  describe: 'Print the release notes of the planned stable version, of a released version, or of a range',
  builder: (y) =>
    planOptions(y, false)
      .option('version', { type: 'string', describe: 'Notes of this released version (its tag must exist)' })
      .option('from', {
        type: 'string',
        describe: 'Start of the range, exclusive (default: last stable tag)',
      })
      .option('to', { type: 'string', describe: 'End of the range (default: HEAD)' })
      .option('all', { type: 'boolean', describe: 'Notes for the whole history' })
      .option('date', {
        type: 'string',
        describe: 'Release date YYYY-MM-DD (default: today, or SOURCE_DATE_EPOCH)',
      })
      .option('write', {
        type: 'boolean',
        describe: 'Also update CHANGELOG.md and the per-version notes file (no commit)',
      })
      .conflicts('version', ['from', 'all'])
      .conflicts('all', 'from'),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { notesFromRepo } = await import('../../lib/release/notes.ts');
    const { config } = ctx.config();
    if (args.date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(args.date)) {
      const { SignetError } = await import('../../lib/errors.ts');
      throw new SignetError('E_INPUT_INVALID', `--date: expected YYYY-MM-DD, got "${args.date}"`);
    }
    const r = await notesFromRepo({
      cwd: ctx.cwd,
      config,
      version: args.version,
      from: args.from,
      to: args.to,
      all: args.all,
      tagPrefix: args['tag-prefix'],
      component: args.component,
      date: args.date,
    });
    let written: string[] = [];
    if (args.write) {
      const { SignetError } = await import('../../lib/errors.ts');
      if (r.notes.version === 'Unreleased') {
        throw new SignetError(
          'E_INPUT_INVALID',
          'nothing to release: there is no version to write to CHANGELOG.md',
          {
            hint: 'Pass --version for a released version, or make releasable commits.',
          },
        );
      }
      const { writeChangelog } = await import('../../lib/changelog/index.ts');
      const { repoInfo } = await import('../../lib/git/git.ts');
      const { root } = await repoInfo(ctx.cwd);
      written = writeChangelog(root, config.changelog, r.notes).map((c) => c.path);
    }
    ctx.emit(
      {
        version: r.notes.version,
        range: r.range,
        commits: r.commits,
        entries: r.notes.entries,
        markdown: r.notes.markdown,
        body: r.notes.body,
        written,
        plan: r.plan,
      },
      r.notes.markdown + (written.length ? `\n(wrote ${written.join(', ')})` : ''),
    );
  },
};
