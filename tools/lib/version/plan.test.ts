import fc from 'fast-check';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { SignetError } from '../errors.ts';
import type { TagRef } from '../git/tags.ts';
import { parseCommit } from './conventional.ts';
import { type PlanInput, planRelease } from './plan.ts';

let n = 0;
const commit = (message: string) =>
  parseCommit({ sha: (++n).toString(16).padStart(40, '0'), parents: ['p'], message });
const HEAD = commit('chore: head');

function input(over: Partial<PlanInput>): PlanInput {
  return {
    channel: 'stable',
    tagPrefix: 'v',
    tags: [],
    commits: [],
    head: { sha: HEAD.sha, commit: HEAD },
    manifests: [{ path: 'package.json', type: 'npm', version: '0.1.0' }],
    ...over,
  };
}

const core = fc.tuple(fc.nat({ max: 30 }), fc.nat({ max: 30 }), fc.nat({ max: 30 }));
const prereleaseId = fc.constantFrom('beta', 'rc', 'alpha', 'next');
const tagArb: fc.Arbitrary<TagRef> = fc
  .tuple(
    core,
    fc.constantFrom('strict', 'pre', 'build', 'short', 'zero', 'other'),
    prereleaseId,
    fc.nat({ max: 20 }),
    fc.boolean(),
  )
  .map(([[a, b, c], shape, id, k, reachable]) => {
    const name =
      shape === 'strict'
        ? `v${a}.${b}.${c}`
        : shape === 'pre'
          ? `v${a}.${b}.${c}-${id}.${k}`
          : shape === 'build'
            ? `v${a}.${b}.${c}+b${k}`
            : shape === 'short'
              ? `v${a}.${b}`
              : shape === 'zero'
                ? `v0${a}.${b}.${c}`
                : `release-${a}.${b}`;
    return { name, commit: `${a}${b}${c}`.padEnd(40, 'c'), reachable };
  });

const messages = fc.array(
  fc.constantFrom(
    'feat: a',
    'fix: b',
    'perf: c',
    'docs: d',
    'chore: e',
    'feat!: f',
    'fix: g\n\nBREAKING CHANGE: h',
  ),
  { maxLength: 6 },
);

describe('planRelease (property)', () => {
  it('the last stable is the semver maximum of the reachable strict tags', () => {
    fc.assert(
      fc.property(fc.uniqueArray(tagArb, { selector: (t) => t.name, maxLength: 40 }), (tags) => {
        const plan = planRelease(input({ tags, commits: [commit('fix: x')] }));
        const strict = tags.filter(
          (t) => t.reachable && /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/.test(t.name),
        );
        const max = strict.map((t) => t.name.slice(1)).sort(semver.rcompare)[0];
        expect(plan.previousVersion).toBe(max ?? null);
        expect(plan.ignoredTags.length).toBe(tags.length - strict.length);
      }),
      { numRuns: 300 },
    );
  });

  it('every beta sorts strictly after the last stable and before the stable it previews', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(tagArb, { selector: (t) => t.name, maxLength: 30 }),
        messages,
        fc.option(fc.nat({ max: 100_000 }), { nil: undefined }),
        fc.constantFrom<'minor' | 'major'>('minor', 'major'),
        (tags, msgs, runNumber, zero) => {
          const commits = msgs.map(commit);
          const cfg = { breakingInZeroMajor: zero };
          const beta = planRelease(input({ channel: 'beta', tags, commits, runNumber, config: cfg }));
          const stable = planRelease(input({ channel: 'stable', tags, commits, config: cfg }));
          expect(beta.released).toBe(true);
          expect(beta.prerelease).toBe(true);
          const v = beta.version!;
          expect(semver.prerelease(v)?.[0]).toBe('beta');
          if (beta.previousVersion) expect(semver.gt(v, beta.previousVersion)).toBe(true);
          const target = stable.released
            ? stable.version!
            : semver.inc(beta.previousVersion ?? '0.1.0', 'patch')!;
          if (beta.previousVersion) expect(semver.lt(v, target)).toBe(true);
          expect(`${semver.major(v)}.${semver.minor(v)}.${semver.patch(v)}`).toBe(
            beta.previousVersion ? target : '0.1.0',
          );
          if (runNumber !== undefined) expect(v.endsWith(`-beta.${runNumber}`)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('planRelease', () => {
  const tags: TagRef[] = [{ name: 'v0.3.0', commit: 'a'.repeat(40), reachable: true }];
  it('0.x: breaking bumps minor by default, major when configured; >= 1.0 bumps major', () => {
    const commits = [commit('feat!: x')];
    expect(planRelease(input({ tags, commits })).version).toBe('0.4.0');
    expect(planRelease(input({ tags, commits, config: { breakingInZeroMajor: 'major' } })).version).toBe(
      '1.0.0',
    );
    const one: TagRef[] = [{ name: 'v1.4.2', commit: 'b'.repeat(40), reachable: true }];
    expect(planRelease(input({ tags: one, commits, manifests: [] })).version).toBe('2.0.0');
  });
  it('beta N is one more than the highest existing beta of the target, or reuses the one on HEAD', () => {
    const t: TagRef[] = [
      ...tags,
      { name: 'v0.4.0-beta.3', commit: 'd'.repeat(40), reachable: false },
      { name: 'v0.3.0-beta.9', commit: 'e'.repeat(40), reachable: true },
    ];
    const commits = [commit('feat: y')];
    expect(planRelease(input({ channel: 'beta', tags: t, commits })).tag).toBe('v0.4.0-beta.4');
    const onHead = [...t, { name: 'v0.4.0-beta.4', commit: HEAD.sha, reachable: true }];
    expect(planRelease(input({ channel: 'beta', tags: onHead, commits })).tag).toBe('v0.4.0-beta.4');
    // run number 0 on HEAD is reused too
    const zero = [...tags, { name: 'v0.4.0-beta.0', commit: HEAD.sha, reachable: true }];
    expect(planRelease(input({ channel: 'beta', tags: zero, commits })).tag).toBe('v0.4.0-beta.0');
    expect(planRelease(input({ channel: 'beta', tags, commits })).tag).toBe('v0.4.0-beta.1');
  });
  it('beta without releasable commits is a test build of patch(last)', () => {
    const p = planRelease(input({ channel: 'beta', tags, commits: [commit('docs: z')], runNumber: 7 }));
    expect(p).toMatchObject({ version: '0.3.1-beta.7', bump: 'patch', released: true });
    expect(p.reason).toMatch(/no releasable commits.*test build of 0\.3\.1/);
  });
  it('refuses manifests that disagree, and a negative run number', () => {
    const manifests = [
      { path: 'Cargo.toml', type: 'cargo' as const, version: '1.0.0' },
      { path: 'package.json', type: 'npm' as const, version: '1.0.1' },
    ];
    expect(() => planRelease(input({ manifests }))).toThrow(SignetError);
    expect(() => planRelease(input({ manifests }))).toThrow(/disagree.*Cargo.toml=1.0.0.*package.json=1.0.1/);
    expect(() => planRelease(input({ channel: 'beta', tags, runNumber: -1 }))).toThrow(/non-negative/);
  });
  it('keeps the documented key order', () => {
    expect(Object.keys(planRelease(input({ tags })))).toEqual([
      'channel',
      'previousTag',
      'previousVersion',
      'version',
      'tag',
      'bump',
      'released',
      'prerelease',
      'reason',
      'commits',
      'components',
      'manifestUpdates',
      'ignoredTags',
      'warnings',
    ]);
  });
});
