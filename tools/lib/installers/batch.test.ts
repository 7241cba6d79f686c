/** Batch accounting: one entry per input site, in input order, every problem inside its site. */
import { describe, expect, it } from 'vitest';
import { batchReport, groupInvalidSites, mergeSiteResults } from './batch.ts';
import type { SiteResult } from './build.ts';
import { validateSites } from './site.ts';

const KEY = 'batch-test-key-0123456789';
const ok = (siteCode: string): SiteResult => ({
  siteCode,
  ok: true,
  cached: false,
  exe: `/out/${siteCode}.exe`,
  msi: `/out/${siteCode}.msi`,
  durationMs: 1.4,
});

describe('batch accounting', () => {
  it('groups the problems of each entry into one invalid site named by its code, else its index', () => {
    const { sites, problems } = validateSites([
      { siteCode: 'A', serverUrl: 'https://a.example', enrollmentKey: KEY, keyVersion: 1 },
      { siteCode: 'B', serverUrl: 'nope', enrollmentKey: KEY, keyVersion: 0 },
      { siteCode: 'C', serverUrl: 'https://c.example', enrollmentKey: KEY, keyVersion: 1 },
      { siteCode: '!!', keyVersion: 1 },
      { siteCode: 'a', serverUrl: 'https://a.example', enrollmentKey: KEY, keyVersion: 1 },
    ]);
    expect(problems.length).toBeGreaterThan(3);
    const invalid = groupInvalidSites(problems);
    expect(invalid.map((s) => [s.index, s.siteCode, s.problems.length])).toEqual([
      [1, 'B', 2],
      [3, 'sites[3]', 2],
      [4, 'a', 1],
    ]);
    const merged = mergeSiteResults(
      sites.map((s) => ok(s.siteCode)),
      invalid,
    );
    expect(merged.map((r) => [r.index, r.siteCode, r.ok])).toEqual([
      [0, 'A', true],
      [1, 'B', false],
      [2, 'C', true],
      [3, 'sites[3]', false],
      [4, 'a', false],
    ]);
    expect(merged[1]?.error?.code).toBe('E_SITE_INVALID');
    expect(merged[1]?.error?.message).toContain('sites[1].keyVersion');
    expect(merged[1]?.error?.message).toContain('sites[1].serverUrl');
    expect(JSON.stringify(merged)).not.toContain(KEY);
  });

  it('indexes that do not fit the built list put the invalid sites last', () => {
    const merged = mergeSiteResults([ok('A')], [{ index: 7, siteCode: 'X', problems: [] }]);
    expect(merged.map((r) => r.siteCode)).toEqual(['A', 'X']);
  });

  it('the report counts sites and names files relative to the output folder', () => {
    const results = [
      ok('A'),
      { ...ok('B'), cached: true },
      { siteCode: 'C', ok: false, cached: false, durationMs: 0 },
    ];
    const r = batchReport({
      results,
      version: '1.0.0',
      dev: true,
      profile: 'dev',
      outDir: '/out',
      finishedAt: 'now',
      durationMs: 12.6,
    });
    expect(r).toMatchObject({
      ok: false,
      summary: { total: 3, built: 1, cached: 1, failed: 1 },
      durationMs: 13,
    });
    expect(r.sites[0]).toMatchObject({ exe: 'A.exe', msi: 'A.msi', durationMs: 1 });
  });
});
