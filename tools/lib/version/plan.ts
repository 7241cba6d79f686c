/**
 * planRelease: tags + commits + channel + manifest versions + config → ReleasePlan. PURE: no git,
 * no files, no clock, so it is property-tested. planFromRepo (repo.ts) reads git and calls it.
 */
import semver from 'semver';
import { SignetError } from '../errors.ts';
import { highestPrereleaseNumber, type IgnoredTag, selectLastStable, type TagRef } from '../git/tags.ts';
import { type Analysis, analyzeCommits, type Bump, type ReleaseRule } from './analyze.ts';
import type { ConventionalCommit } from './conventional.ts';
import { isReleaseCommit } from './release-commit.ts';

export { isReleaseCommit } from './release-commit.ts';

export type Channel = 'stable' | 'beta';
export type ManifestType = 'cargo' | 'npm' | 'npm-lock' | 'plain' | 'regex';

export interface ManifestVersion {
  /** Path relative to the repository root. */
  path: string;
  type: ManifestType;
  /** The version the file carries now; null when it cannot be read (see problem). */
  version: string | null;
  /** Why the version cannot be read; missingVersion: the file simply has none. */
  problem?: { message: string; missingVersion: boolean } | undefined;
}

export interface ComponentSpec {
  name: string;
  paths: string[];
  manifests: string[];
}

export interface PlanConfig {
  releaseRules?: readonly ReleaseRule[];
  /** Bump for a breaking change while the version is 0.x (default minor). */
  breakingInZeroMajor?: 'minor' | 'major';
  /** Prerelease identifier of the beta channel (default "beta"). */
  betaIdentifier?: string;
  components?: readonly ComponentSpec[];
  /** First release when the primary manifest has no version or a placeholder (default 1.0.0). */
  initialVersion?: string | undefined;
}

export interface PlanInput {
  channel: Channel;
  tagPrefix: string;
  /**
   * The prefix is the default `v`, not set explicitly: bare `X.Y.Z` tags count as releases too,
   * and the new tag takes the form (with or without `v`) of the last stable tag.
   */
  mixedTags?: boolean;
  /** Every tag of the repository with its commit and reachability from HEAD. */
  tags: readonly TagRef[];
  /** The commits since the last stable tag (all of history without one), newest first, parsed. */
  commits: readonly ConventionalCommit[];
  /** HEAD: its id and parsed message (for the release-commit guard and beta re-runs). */
  head: { sha: string; commit: ConventionalCommit };
  /**
   * `git.commitMessage`, the template of Signet's release commits: a HEAD whose subject is made
   * from it is the release commit. Default: any `chore(release): …` subject.
   */
  commitMessage?: string | undefined;
  /** Current versions of the manifests, the primary first. */
  manifests: readonly ManifestVersion[];
  config?: PlanConfig;
  /** CI run number for beta (`-beta.N`), when known. */
  runNumber?: number | undefined;
  /** Files changed since the last stable tag, or "all" when there is none. */
  changedFiles?: readonly string[] | 'all';
}

export interface ComponentStatus {
  name: string;
  changed: boolean;
  paths: string[];
  manifests: string[];
}

export interface ManifestUpdate {
  path: string;
  type: ManifestType;
  /** null: the file has no readable version now (it is written on a stable release). */
  from: string | null;
  to: string;
}

export interface ReleasePlan {
  channel: Channel;
  previousTag: string | null;
  previousVersion: string | null;
  /** The version to release (null when nothing is released). */
  version: string | null;
  tag: string | null;
  bump: Bump | null;
  released: boolean;
  prerelease: boolean;
  reason: string;
  commits: { total: number; releasable: number; byType: Record<string, number> };
  components: ComponentStatus[];
  manifestUpdates: ManifestUpdate[];
  ignoredTags: IgnoredTag[];
  /** Problems that do not stop the plan (a manifest without a version, a stale lock file). */
  warnings: string[];
}

function normalizePath(p: string): string {
  let s = p.replace(/\\/g, '/').replace(/^\.\//, '');
  while (s.endsWith('/') && s.length > 1) s = s.slice(0, -1);
  return s === '' ? '.' : s;
}

export function componentChanged(paths: readonly string[], changed: readonly string[] | 'all'): boolean {
  if (changed === 'all') return true;
  const roots = paths.map(normalizePath);
  if (roots.includes('.')) return changed.length > 0;
  return changed.some((f) => roots.some((r) => f === r || f.startsWith(`${r}/`)));
}

function summarizeTypes(byType: Record<string, number>): string {
  return Object.entries(byType)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
}

/** A version that stands for "not released yet": core 0.0.0 (`0.0.0-development`, `0.0.0`). */
export function isPlaceholder(version: string | null): boolean {
  const v = version === null ? null : semver.parse(version);
  return v !== null && v.major === 0 && v.minor === 0 && v.patch === 0;
}

/** Files that follow another manifest (their disagreement is repaired, never a refusal). */
const DERIVED: ReadonlySet<ManifestType> = new Set(['npm-lock']);

function listing(manifests: readonly ManifestVersion[]): string {
  return manifests.map((m) => `${m.path}=${m.version ?? '(none)'}`).join(', ');
}

export interface Baseline {
  /** Version of a first release (undefined: no manifest, or not needed). */
  version: string | undefined;
  /** Where it comes from, for the reason. */
  source: string;
  warnings: string[];
}

/**
 * Manifest versions before planning. With a stable tag the manifests are not needed: every problem
 * is a warning (a stable release writes the new version to all of them). Without one the primary
 * manifest gives the first version — its core, or `initialVersion` (default 1.0.0) when it has no
 * version or a placeholder (0.0.0-…); the other manifests must agree with it, lock files aside.
 */
export function baselineVersion(
  manifests: readonly ManifestVersion[],
  options: { tagged?: boolean; initialVersion?: string | undefined } = {},
): Baseline {
  const warnings: string[] = [];
  const first = manifests[0];
  for (const m of manifests) {
    if (m.problem && (options.tagged || m !== first)) warnings.push(m.problem.message);
  }
  const readable = manifests.filter((m) => m.version !== null);
  if (options.tagged) {
    if (new Set(readable.map((m) => m.version)).size > 1) {
      warnings.push(
        `manifests disagree on the current version (${listing(readable)}); a stable release sets them all`,
      );
    }
    return { version: undefined, source: '', warnings };
  }
  if (!first) return { version: undefined, source: '', warnings };
  if (first.problem && !first.problem.missingVersion) {
    throw new SignetError('E_MANIFEST_UNPARSABLE', first.problem.message, { details: { path: first.path } });
  }
  const disagree = readable.filter((m) => !DERIVED.has(m.type) && m.version !== first.version);
  if (disagree.length && first.version !== null) {
    throw new SignetError(
      'E_MANIFEST_DISAGREE',
      `manifests disagree on the current version: ${listing(manifests)}`,
      { details: { manifests: manifests.map((m) => ({ path: m.path, version: m.version })) } },
    );
  }
  const stale = readable.filter((m) => DERIVED.has(m.type) && m.version !== first.version);
  if (stale.length) {
    warnings.push(
      `lock files disagree with ${first.path} (${listing([first, ...stale])}); a stable release sets them`,
    );
  }
  if (first.version === null || isPlaceholder(first.version)) {
    const initial = options.initialVersion ?? '1.0.0';
    const what = first.version === null ? 'has no version' : `carries the placeholder ${first.version}`;
    return { version: initial, source: `${first.path} ${what}: initial version ${initial}`, warnings };
  }
  const parsed = semver.parse(first.version);
  if (!parsed) {
    throw new SignetError(
      'E_VERSION_OVERFLOW',
      `${first.path}: version ${first.version} has a number above 2^53-1`,
      {
        details: { path: first.path, version: first.version },
      },
    );
  }
  const core = `${parsed.major}.${parsed.minor}.${parsed.patch}`;
  return { version: core, source: `version ${core} from ${first.path}`, warnings };
}

/** semver.inc, refusing a result whose numbers pass 2^53-1 (semver gives null there). */
function increment(version: string, bump: Bump): string {
  const next = semver.inc(version, bump);
  const safe = next?.split(/[.-]/, 3).every((n) => Number.isSafeInteger(Number(n)));
  if (!next || !safe) {
    throw new SignetError('E_VERSION_OVERFLOW', `a ${bump} bump of ${version} passes 2^53-1`, {
      details: { version, bump },
    });
  }
  return next;
}

/** The plan with its keys in the documented order (stable JSON output). */
function ordered(p: ReleasePlan): ReleasePlan {
  return {
    channel: p.channel,
    previousTag: p.previousTag,
    previousVersion: p.previousVersion,
    version: p.version,
    tag: p.tag,
    bump: p.bump,
    released: p.released,
    prerelease: p.prerelease,
    reason: p.reason,
    commits: p.commits,
    components: p.components,
    manifestUpdates: p.manifestUpdates,
    ignoredTags: p.ignoredTags,
    warnings: p.warnings,
  };
}

export function planRelease(input: PlanInput): ReleasePlan {
  return ordered(planUnordered(input));
}

function planUnordered(input: PlanInput): ReleasePlan {
  const config = input.config ?? {};
  const identifier = config.betaIdentifier ?? 'beta';
  const { last, ignored } = selectLastStable(input.tags, input.tagPrefix, { bare: input.mixedTags ?? false });
  const analysis: Analysis = analyzeCommits(input.commits, config.releaseRules ?? []);
  const baseline = baselineVersion(input.manifests, {
    tagged: Boolean(last),
    initialVersion: config.initialVersion,
  });
  // A new tag follows the form of the last stable tag when the prefix is the default.
  const prefix = input.mixedTags && last && !last.name.startsWith(input.tagPrefix) ? '' : input.tagPrefix;
  const changedFiles = last ? (input.changedFiles ?? []) : 'all';
  const components: ComponentStatus[] = (config.components ?? []).map((c) => ({
    name: c.name,
    changed: componentChanged(c.paths, changedFiles),
    paths: [...c.paths],
    manifests: [...c.manifests],
  }));
  const base = {
    channel: input.channel,
    previousTag: last?.name ?? null,
    previousVersion: last?.version ?? null,
    commits: {
      total: analysis.total,
      releasable: analysis.releasable.length,
      byType: analysis.byType,
    },
    components,
    ignoredTags: ignored,
    warnings: baseline.warnings,
  };
  const nothing = (reason: string): ReleasePlan => ({
    ...base,
    version: null,
    tag: null,
    bump: null,
    released: false,
    prerelease: false,
    reason,
    manifestUpdates: [],
  });

  if (isReleaseCommit(input.head.commit, input.commitMessage)) return nothing('release commit at HEAD');

  // The stable version the commits would produce.
  let target: string;
  let bump: Bump | null;
  let reason: string;
  let releasable = true;
  if (!last) {
    if (!baseline.version) {
      throw new SignetError(
        'E_MANIFEST_MISSING',
        `no stable tag matching ${input.tagPrefix}MAJOR.MINOR.PATCH is reachable from HEAD, and no manifest gives a first version`,
        {
          hint: 'Add a manifest (Cargo.toml, package.json or VERSION) under `version.manifests`, or tag the last release.',
        },
      );
    }
    target = baseline.version;
    bump = null;
    reason = `first release: no stable tag yet, ${baseline.source}`;
  } else if (analysis.bump) {
    bump = analysis.bump;
    const current = semver.parse(last.version)!;
    if (bump === 'major' && current.major === 0 && (config.breakingInZeroMajor ?? 'minor') === 'minor') {
      bump = 'minor';
    }
    target = increment(last.version, bump);
    const breaking = analysis.releasable.filter((c) => c.breaking).length;
    reason =
      `${analysis.releasable.length} releasable of ${analysis.total} commits since ${last.name}` +
      (breaking ? ` (${breaking} breaking${bump !== 'major' ? ', 0.x bumps minor' : ''})` : '');
  } else {
    releasable = false;
    const what = analysis.total
      ? `no releasable commits since ${last.name} (${summarizeTypes(analysis.byType)})`
      : `no commits since ${last.name}`;
    if (input.channel === 'stable') return nothing(what);
    bump = 'patch';
    target = increment(last.version, 'patch');
    reason = `${what}; test build of ${target}`;
  }

  if (input.channel === 'stable') {
    const manifestUpdates: ManifestUpdate[] = input.manifests
      .filter((m) => m.version !== target)
      .map((m) => ({ path: m.path, type: m.type, from: m.version, to: target }));
    return {
      ...base,
      version: target,
      tag: `${prefix}${target}`,
      bump,
      released: true,
      prerelease: false,
      reason,
      manifestUpdates,
    };
  }

  // beta: target-<id>.N, N = run number, or the beta of this version already on HEAD, or max+1.
  let n: number;
  if (input.runNumber !== undefined) {
    if (!Number.isSafeInteger(input.runNumber) || input.runNumber < 0) {
      throw new SignetError(
        'E_INPUT_INVALID',
        `run number must be a non-negative integer, got ${input.runNumber}`,
        {
          details: { field: 'runNumber' },
        },
      );
    }
    n = input.runNumber;
  } else {
    const onHead = input.tags.filter((t) => t.commit === input.head.sha);
    const existingHere = highestPrereleaseNumber(onHead, prefix, target, identifier);
    n =
      existingHere >= 0
        ? existingHere
        : Math.max(0, highestPrereleaseNumber(input.tags, prefix, target, identifier)) + 1;
  }
  const version = `${target}-${identifier}.${n}`;
  return {
    ...base,
    version,
    tag: `${prefix}${version}`,
    bump,
    released: true,
    prerelease: true,
    reason: releasable ? `${reason}; beta of ${target}` : reason,
    manifestUpdates: [],
  };
}
