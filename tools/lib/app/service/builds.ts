/**
 * Batch builds: `POST /v1/builds` records a build and returns at once; each site is one job,
 * run through the same single-flight builder as on-demand downloads, its result stored per site
 * (a retried job overwrites its own). The job runner is a port: in process (bounded concurrency,
 * p-limit — the embedded default) or BullMQ on Redis for `signet worker` processes
 * (dispatch-bullmq.ts). The last job to finish marks the build done and emits `build.completed`.
 */
import pLimit from 'p-limit';
import { SignetError, toSignetError } from '../../errors.ts';
import { newId } from '../../service-store/secrets.ts';
import type { BuildRecord, BuildSiteResult, Channel } from '../../service-store/types.ts';
import { type Deps, iso, record } from './deps.ts';
import type { InstallerBuilder } from './installers.ts';
import { resolveRelease } from './releases.ts';
import type { Actor, BuildView } from './types.ts';
import { emit } from './webhooks.ts';

export interface SiteJob {
  buildId: string;
  siteCode: string;
}

/** Where site jobs run. */
export interface JobDispatch {
  readonly kind: 'in-process' | 'bullmq';
  /** Queues the jobs (idempotent per build and site). */
  enqueue(jobs: SiteJob[]): Promise<void>;
  /** Jobs waiting or running, as far as this process can tell. */
  depth(): Promise<number>;
  close(): Promise<void>;
}

/** Runs one site job: builds (or finds) both installers, stores the result, finishes the build when it is the last. */
export async function runSiteJob(d: Deps, builder: InstallerBuilder, job: SiteJob): Promise<BuildSiteResult> {
  const build = await d.store.build(job.buildId);
  if (!build) throw new SignetError('E_NOT_FOUND', `no build ${job.buildId}`);
  if (build.state === 'queued') await d.store.updateBuild(build.id, { state: 'running' });
  const result = await siteResult(d, builder, build, job.siteCode);
  await d.store.putBuildResult(build.id, result, d.clock());
  const results = await d.store.buildResults(build.id);
  const codes = new Set(results.map((r) => r.siteCode));
  if (build.sites.every((s) => codes.has(s))) {
    const failed = results.filter((r) => !r.ok).length;
    const state = failed === results.length ? 'failed' : 'completed';
    if (await d.store.finishBuild(build.id, state, d.clock())) {
      const release = await d.store.releaseById(build.releaseId);
      await emit(d, 'build.completed', {
        id: build.id,
        version: release?.version ?? null,
        total: build.sites.length,
        failed,
      });
    }
  }
  return result;
}

async function siteResult(
  d: Deps,
  builder: InstallerBuilder,
  build: BuildRecord,
  siteCode: string,
): Promise<BuildSiteResult> {
  try {
    const release = await d.store.releaseById(build.releaseId);
    if (!release) throw new SignetError('E_NO_RELEASE', 'the build’s release is gone');
    const site = await d.store.site(siteCode);
    if (!site) throw new SignetError('E_NOT_FOUND', `site ${siteCode} was deleted`);
    const exe = await builder.ensure(site, release, 'exe');
    const msi = await builder.ensure(site, release, 'msi');
    return {
      siteCode,
      ok: true,
      exe: { sha256: exe.sha256!, size: exe.size!, fileName: exe.fileName! },
      msi: { sha256: msi.sha256!, size: msi.size!, fileName: msi.fileName! },
    };
  } catch (e) {
    const err = toSignetError(e);
    return { siteCode, ok: false, error: { code: err.code, message: err.message } };
  }
}

/** The embedded job runner: this process, bounded concurrency. */
export class InProcessDispatch implements JobDispatch {
  readonly kind = 'in-process' as const;
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #running = new Set<Promise<unknown>>();
  readonly #d: Deps;
  readonly #builder: InstallerBuilder;

  constructor(d: Deps, builder: InstallerBuilder, concurrency: number) {
    this.#d = d;
    this.#builder = builder;
    this.#limit = pLimit(concurrency);
  }

  async enqueue(jobs: SiteJob[]): Promise<void> {
    for (const job of jobs) {
      const p = this.#limit(() => runSiteJob(this.#d, this.#builder, job)).catch((e) =>
        this.#d.log('error', `build ${job.buildId} site ${job.siteCode}: ${toSignetError(e).message}`),
      );
      this.#running.add(p);
      p.finally(() => this.#running.delete(p));
    }
  }

  async depth(): Promise<number> {
    return this.#limit.pendingCount + this.#limit.activeCount;
  }

  async close(): Promise<void> {
    this.#limit.clearQueue();
    await Promise.allSettled([...this.#running]);
  }
}

export async function startBuild(
  d: Deps,
  dispatch: JobDispatch,
  actor: Actor,
  input: { channel?: Channel; version?: string; sites: string[] | 'all' },
): Promise<BuildView> {
  const release = await resolveRelease(d, input.channel ?? 'stable', input.version);
  let sites: string[];
  if (input.sites === 'all') {
    sites = [];
    let cursor: string | null = null;
    do {
      const page = await d.store.listSites(cursor, 500);
      sites.push(...page.items.map((s) => s.siteCode));
      cursor = page.next;
    } while (cursor);
    if (!sites.length) throw new SignetError('E_NOT_FOUND', 'there are no sites to build');
  } else {
    sites = [...new Set(input.sites)];
    if (!sites.length)
      throw new SignetError('E_INPUT_INVALID', 'sites: name at least one site, or "all"', {
        details: { field: 'sites' },
      });
    const missing: string[] = [];
    for (const s of sites) if (!(await d.store.site(s))) missing.push(s);
    if (missing.length)
      throw new SignetError('E_NOT_FOUND', `no such site(s): ${missing.slice(0, 10).join(', ')}`, {
        details: { missing },
      });
  }
  const rec: BuildRecord = {
    id: newId('bld'),
    releaseId: release.id,
    sites,
    state: 'queued',
    results: [],
    createdBy: actor.name,
    createdAt: d.clock(),
    finishedAt: null,
  };
  await d.store.insertBuild(rec);
  await record(
    d,
    actor,
    'build.start',
    'ok',
    null,
    `${rec.id} ${sites.length} site(s) ${release.version} via ${dispatch.kind}`,
  );
  await dispatch.enqueue(sites.map((siteCode) => ({ buildId: rec.id, siteCode })));
  return buildView(d, rec);
}

/** Queues again the jobs of builds a crash interrupted (in process; BullMQ keeps its own jobs). */
export async function recoverBuilds(d: Deps, dispatch: JobDispatch): Promise<number> {
  const open = await d.store.unfinishedBuilds();
  for (const b of open) {
    const done = new Set((await d.store.buildResults(b.id)).map((r) => r.siteCode));
    await dispatch.enqueue(
      b.sites.filter((s) => !done.has(s)).map((siteCode) => ({ buildId: b.id, siteCode })),
    );
  }
  return open.length;
}

export async function buildView(d: Deps, rec: BuildRecord): Promise<BuildView> {
  const release = await d.store.releaseById(rec.releaseId);
  const results = await d.store.buildResults(rec.id);
  return {
    id: rec.id,
    state: rec.state,
    release: { version: release?.version ?? '?', channel: release?.channel ?? 'stable' },
    total: rec.sites.length,
    done: results.length,
    failed: results.filter((r) => !r.ok).length,
    results,
    createdAt: iso(rec.createdAt)!,
    finishedAt: iso(rec.finishedAt),
  };
}

export async function getBuild(d: Deps, id: string): Promise<BuildView> {
  const rec = await d.store.build(id);
  if (!rec) throw new SignetError('E_NOT_FOUND', `no build ${id}`);
  return buildView(d, rec);
}
