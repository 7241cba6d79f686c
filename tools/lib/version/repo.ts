/**
 * planFromRepo: reads git (one rev-parse, two for-each-ref, ONE streamed git log over the range
 * since the last stable tag, one diff when components are configured) and the manifests, then
 * calls the pure planRelease.
 */
import { SignetError } from '../errors.ts';
import { gitOut, type HeadInfo, repoInfo } from '../git/git.ts';
import { streamLog } from '../git/log.ts';
import { listTags, markReachable, selectLastStable, type TagRef } from '../git/tags.ts';
import {
  detectManifests,
  type LoadedManifest,
  loadManifests,
  type ManifestSpec,
  toSpec,
  withLockfiles,
} from '../manifests/index.ts';
import { DEFAULT_TAG_PREFIX, type VersionConfig } from './config.ts';
import { type ConventionalCommit, parseCommit } from './conventional.ts';
import { type Channel, type ComponentSpec, planRelease, type ReleasePlan } from './plan.ts';

export interface PlanFromRepoOptions {
  cwd: string;
  /** The `version` section of the config (defaults apply when omitted). */
  config?: Partial<VersionConfig>;
  channel: Channel;
  /** Beta run number; defaults to GITHUB_RUN_NUMBER from `env` when set. */
  runNumber?: number | undefined;
  /** Overrides the configured tag prefix ("" for bare tags). */
  tagPrefix?: string | undefined;
  /** `git.commitMessage`: the release-commit guard recognises subjects made from it. */
  commitMessage?: string | undefined;
  /** Plan one component on its own tags (`<component.tagPrefix>` or `<name>-v`) and paths. */
  component?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /**
   * Keep only what analysis needs of each commit (no subjects or notes): for planning without
   * notes (`signet version`, beta). RepoPlan.commits then cannot be rendered.
   */
  lean?: boolean | ((c: ConventionalCommit) => boolean);
}

export interface RepoPlan {
  plan: ReleasePlan;
  /** Every commit of the range, parsed, newest first (merges included, flagged). */
  commits: ConventionalCommit[];
  /** Commit id of the last stable tag (undefined for a first release). */
  previousCommit: string | undefined;
  head: HeadInfo;
  root: string;
  tagPrefix: string;
  /** The prefix is the lenient default: bare X.Y.Z tags count as releases too. */
  mixedTags: boolean;
  tags: TagRef[];
  manifests: LoadedManifest[];
}

function componentPrefix(c: { name: string; tagPrefix?: string | undefined }): string {
  return c.tagPrefix ?? `${c.name}-v`;
}

export function parseRunNumber(value: string | number | undefined, field: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const s = String(value).trim();
  if (!/^\d{1,15}$/.test(s)) {
    throw new SignetError(
      'E_INPUT_INVALID',
      `${field}: run number must be a non-negative integer, got "${s}"`,
      {
        details: { field },
      },
    );
  }
  return Number(s);
}

export async function planFromRepo(options: PlanFromRepoOptions): Promise<RepoPlan> {
  const cfg = options.config ?? {};
  const env = options.env ?? process.env;
  // rev-parse and the tag list in parallel; the HEAD message comes from the log stream.
  const [info, tags] = await Promise.all([
    repoInfo(options.cwd, { message: false }),
    listTags(options.cwd).catch(() => undefined),
  ]);
  const root = info.root;
  const components = cfg.components ?? [];
  const component = options.component ? components.find((c) => c.name === options.component) : undefined;
  if (options.component && !component) {
    throw new SignetError('E_INPUT_INVALID', `unknown component "${options.component}"`, {
      hint: `Use one of: ${components.map((c) => c.name).join(', ') || '(none configured under version.components)'}`,
      details: { field: 'component' },
    });
  }
  const tagPrefix =
    options.tagPrefix ?? (component ? componentPrefix(component) : (cfg.tagPrefix ?? DEFAULT_TAG_PREFIX));
  // The default prefix `v` (not from --tag-prefix, not in the config, not a component's) also
  // takes bare X.Y.Z tags; an explicit prefix is strict.
  const mixedTags = options.tagPrefix === undefined && !component && cfg.tagPrefix === undefined;
  if (!tags) throw new SignetError('E_TOOL_FAILED', `git for-each-ref failed in ${root}`);
  await markReachable(root, tags, tagPrefix, { bare: mixedTags });
  const { last } = selectLastStable(tags, tagPrefix, { bare: mixedTags });
  if (info.shallow && !last) {
    throw new SignetError(
      'E_SHALLOW_CLONE',
      `shallow clone without a reachable ${tagPrefix}MAJOR.MINOR.PATCH tag: the last release cannot be found`,
      { details: { tags: tags.length } },
    );
  }

  const commits: ConventionalCommit[] = [];
  const lean = options.lean ?? false;
  await streamLog({
    cwd: root,
    range: last ? `${last.commit}..HEAD` : 'HEAD',
    paths: component ? component.paths : [],
    bodies: 'needed',
    // HEAD keeps its header: the release-commit guard reads the subject.
    onCommit: (c) => commits.push(parseCommit(c, { lean: c.sha === info.head.sha ? false : lean })),
  });

  const entries = component
    ? component.manifests
    : [...(cfg.manifests ?? []), ...components.flatMap((c) => c.manifests ?? [])];
  let specs: ManifestSpec[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    const s = toSpec(e);
    if (!seen.has(s.path)) {
      seen.add(s.path);
      specs.push(s);
    }
  }
  if (specs.length === 0) specs = detectManifests(root);
  specs = withLockfiles(root, specs);
  const manifests = loadManifests(root, specs, { tolerant: true });

  const scope: ComponentSpec[] = (component ? [component] : components).map((c) => ({
    name: c.name,
    paths: c.paths,
    manifests: (c.manifests ?? []).map((m) => toSpec(m).path),
  }));
  let changedFiles: string[] | 'all' = 'all';
  if (last && scope.length) {
    const out = await gitOut(root, ['diff', '--name-only', '-z', '--no-renames', last.commit, 'HEAD']);
    changedFiles = out.split('\0').filter(Boolean);
  }

  const runNumber =
    options.runNumber ??
    (options.channel === 'beta' ? parseRunNumber(env['GITHUB_RUN_NUMBER'], 'GITHUB_RUN_NUMBER') : undefined);
  let headCommit = commits[0]?.sha === info.head.sha ? commits[0] : undefined;
  if (!headCommit) {
    const log = await gitOut(root, ['log', '-1', '--no-color', '--encoding=UTF-8', '--format=%B']);
    info.head.message = log.replace(/\n+$/, '');
    headCommit = parseCommit({ sha: info.head.sha, parents: [], message: info.head.message });
  }
  const plan = planRelease({
    channel: options.channel,
    tagPrefix,
    mixedTags,
    tags,
    commits,
    head: { sha: info.head.sha, commit: headCommit },
    commitMessage: options.commitMessage,
    manifests,
    config: {
      releaseRules: cfg.releaseRules ?? [],
      breakingInZeroMajor: cfg.breakingInZeroMajor ?? 'minor',
      betaIdentifier: cfg.betaIdentifier ?? 'beta',
      components: scope,
      initialVersion: cfg.initialVersion,
    },
    runNumber,
    changedFiles,
  });
  return {
    plan,
    commits,
    previousCommit: last?.commit,
    head: info.head,
    root,
    tagPrefix,
    mixedTags,
    tags,
    manifests,
  };
}
