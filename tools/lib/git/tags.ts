/**
 * Release tags. A stable release tag is exactly `<prefix>MAJOR.MINOR.PATCH` (no leading zeros);
 * prerelease tags, build metadata, malformed names and tags of other prefixes never count as
 * "the last stable release". Tags are read with two `git for-each-ref` calls (all tags with their
 * peeled commit, and the names merged into HEAD), however many tags there are.
 */
import semver from 'semver';
import { type GitOptions, git } from './git.ts';

export interface TagRef {
  name: string;
  /** Commit the tag points at (annotated tags are peeled). */
  commit: string;
  /** Whether the commit is an ancestor of (or is) HEAD. */
  reachable: boolean;
}

export type TagKind = 'stable' | 'prerelease' | 'build' | 'malformed' | 'other-prefix' | 'too-large';

export interface ClassifiedTag {
  kind: TagKind;
  /** The version without the prefix, for stable/prerelease/build tags. */
  version?: string;
}

const NUM = '(0|[1-9]\\d*)';
const STRICT_CORE = new RegExp(`^${NUM}\\.${NUM}\\.${NUM}$`);

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface TagOptions {
  /** Bare `X.Y.Z` tags count too (the default prefix `v` in a repository that mixes both forms). */
  bare?: boolean;
}

/** Every number of the version core is exact in a JavaScript number (below 2^53). */
function safeCore(core: string): boolean {
  return core.split('.').every((n) => Number.isSafeInteger(Number(n)));
}

/** Classifies a tag name for a prefix ("" for bare tags). */
export function classifyTag(name: string, prefix: string, options: TagOptions = {}): ClassifiedTag {
  if (!name.startsWith(prefix)) {
    return options.bare && prefix !== '' ? classifyTag(name, '') : { kind: 'other-prefix' };
  }
  const rest = name.slice(prefix.length);
  if (STRICT_CORE.test(rest))
    return safeCore(rest) ? { kind: 'stable', version: rest } : { kind: 'too-large' };
  if (/^\d+\.\d+\.\d+(?=[-+]|$)/.test(rest) && !safeCore(/^\d+\.\d+\.\d+/.exec(rest)![0])) {
    return { kind: 'too-large' };
  }
  const plus = rest.indexOf('+');
  const main = plus >= 0 ? rest.slice(0, plus) : rest;
  if (/^\d/.test(main) && semver.valid(main) === main) {
    if (plus >= 0) {
      return /^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$/.test(rest.slice(plus + 1))
        ? { kind: 'build', version: main }
        : { kind: 'malformed' };
    }
    return { kind: 'prerelease', version: main };
  }
  return { kind: 'malformed' };
}

/** Compares two strict MAJOR.MINOR.PATCH versions numerically (no semver object per call). */
export function compareCore(a: string, b: string): number {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < 3; i++) {
    const d = Number(x[i]) - Number(y[i]);
    if (d !== 0) return d;
  }
  return 0;
}

export interface IgnoredTag {
  name: string;
  reason: string;
}

export interface StableSelection {
  /** Highest strict stable tag reachable from HEAD, in semver order. */
  last: { name: string; version: string; commit: string } | undefined;
  /** Every tag not used for the lookup, with the reason. */
  ignored: IgnoredTag[];
}

const REASONS: Record<Exclude<TagKind, 'stable'>, string> = {
  prerelease: 'prerelease',
  build: 'build metadata',
  malformed: 'not <prefix>MAJOR.MINOR.PATCH',
  'other-prefix': 'other prefix',
  'too-large': 'version number above 2^53-1',
};

/**
 * Picks the last stable release among tags: the semver maximum of reachable strict tags. With
 * `bare`, `1.2.3` counts as well as `<prefix>1.2.3`; of two tags of one version the prefixed wins.
 */
export function selectLastStable(
  tags: readonly TagRef[],
  prefix: string,
  options: TagOptions = {},
): StableSelection {
  let last: StableSelection['last'];
  const ignored: IgnoredTag[] = [];
  for (const t of tags) {
    const c = classifyTag(t.name, prefix, options);
    if (c.kind !== 'stable') {
      ignored.push({ name: t.name, reason: REASONS[c.kind] });
      continue;
    }
    if (!t.reachable) {
      ignored.push({ name: t.name, reason: 'not reachable from HEAD' });
      continue;
    }
    const d = last ? compareCore(c.version!, last.version) : 1;
    if (d > 0 || (d === 0 && last && !last.name.startsWith(prefix) && t.name.startsWith(prefix)))
      last = { name: t.name, version: c.version!, commit: t.commit };
  }
  ignored.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { last, ignored };
}

/**
 * Highest N among tags `<prefix><version>-<id>.N` (any reachability: tag names are global).
 * Returns -1 when there is none.
 */
export function highestPrereleaseNumber(
  tags: readonly Pick<TagRef, 'name'>[],
  prefix: string,
  version: string,
  identifier: string,
): number {
  const re = new RegExp(
    `^${escapeRegExp(prefix)}${escapeRegExp(version)}-${escapeRegExp(identifier)}\\.(0|[1-9]\\d*)$`,
  );
  let max = -1;
  for (const t of tags) {
    const m = re.exec(t.name);
    if (m && Number.isSafeInteger(Number(m[1]))) max = Math.max(max, Number(m[1]));
  }
  return max;
}

/** Every tag with its peeled commit (one for-each-ref); `reachable` is not computed (false). */
export async function listTags(cwd: string, options: GitOptions = {}): Promise<TagRef[]> {
  const all = await git(
    cwd,
    [
      'for-each-ref',
      '--format=%(refname:lstrip=2)%00%(objectname)%00%(*objectname)%00%(objecttype)%00%(*objecttype)',
      'refs/tags',
    ],
    options,
  );
  const out: TagRef[] = [];
  for (const line of all.stdout.split('\n')) {
    if (!line) continue;
    const [name = '', obj = '', peeled = '', type = '', peeledType = ''] = line.split('\0');
    // A tag of a tree or blob is not a release.
    if (type === 'tag' ? peeledType !== 'commit' : type !== 'commit') continue;
    out.push({ name, commit: peeled || obj, reachable: false });
  }
  return out;
}

async function mergedIntoHead(
  cwd: string,
  names: readonly string[],
  options: GitOptions,
): Promise<Set<string>> {
  if (!names.length) return new Set();
  const r = await git(
    cwd,
    [
      'for-each-ref',
      '--merged',
      'HEAD',
      '--format=%(refname:lstrip=2)',
      ...names.map((n) => `refs/tags/${n}`),
    ],
    options,
  );
  return new Set(r.stdout.split('\n').filter(Boolean));
}

/**
 * Every tag, with reachability from HEAD decided for the strict stable tags of `prefix`: they are
 * checked highest first (16, then all the rest), so a repository with thousands of tags costs one
 * cheap `--merged` call when the last release is reachable, instead of a walk of the whole
 * history. Stable tags below the highest reachable one are not checked (they cannot win) and are
 * reported reachable; tags of other shapes are never checked.
 */
export async function readTags(
  cwd: string,
  prefix: string,
  options: GitOptions & TagOptions = {},
): Promise<TagRef[]> {
  const tags = await listTags(cwd, options);
  await markReachable(cwd, tags, prefix, options);
  return tags;
}

/** Sets `reachable` on the strict stable tags of `prefix` (see readTags). */
export async function markReachable(
  cwd: string,
  tags: TagRef[],
  prefix: string,
  options: GitOptions & TagOptions = {},
): Promise<void> {
  const { bare, ...gitOptions } = options;
  const stable = tags
    .map((t) => ({ t, c: classifyTag(t.name, prefix, { bare: bare ?? false }) }))
    .filter((x) => x.c.kind === 'stable')
    .sort((a, b) => compareCore(b.c.version!, a.c.version!))
    .map((x) => x.t);
  let checked = 0;
  for (const batch of [16, Number.POSITIVE_INFINITY]) {
    if (checked >= stable.length) break;
    const slice = stable.slice(checked, checked + batch);
    const merged = await mergedIntoHead(
      cwd,
      slice.map((t) => t.name),
      gitOptions,
    );
    checked += slice.length;
    let found = false;
    for (const t of slice) {
      t.reachable = merged.has(t.name);
      if (t.reachable) found = true;
    }
    if (found) {
      for (const t of stable.slice(checked)) t.reachable = true;
      break;
    }
  }
}
