/**
 * planRelease: tags + commits + channel + manifest versions + config → ReleasePlan. PURE: no git,
 * no files, no clock, so it is property-tested. planFromRepo (repo.ts) reads git and calls it.
 */
import semver from 'semver';
import { SignetError } from '../errors.ts';
import { highestPrereleaseNumber, type IgnoredTag, selectLastStable, type TagRef } from '../git/tags.ts';
import { type Analysis, analyzeCommits, type Bump, type ReleaseRule } from './analyze.ts';
import type { ConventionalCommit } from './conventional.ts';

export type Channel = 'stable' | 'beta';
export type ManifestType = 'cargo' | 'npm' | 'npm-lock' | 'plain' | 'regex';

export interface ManifestVersion {
  /** Path relative to the repository root. */
  path: string;
  type: ManifestType;
  /** The version the file carries now. */
  version: string;
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
}

export interface PlanInput {
  channel: Channel;
  tagPrefix: string;
  /** Every tag of the repository with its commit and reachability from HEAD. */
  tags: readonly TagRef[];
  /** The commits since the last stable tag (all of history without one), newest first, parsed. */
  commits: readonly ConventionalCommit[];
  /** HEAD: its id and parsed message (for the release-commit guard and beta re-runs). */
  head: { sha: string; commit: ConventionalCommit };
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
  from: string;
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
}

/** True when HEAD is a release commit of Signet or asks CI to skip. */
export function isReleaseCommit(c: ConventionalCommit): boolean {
  return c.skipCi || (c.type === 'chore' && c.scope === 'release');
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

/** The baseline version from the primary manifest; checks that every manifest agrees. */
export function baselineVersion(manifests: readonly ManifestVersion[]): string | undefined {
  const first = manifests[0];
  if (!first) return undefined;
  const disagree = manifests.filter((m) => m.version !== first.version);
  if (disagree.length) {
    throw new SignetError(
      'E_MANIFEST_DISAGREE',
      `manifests disagree on the current version: ${manifests.map((m) => `${m.path}=${m.version}`).join(', ')}`,
      { details: { manifests: manifests.map((m) => ({ path: m.path, version: m.version })) } },
    );
  }
  const v = semver.valid(first.version);
  if (!v) {
    throw new SignetError(
      'E_MANIFEST_UNPARSABLE',
      `${first.path}: version "${first.version}" is not semver`,
      {
        details: { path: first.path, version: first.version },
      },
    );
  }
  const parsed = semver.parse(v)!;
  return `${parsed.major}.${parsed.minor}.${parsed.patch}`;
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
  };
}

export function planRelease(input: PlanInput): ReleasePlan {
  return ordered(planUnordered(input));
}

function planUnordered(input: PlanInput): ReleasePlan {
  const config = input.config ?? {};
  const identifier = config.betaIdentifier ?? 'beta';
  const { last, ignored } = selectLastStable(input.tags, input.tagPrefix);
  const analysis: Analysis = analyzeCommits(input.commits, config.releaseRules ?? []);
  const baseline = baselineVersion(input.manifests);
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

  if (isReleaseCommit(input.head.commit)) return nothing('release commit at HEAD');

  // The stable version the commits would produce.
  let target: string;
  let bump: Bump | null;
  let reason: string;
  let releasable = true;
  if (!last) {
    if (!baseline) {
      throw new SignetError(
        'E_MANIFEST_MISSING',
        `no stable tag matching ${input.tagPrefix}MAJOR.MINOR.PATCH is reachable from HEAD, and no manifest gives a first version`,
        {
          hint: 'Add a manifest (Cargo.toml, package.json or VERSION) under `version.manifests`, or tag the last release.',
        },
      );
    }
    target = baseline;
    bump = null;
    reason = `first release: no stable tag yet, version ${baseline} from ${input.manifests[0]!.path}`;
  } else if (analysis.bump) {
    bump = analysis.bump;
    const current = semver.parse(last.version)!;
    if (bump === 'major' && current.major === 0 && (config.breakingInZeroMajor ?? 'minor') === 'minor') {
      bump = 'minor';
    }
    target = semver.inc(last.version, bump)!;
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
    target = semver.inc(last.version, 'patch')!;
    reason = `${what}; test build of ${target}`;
  }

  if (input.channel === 'stable') {
    const manifestUpdates: ManifestUpdate[] = input.manifests
      .filter((m) => m.version !== target)
      .map((m) => ({ path: m.path, type: m.type, from: m.version, to: target }));
    return {
      ...base,
      version: target,
      tag: `${input.tagPrefix}${target}`,
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
    const existingHere = highestPrereleaseNumber(onHead, input.tagPrefix, target, identifier);
    n =
      existingHere >= 0
        ? existingHere
        : Math.max(0, highestPrereleaseNumber(input.tags, input.tagPrefix, target, identifier)) + 1;
  }
  const version = `${target}-${identifier}.${n}`;
  return {
    ...base,
    version,
    tag: `${input.tagPrefix}${version}`,
    bump,
    released: true,
    prerelease: true,
    reason: releasable ? `${reason}; beta of ${target}` : reason,
    manifestUpdates: [],
  };
}
