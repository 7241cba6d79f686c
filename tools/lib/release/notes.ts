/**
 * Notes from a repository: for the planned stable version (default), for an existing release
 * (`version`: the range from the stable tag before it to its tag), or for an explicit range /
 * the whole history. One streamed `git log` in every case.
 */
import semver from 'semver';
import { notesLean, type RenderedNotes, renderNotes, resolveRepoLink } from '../changelog/index.ts';
import { SignetError } from '../errors.ts';
import { git, remoteUrl, repoInfo } from '../git/git.ts';
import { streamLog } from '../git/log.ts';
import { classifyTag, readTags, selectLastStable } from '../git/tags.ts';
import { DEFAULT_TAG_PREFIX } from '../version/config.ts';
import { type ConventionalCommit, parseCommit } from '../version/conventional.ts';
import { planFromRepo, type ReleasePlan } from '../version/index.ts';
import { type ReleaseConfig, releaseDate } from './apply.ts';

export interface NotesFromRepoOptions {
  cwd: string;
  config: ReleaseConfig;
  /** Notes of this released version (its tag must exist). */
  version?: string | undefined;
  /** Start of the range (exclusive); default: the last stable tag. */
  from?: string | undefined;
  /** End of the range (inclusive); default HEAD. */
  to?: string | undefined;
  /** The whole history up to `to`. */
  all?: boolean | undefined;
  tagPrefix?: string | undefined;
  component?: string | undefined;
  date?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

export interface NotesResult {
  notes: RenderedNotes;
  /** The git range the notes cover. */
  range: string;
  commits: number;
  /** The stable plan, when the notes are for the planned version. */
  plan?: ReleasePlan;
}

async function collect(
  cwd: string,
  range: string,
  lean: (c: ConventionalCommit) => boolean,
): Promise<ConventionalCommit[]> {
  const out: ConventionalCommit[] = [];
  await streamLog({ cwd, range, bodies: 'needed', onCommit: (c) => out.push(parseCommit(c, { lean })) });
  return out;
}

async function verifyRef(cwd: string, ref: string, field: string): Promise<string> {
  const r = await git(cwd, ['rev-parse', '--verify', '-q', `${ref}^{commit}`], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new SignetError(
      'E_INPUT_INVALID',
      `${field}: "${ref}" is not a commit, tag or branch of this repository`,
      {
        details: { field, ref },
      },
    );
  }
  return r.stdout.trim();
}

export async function notesFromRepo(options: NotesFromRepoOptions): Promise<NotesResult> {
  const { config } = options;
  const env = options.env ?? process.env;
  const date = options.date ?? releaseDate(env);
  const lean = notesLean({ sections: config.changelog.sections, releaseRules: config.version.releaseRules });
  const explicitRange = options.all || options.from !== undefined || options.to !== undefined;

  if (!options.version && !explicitRange) {
    const rp = await planFromRepo({
      cwd: options.cwd,
      config: config.version,
      commitMessage: config.git.commitMessage,
      channel: 'stable',
      tagPrefix: options.tagPrefix,
      component: options.component,
      env,
      lean,
    });
    const remote = await remoteUrl(rp.root, config.git.remote);
    const target = rp.plan.released
      ? rp.plan
      : { version: 'Unreleased', tag: null, previousTag: rp.plan.previousTag };
    const notes = renderNotes(target, rp.commits, {
      sections: config.changelog.sections,
      releaseRules: config.version.releaseRules,
      repo: resolveRepoLink(config.changelog, remote),
      date,
    });
    return {
      notes,
      range: rp.previousCommit ? `${rp.plan.previousTag}..HEAD` : 'HEAD',
      commits: rp.commits.length,
      plan: rp.plan,
    };
  }

  const info = await repoInfo(options.cwd);
  const root = info.root;
  const prefix = options.tagPrefix ?? config.version.tagPrefix ?? DEFAULT_TAG_PREFIX;
  // The default prefix (set neither by flag nor config) also takes bare X.Y.Z tags, as planning does.
  const bare = options.tagPrefix === undefined && config.version.tagPrefix === undefined;
  const remote = await remoteUrl(root, config.git.remote);
  let from: string | undefined;
  let to = options.to ?? 'HEAD';
  let version = 'Unreleased';
  let tag: string | null = null;
  let previousTag: string | null = null;

  if (options.version) {
    const v = options.version.replace(/^v(?=\d)/, '');
    if (!semver.valid(v)) {
      throw new SignetError('E_INPUT_INVALID', `--version: "${options.version}" is not a semver version`, {
        details: { field: 'version' },
      });
    }
    tag = `${prefix}${v}`;
    version = v;
    const hasTag = async (name: string) =>
      (await git(root, ['rev-parse', '--verify', '-q', `refs/tags/${name}^{commit}`], { allowFailure: true }))
        .exitCode === 0;
    let exists = await hasTag(tag);
    if (!exists && bare && (await hasTag(v))) {
      tag = v;
      exists = true;
    }
    if (!exists) {
      throw new SignetError('E_INPUT_INVALID', `--version ${v}: there is no tag ${tag}`, {
        hint: 'Name a released version, or set --tag-prefix for tags of another prefix.',
        details: { field: 'version', tag },
      });
    }
    to = tag;
    // The previous stable tag: the highest strict tag below this version that the tag reaches.
    let previousVersion: string | undefined;
    const merged = await git(root, [
      'for-each-ref',
      '--merged',
      tag,
      '--format=%(refname:lstrip=2)',
      'refs/tags',
    ]);
    for (const name of merged.stdout.split('\n')) {
      const c = classifyTag(name, prefix, { bare });
      if (c.kind !== 'stable' || !semver.lt(c.version!, v)) continue;
      if (!previousVersion || semver.gt(c.version!, previousVersion)) {
        previousTag = name;
        previousVersion = c.version!;
      }
    }
    from = previousTag ?? undefined;
  } else if (!options.all) {
    from = options.from;
    if (from === undefined) {
      const tags = await readTags(root, prefix, { bare });
      from = selectLastStable(tags, prefix, { bare }).last?.name;
    }
    previousTag = from ?? null;
  }
  const toCommit = await verifyRef(root, to, 'to');
  if (from) await verifyRef(root, from, 'from');
  const range = from ? `${from}..${toCommit}` : toCommit;
  const commits = await collect(root, range, lean);
  const notes = renderNotes({ version, tag, previousTag }, commits, {
    sections: config.changelog.sections,
    releaseRules: config.version.releaseRules,
    repo: resolveRepoLink(config.changelog, remote),
    date,
  });
  return { notes, range: from ? `${from}..${to}` : to, commits: commits.length };
}
