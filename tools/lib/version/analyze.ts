/**
 * Commit analysis: which commits are releasable and what bump they ask for. Pure.
 *
 * - breaking (`!` or a BREAKING CHANGE footer) → major (0.x: minor unless configured);
 * - configured release rules (type, optional scope) come next, first match wins;
 * - defaults: feat → minor; fix, perf, revert (of an already released commit) → patch;
 * - a revert of a commit in the same unreleased range cancels both (a revert of that revert
 *   brings the original back);
 * - merge commits are looked through: not analysed themselves, their merged commits are.
 */
import type { ConventionalCommit } from './conventional.ts';

export type Bump = 'major' | 'minor' | 'patch';

export interface ReleaseRule {
  type: string;
  scope?: string | undefined;
  bump: Bump | false;
}

export const DEFAULT_RULES: readonly ReleaseRule[] = [
  { type: 'feat', bump: 'minor' },
  { type: 'fix', bump: 'patch' },
  { type: 'perf', bump: 'patch' },
  { type: 'revert', bump: 'patch' },
];

const RANK: Record<Bump, number> = { patch: 1, minor: 2, major: 3 };

export function maxBump(a: Bump | null, b: Bump | null): Bump | null {
  if (!a) return b;
  if (!b) return a;
  return RANK[a] >= RANK[b] ? a : b;
}

/** The bump one commit asks for (null: not releasable). */
export function commitBump(c: ConventionalCommit, rules: readonly ReleaseRule[] = []): Bump | null {
  if (c.merge) return null;
  if (c.breaking) return 'major';
  if (!c.type) return null;
  for (const r of rules) {
    if (r.type.toLowerCase() !== c.type) continue;
    if (r.scope !== undefined && r.scope !== c.scope) continue;
    return r.bump || null;
  }
  for (const r of DEFAULT_RULES) if (r.type === c.type) return r.bump || null;
  return null;
}

export interface Analysis {
  /** Non-merge commits in the range. */
  total: number;
  merges: number;
  /** Commits that count for the release (after reverts cancelled out), newest first. */
  releasable: ConventionalCommit[];
  /** Commits that remain after cancelling reverts (newest first), releasable or not. */
  effective: ConventionalCommit[];
  /** Count of non-merge commits by type ("other" for non-conventional headers). */
  byType: Record<string, number>;
  /** Highest bump asked for (before the 0.x rule). */
  bump: Bump | null;
  /** Pairs that cancelled out: [revert sha, reverted sha]. */
  cancelled: [string, string][];
}

/** Analyses commits given newest first (as `git log` prints them). */
export function analyzeCommits(
  commits: readonly ConventionalCommit[],
  rules: readonly ReleaseRule[] = [],
): Analysis {
  const byType: Record<string, number> = {};
  let merges = 0;
  const chronological: ConventionalCommit[] = [];
  for (let i = commits.length - 1; i >= 0; i--) {
    const c = commits[i]!;
    if (c.merge) {
      merges++;
      continue;
    }
    const t = c.type ?? 'other';
    byType[t] = (byType[t] ?? 0) + 1;
    chronological.push(c);
  }
  let effective: ConventionalCommit[];
  const cancelled: [string, string][] = [];
  if (!chronological.some((c) => c.revertOf)) {
    effective = chronological.reverse();
  } else {
    // Reverts: oldest first; a revert of an active commit in the range cancels both; a revert of
    // such a revert brings the original back (and cancels itself).
    const active = new Map<string, ConventionalCommit>();
    const cancellers = new Map<string, { revert: ConventionalCommit; target: ConventionalCommit }>();
    const order = new Map<string, number>();
    const find = <T>(map: Map<string, T>, ref: string): [string, T] | undefined => {
      const exact = map.get(ref);
      if (exact !== undefined) return [ref, exact];
      if (ref.length >= 40) return undefined;
      for (const entry of map) if (entry[0].startsWith(ref)) return entry;
      return undefined;
    };
    chronological.forEach((c, i) => {
      order.set(c.sha, i);
      if (c.revertOf) {
        const target = find(active, c.revertOf);
        if (target) {
          active.delete(target[0]);
          cancellers.set(c.sha, { revert: c, target: target[1] });
          cancelled.push([c.sha, target[0]]);
          return;
        }
        const undone = find(cancellers, c.revertOf);
        if (undone) {
          cancellers.delete(undone[0]);
          active.set(undone[1].target.sha, undone[1].target);
          cancelled.push([c.sha, undone[0]]);
          return;
        }
      }
      active.set(c.sha, c);
    });
    effective = [...active.values()].sort((a, b) => order.get(b.sha)! - order.get(a.sha)!);
  }
  let bump: Bump | null = null;
  const releasable: ConventionalCommit[] = [];
  for (const c of effective) {
    const b = commitBump(c, rules);
    if (b) {
      releasable.push(c);
      bump = maxBump(bump, b);
    }
  }
  return { total: chronological.length, merges, releasable, effective, byType, bump, cancelled };
}
