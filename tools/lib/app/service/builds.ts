/**
 * Batch builds: `POST /v1/builds` records a build and returns at once; the sites are built on the
 * in-process queue (bounded concurrency, p-limit), each through the same single-flight builder as
 * on-demand downloads, and the record carries per-site results. Builds a crash interrupted are
 * queued again at start. `build.completed` is emitted at the end.
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

export class BuildQueue {
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #running = new Map<string, Promise<void>>();

  private readonly d: Deps;
  private readonly builder: InstallerBuilder;

  constructor(d: Deps, builder: InstallerBuilder, concurrency: number) {
    this.d = d;
    this.builder = builder;
    this.#limit = pLimit(concurrency);
  }

  get depth(): number {
    return this.#limit.pendingCount + this.#limit.activeCount;
  }

  async start(
    actor: Actor,
    input: { channel?: Channel; version?: string; sites: string[] | 'all' },
  ): Promise<BuildView> {
    const release = await resolveRelease(this.d, input.channel ?? 'stable', input.version);
    let sites: string[];
    if (input.sites === 'all') {
      sites = [];
      let cursor: string | null = null;
      do {
        const page = await this.d.store.listSites(cursor, 500);
        sites.push(...page.items.map((s) => s.siteCode));
        cursor = page.next;
      } while (cursor);
    } else {
      sites = [...new Set(input.sites)];
      if (!sites.length)
        throw new SignetError('E_INPUT_INVALID', 'sites: name at least one site, or "all"', {
          details: { field: 'sites' },
        });
      const missing: string[] = [];
      for (const s of sites) if (!(await this.d.store.site(s))) missing.push(s);
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
      createdAt: this.d.clock(),
      finishedAt: null,
    };
    await this.d.store.insertBuild(rec);
    await record(
      this.d,
      actor,
      'build.start',
      'ok',
      null,
      `${rec.id} ${sites.length} site(s) ${release.version}`,
    );
    this.#run(rec);
    return this.view(rec);
  }

  /** Queues builds a crash interrupted. */
  async recover(): Promise<number> {
    const open = await this.d.store.unfinishedBuilds();
    for (const b of open) this.#run(b);
    return open.length;
  }

  async drain(): Promise<void> {
    this.#limit.clearQueue();
    await Promise.allSettled([...this.#running.values()]);
  }

  #run(rec: BuildRecord): void {
    const p = this.#execute(rec)
      .catch((e) => this.d.log('error', `build ${rec.id}: ${toSignetError(e).message}`))
      .finally(() => this.#running.delete(rec.id));
    this.#running.set(rec.id, p);
  }

  async #execute(rec: BuildRecord): Promise<void> {
    const d = this.d;
    const release = await d.store.releaseById(rec.releaseId);
    const done = new Map(rec.results.map((r) => [r.siteCode, r]));
    await d.store.updateBuild(rec.id, { state: 'running' });
    const results: BuildSiteResult[] = [...done.values()];
    let writes = Promise.resolve();
    const save = () => {
      writes = writes.then(() => d.store.updateBuild(rec.id, { results: [...results] }));
      return writes;
    };
    await Promise.all(
      rec.sites
        .filter((s) => !done.has(s))
        .map((siteCode) =>
          this.#limit(async () => {
            results.push(await this.#one(siteCode, release));
            await save();
          }),
        ),
    );
    await writes;
    const failed = results.filter((r) => !r.ok).length;
    await d.store.updateBuild(rec.id, {
      state: failed === results.length && results.length ? 'failed' : 'completed',
      results,
      finishedAt: d.clock(),
    });
    await emit(d, 'build.completed', {
      id: rec.id,
      version: release?.version ?? null,
      total: rec.sites.length,
      failed,
    });
  }

  async #one(
    siteCode: string,
    release: Awaited<ReturnType<Deps['store']['releaseById']>>,
  ): Promise<BuildSiteResult> {
    try {
      if (!release) throw new SignetError('E_NO_RELEASE', 'the build’s release is gone');
      const site = await this.d.store.site(siteCode);
      if (!site) throw new SignetError('E_NOT_FOUND', `site ${siteCode} was deleted`);
      const [exe, msi] = await Promise.all([
        this.builder.ensure(site, release, 'exe'),
        this.builder.ensure(site, release, 'msi'),
      ]);
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

  async view(rec: BuildRecord): Promise<BuildView> {
    const release = await this.d.store.releaseById(rec.releaseId);
    return {
      id: rec.id,
      state: rec.state,
      release: { version: release?.version ?? '?', channel: release?.channel ?? 'stable' },
      total: rec.sites.length,
      done: rec.results.length,
      failed: rec.results.filter((r) => !r.ok).length,
      results: rec.results,
      createdAt: iso(rec.createdAt)!,
      finishedAt: iso(rec.finishedAt),
    };
  }

  async get(id: string): Promise<BuildView> {
    const rec = await this.d.store.build(id);
    if (!rec) throw new SignetError('E_NOT_FOUND', `no build ${id}`);
    return this.view(rec);
  }
}
