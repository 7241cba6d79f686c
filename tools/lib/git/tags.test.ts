import { describe, expect, it } from 'vitest';
import { classifyTag, highestPrereleaseNumber, selectLastStable, type TagRef } from './tags.ts';

describe('classifyTag', () => {
  it.each([
    ['v1.2.3', 'v', 'stable'],
    ['v0.0.0', 'v', 'stable'],
    ['v10.20.30', 'v', 'stable'],
    ['v1.2.3-beta.1', 'v', 'prerelease'],
    ['v1.2.3-rc.1', 'v', 'prerelease'],
    ['v1.2.3-alpha', 'v', 'prerelease'],
    ['v1.2.3-next.3', 'v', 'prerelease'],
    ['v1.2.3+build.5', 'v', 'build'],
    ['v1.2.3-beta.1+exp', 'v', 'build'],
    ['v1.2', 'v', 'malformed'],
    ['v01.2.3', 'v', 'malformed'],
    ['v1.02.3', 'v', 'malformed'],
    ['v1.2.3.4', 'v', 'malformed'],
    ['vv1.2.3', 'v', 'malformed'],
    ['v1.2.3-beta.01', 'v', 'malformed'],
    ['v1.2.3-', 'v', 'malformed'],
    ['release-1.0', 'v', 'other-prefix'],
    ['1.2.3', 'v', 'other-prefix'],
    ['1.2.3', '', 'stable'],
    ['v1.2.3', '', 'malformed'],
    ['agent-v1.2.3', 'agent-v', 'stable'],
    ['agent-v1.2.3', 'v', 'other-prefix'],
    ['server-v1.2.3', 'agent-v', 'other-prefix'],
  ])('%s with prefix %j is %s', (name, prefix, kind) => {
    expect(classifyTag(name, prefix).kind).toBe(kind);
  });
});

describe('selectLastStable', () => {
  const t = (name: string, reachable = true): TagRef => ({ name, commit: name.padEnd(40, '0'), reachable });
  it('uses semver order, not lexical order or the order of the input', () => {
    const s = selectLastStable([t('v1.10.0'), t('v1.9.0'), t('v1.2.0'), t('v2.0.0-rc.1')], 'v');
    expect(s.last?.name).toBe('v1.10.0');
  });
  it('skips unreachable, prerelease and malformed tags and reports why', () => {
    const s = selectLastStable([t('v1.0.0'), t('v3.0.0', false), t('v2.0.0-beta.1'), t('v2.0'), t('x')], 'v');
    expect(s.last?.name).toBe('v1.0.0');
    expect(s.ignored).toEqual([
      { name: 'v2.0', reason: 'not <prefix>MAJOR.MINOR.PATCH' },
      { name: 'v2.0.0-beta.1', reason: 'prerelease' },
      { name: 'v3.0.0', reason: 'not reachable from HEAD' },
      { name: 'x', reason: 'other prefix' },
    ]);
  });
  it('returns nothing when no strict tag exists', () => {
    expect(selectLastStable([t('v1.0.0-rc.1')], 'v').last).toBeUndefined();
  });
});

describe('highestPrereleaseNumber', () => {
  it('finds the highest N of exactly <prefix><version>-<id>.N', () => {
    const tags = [
      'v1.1.0-beta.2',
      'v1.1.0-beta.10',
      'v1.1.0-beta.3',
      'v1.1.0-rc.99',
      'v1.2.0-beta.50',
      'v1.1.0-beta.x',
    ];
    expect(
      highestPrereleaseNumber(
        tags.map((name) => ({ name })),
        'v',
        '1.1.0',
        'beta',
      ),
    ).toBe(10);
    expect(
      highestPrereleaseNumber(
        tags.map((name) => ({ name })),
        'v',
        '1.3.0',
        'beta',
      ),
    ).toBe(-1);
  });
});

describe('compareCore', () => {
  it('orders like semver for strict versions', async () => {
    const semver = (await import('semver')).default;
    const vs = ['1.10.0', '1.9.0', '10.0.0', '2.0.0', '0.0.1', '1.9.10', '1.9.9'];
    const { compareCore } = await import('./tags.ts');
    expect([...vs].sort(compareCore)).toEqual([...vs].sort(semver.compare));
  });
});
