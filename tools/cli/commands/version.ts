import type { CommandModule } from 'yargs';
import type { ReleasePlan } from '../../lib/version/plan.ts';
import { type GlobalArgs, makeContext } from '../context.ts';

export interface PlanArgs extends GlobalArgs {
  channel: 'stable' | 'beta';
  'run-number'?: string;
  'tag-prefix'?: string;
  component?: string;
}

/** Options shared by version / changelog / release (yargs builder fragment). */
// biome-ignore lint/suspicious/noExplicitAny: shared builder over different argument types
export function planOptions(y: any, channel = true): any {
  let b = y
    .option('tag-prefix', {
      type: 'string',
      describe: 'Tag prefix (default from config, "v"); "" for bare 1.2.3 tags',
      requiresArg: false,
    })
    .option('component', { type: 'string', describe: 'Plan one component on its own tags and paths' });
  if (channel) {
    b = b
      .option('channel', {
        choices: ['stable', 'beta'] as const,
        default: 'stable' as const,
        describe: 'Release channel',
      })
      .option('run-number', {
        type: 'string',
        describe: 'CI run number for beta tags (default: GITHUB_RUN_NUMBER)',
      });
  }
  return b;
}

/** The short human summary of a plan. */
export function describePlan(plan: ReleasePlan, verbose: boolean): string {
  const lines: string[] = [];
  const types = Object.entries(plan.commits.byType)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
  if (plan.released) {
    lines.push(
      `${plan.channel}: ${plan.previousTag ?? '(no stable tag)'} → ${plan.tag}${plan.bump ? ` (${plan.bump})` : ''}`,
    );
  } else {
    lines.push(`${plan.channel}: nothing to release (last stable: ${plan.previousTag ?? 'none'})`);
  }
  lines.push(`  ${plan.reason}`);
  lines.push(
    `  commits: ${plan.commits.total} (${plan.commits.releasable} releasable)${types ? `: ${types}` : ''}`,
  );
  if (plan.components.length) {
    const changed = plan.components.filter((c) => c.changed).map((c) => c.name);
    lines.push(`  components changed: ${changed.length ? changed.join(', ') : 'none'}`);
  }
  for (const u of plan.manifestUpdates) lines.push(`  ${u.path}: ${u.from ?? '(no version)'} → ${u.to}`);
  for (const w of plan.warnings) lines.push(`  warning: ${w}`);
  if (plan.ignoredTags.length) {
    if (verbose) {
      lines.push(`  ignored tags (${plan.ignoredTags.length}):`);
      for (const t of plan.ignoredTags) lines.push(`    ${t.name}  (${t.reason})`);
    } else lines.push(`  ${plan.ignoredTags.length} tags ignored (--verbose lists them)`);
  }
  return lines.join('\n');
}

export const versionCommand: CommandModule<GlobalArgs, PlanArgs> = {
  command: 'version',
  describe: 'Plan the next version from the last stable tag and the conventional commits since (no writes)',
  builder: (y) => planOptions(y),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { planFromRepo, parseRunNumber } = await import('../../lib/version/repo.ts');
    const { config } = ctx.config();
    const { plan } = await planFromRepo({
      cwd: ctx.cwd,
      config: config.version,
      commitMessage: config.git.commitMessage,
      channel: args.channel,
      runNumber: parseRunNumber(args['run-number'], '--run-number'),
      tagPrefix: args['tag-prefix'],
      component: args.component,
      lean: true,
    });
    ctx.emit(plan, describePlan(plan, ctx.verbose));
  },
};
