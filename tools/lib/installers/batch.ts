/**
 * Batch accounting of the per-site build: results count *sites*, not problems. Every input site
 * appears once, in input order: a built (or cached, or failed) site with its result, an invalid
 * one with every problem it has. One report object is both what `signet site-installers --json`
 * prints and what `site-installers.result.json` holds, so the two always agree.
 */
import { basename } from 'node:path';
import { ERRORS } from '../errors.ts';
import type { SiteResult } from './build.ts';
import type { SiteProblem } from './site.ts';

/** An input entry that failed validation, with all of its problems. */
export interface InvalidSite {
  /** Position in the input list (0-based). */
  index: number;
  /** The entry's site code when it has a valid one, else `sites[<index>]`. */
  siteCode: string;
  problems: { path: string; message: string }[];
}

/** What the report says about one site (file names relative to the output folder). */
export interface SiteReport extends Omit<SiteResult, 'exe' | 'msi' | 'manifest'> {
  exe?: string;
  msi?: string;
  manifest?: string;
}

export interface BatchReport {
  ok: boolean;
  version: string;
  dev: boolean;
  profile: string;
  /** Absolute path of the output folder; the sites' file names are in it. */
  outDir: string;
  summary: { total: number; built: number; cached: number; failed: number };
  sites: SiteReport[];
  finishedAt: string;
  durationMs: number;
}

const INDEX_RE = /^sites\[(\d+)\]/;

/** Groups validation problems by input entry (validateSites sets `index`; else the path tells). */
export function groupInvalidSites(problems: readonly SiteProblem[]): InvalidSite[] {
  const byKey = new Map<string, InvalidSite>();
  for (const p of problems) {
    const index = p.index ?? Number(INDEX_RE.exec(p.path)?.[1] ?? Number.NaN);
    const key = Number.isNaN(index) ? `path:${p.path}` : `index:${index}`;
    let site = byKey.get(key);
    if (!site) {
      site = {
        index: Number.isNaN(index) ? -1 : index,
        siteCode: p.siteCode ?? (Number.isNaN(index) ? p.path : `sites[${index}]`),
        problems: [],
      };
      byKey.set(key, site);
    }
    if (p.siteCode && site.siteCode.startsWith('sites[')) site.siteCode = p.siteCode;
    site.problems.push({ path: p.path, message: p.message });
  }
  return [...byKey.values()].sort((a, b) => a.index - b.index);
}

/** The failed result of an invalid site: code E_SITE_INVALID, a message naming every problem. */
export function invalidSiteResult(site: InvalidSite): SiteResult {
  return {
    index: site.index,
    siteCode: site.siteCode,
    ok: false,
    cached: false,
    error: {
      code: 'E_SITE_INVALID',
      message: site.problems.map((p) => `${p.path}: ${p.message}`).join('; '),
      hint: ERRORS.E_SITE_INVALID.hint,
    },
    problems: site.problems,
    durationMs: 0,
  };
}

/**
 * Built results and invalid entries in input order. The valid sites are the input entries that
 * are not invalid, in order, so they fill the remaining positions; when the indexes do not fit
 * that (a caller's own lists), the invalid entries follow the built ones.
 */
export function mergeSiteResults(
  built: readonly SiteResult[],
  invalid: readonly InvalidSite[],
): SiteResult[] {
  const total = built.length + invalid.length;
  const taken = new Set(invalid.map((s) => s.index));
  const fits = taken.size === invalid.length && invalid.every((s) => s.index >= 0 && s.index < total);
  if (!fits) return [...built, ...invalid.map(invalidSiteResult)];
  const out: SiteResult[] = [];
  const invalidAt = new Map(invalid.map((s) => [s.index, s]));
  let next = 0;
  for (let i = 0; i < total; i++) {
    const bad = invalidAt.get(i);
    out.push(bad ? invalidSiteResult(bad) : { ...built[next++]!, index: i });
  }
  return out;
}

export function countSites(results: readonly SiteResult[]): BatchReport['summary'] {
  return {
    total: results.length,
    built: results.filter((r) => r.ok && !r.cached).length,
    cached: results.filter((r) => r.ok && r.cached).length,
    failed: results.filter((r) => !r.ok).length,
  };
}

export function batchReport(o: {
  results: readonly SiteResult[];
  version: string;
  dev: boolean;
  profile: string;
  outDir: string;
  finishedAt: string;
  durationMs: number;
}): BatchReport {
  const summary = countSites(o.results);
  return {
    ok: summary.failed === 0,
    version: o.version,
    dev: o.dev,
    profile: o.profile,
    outDir: o.outDir,
    summary,
    sites: o.results.map((r) => ({
      ...r,
      ...(r.exe ? { exe: basename(r.exe) } : {}),
      ...(r.msi ? { msi: basename(r.msi) } : {}),
      ...(r.manifest ? { manifest: basename(r.manifest) } : {}),
      durationMs: Math.round(r.durationMs),
    })),
    finishedAt: o.finishedAt,
    durationMs: Math.round(o.durationMs),
  };
}
