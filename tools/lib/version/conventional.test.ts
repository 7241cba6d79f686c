import { describe, expect, it } from 'vitest';
import { analyzeCommits, commitBump } from './analyze.ts';
import { parseCommit } from './conventional.ts';

let n = 0;
const c = (message: string, parents = 1) =>
  parseCommit({
    sha: (++n).toString(16).padStart(40, 'a'),
    parents: Array.from({ length: parents }, () => 'p'.repeat(40)),
    message,
  });

describe('parseCommit', () => {
  it('reads type, scope, breaking mark and subject', () => {
    const p = c('feat(api)!: drop v1 endpoints');
    expect(p).toMatchObject({ type: 'feat', scope: 'api', breaking: true, subject: 'drop v1 endpoints' });
    expect(p.breakingNotes).toEqual(['drop v1 endpoints']);
  });
  it('reads BREAKING CHANGE and BREAKING-CHANGE footers with continuation lines', () => {
    const p = c(
      'fix: x\n\nbody text\n\nBREAKING CHANGE: config moved\nto a new file\nRefs: #1\nBREAKING-CHANGE: second',
    );
    expect(p.breaking).toBe(true);
    expect(p.breakingNotes).toEqual(['config moved to a new file', 'second']);
  });
  it('does not treat a mention in prose as a footer', () => {
    expect(c('fix: x\n\nthis is not a BREAKING CHANGE: really').breaking).toBe(false);
  });
  it('handles CRLF, non-conventional headers and skip markers', () => {
    expect(c('feat: a\r\n\r\nBREAKING CHANGE: b\r\n').breakingNotes).toEqual(['b']);
    expect(c('Update README').type).toBeNull();
    expect(c('chore(release): v1.0.0 [skip ci]').skipCi).toBe(true);
  });
  it('reads git reverts and conventional reverts', () => {
    const g = c('Revert "feat: a"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.');
    expect(g).toMatchObject({ type: 'revert', revertOf: '0123456789abcdef0123456789abcdef01234567' });
    const r = c('revert: feat: a\n\nThis reverts commit 0123abc.');
    expect(r).toMatchObject({ type: 'revert', revertOf: '0123abc' });
  });
});

describe('analyzeCommits', () => {
  it('feat is minor, fix/perf patch, breaking major, chores nothing', () => {
    expect(analyzeCommits([c('fix: a'), c('docs: b')]).bump).toBe('patch');
    expect(analyzeCommits([c('perf: a')]).bump).toBe('patch');
    expect(analyzeCommits([c('fix: a'), c('feat: b')]).bump).toBe('minor');
    expect(analyzeCommits([c('chore!: drop node 18'), c('feat: b')]).bump).toBe('major');
    expect(
      analyzeCommits([c('docs: a'), c('chore: b'), c('ci: c'), c('test: d'), c('style: e')]).bump,
    ).toBeNull();
  });
  it('applies release rules by type and scope, first match wins', () => {
    const rules = [
      { type: 'build', scope: 'deps', bump: 'patch' as const },
      { type: 'refactor', bump: 'patch' as const },
      { type: 'feat', scope: 'internal', bump: false as const },
    ];
    expect(commitBump(c('build(deps): bump x'), rules)).toBe('patch');
    expect(commitBump(c('build: tweak'), rules)).toBeNull();
    expect(commitBump(c('refactor: y'), rules)).toBe('patch');
    expect(commitBump(c('feat(internal): z'), rules)).toBeNull();
    expect(commitBump(c('feat(internal)!: z'), rules)).toBe('major');
  });
  it('looks through merge commits', () => {
    const a = analyzeCommits([c("Merge branch 'feat: x'", 2), c('fix: a')]);
    expect(a).toMatchObject({ total: 1, merges: 1, bump: 'patch' });
  });
  it('cancels a revert of an unreleased commit, and brings it back when the revert is reverted', () => {
    const feat = c('feat: a');
    const rev = c(`Revert "feat: a"\n\nThis reverts commit ${feat.sha}.`);
    const a = analyzeCommits([rev, feat]);
    expect(a.bump).toBeNull();
    expect(a.cancelled).toEqual([[rev.sha, feat.sha]]);
    const rev2 = c(`Revert "Revert "feat: a""\n\nThis reverts commit ${rev.sha.slice(0, 10)}.`);
    const b = analyzeCommits([rev2, rev, feat]);
    expect(b.bump).toBe('minor');
    expect(b.releasable.map((x) => x.sha)).toEqual([feat.sha]);
  });
  it('a revert of an already released commit is a patch', () => {
    const rev = c(`Revert "feat: old"\n\nThis reverts commit ${'f'.repeat(40)}.`);
    expect(analyzeCommits([rev]).bump).toBe('patch');
  });
  it('counts commits by type', () => {
    expect(analyzeCommits([c('fix: a'), c('fix: b'), c('docs: c'), c('hello')]).byType).toEqual({
      fix: 2,
      docs: 1,
      other: 1,
    });
  });
});
