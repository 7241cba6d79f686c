/**
 * Per-site installers on demand. An output is identified by what goes into it (site fields, key
 * version and fingerprint, release, Signet's version, signer profile), so a rotation or a new
 * release makes the next request build afresh. Concurrent requests for one site and release share
 * one build (in process: one promise per output key; across processes: the store's claim). A
 * build runs in a private work folder that is always removed (it holds the site's key), every
 * output is verified after it was written, then stored as a blob and marked ready. A ready output
 * is re-hashed and re-verified the first time this process serves it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { SignetError, toSignetError } from '../../errors.ts';
import { buildSiteInstallers, signetVersion } from '../../installers/build.ts';
import { readManifest } from '../../installers/manifest.ts';
import { withLogSink } from '../../log.ts';
import {
  assembleDelta,
  type DeltaTrust,
  decodeDelta,
  encodeDelta,
  makeDelta,
} from '../../service-store/delta.ts';
import type {
  Channel,
  OutputKind,
  OutputRecord,
  ReleaseRecord,
  SiteRecord,
} from '../../service-store/types.ts';
import { type Deps, record } from './deps.ts';
import { resolveRelease } from './releases.ts';
import { requireSite, siteConfigOf } from './sites.ts';
import type { InstallerFile } from './types.ts';

export const KINDS: OutputKind[] = ['exe', 'msi'];

/** The trust a re-attached signature is checked against: the service profile's own pins. */
export function deltaTrust(d: Deps): DeltaTrust {
  const p = d.config.signing.profiles[d.signer.profile];
  const v = p?.verify;
  const abs = (f: string | undefined) => (f ? resolve(d.baseDir, f) : undefined);
  return {
    caFile: abs(v?.caFile),
    tsaCaFile: abs(v?.tsaCaFile ?? v?.caFile),
    leafSha256: v?.leafSha256?.[0],
  };
}

export function outputKey(
  site: SiteRecord,
  release: ReleaseRecord,
  profile: string,
  kind: OutputKind,
): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        site: site.siteCode,
        fields: site.fields,
        keyVersion: site.keyVersion,
        fingerprint: site.fingerprint,
        release: release.id,
        agent: release.agentSha256,
        signet: signetVersion(),
        profile,
        kind,
      }),
    )
    .digest('hex');
}

export class InstallerBuilder {
  readonly #inflight = new Map<string, Promise<void>>();
  /** This process, as recorded on the outputs it builds. */
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  /** Outputs this process re-checked (hash + signature) since it started. */
  readonly #checked = new Set<string>();
  #closing = false;

  private readonly d: Deps;

  constructor(d: Deps) {
    this.d = d;
  }

  get running(): number {
    return this.#inflight.size;
  }

  readonly #baseBlobs = new Map<string, string>();

  /** Keeps the release base once (by content) and the site's delta; returns both blob hashes. */
  async #storeDelta(delta: { base: string; bytes: Buffer }): Promise<{ base: string; delta: string }> {
    let base = this.#baseBlobs.get(delta.base);
    if (!base || !this.d.blobs.has(base)) {
      base = (await this.d.blobs.importFile(delta.base)).sha256;
      this.#baseBlobs.set(delta.base, base);
    }
    const stored = await this.d.blobs.put(Readable.from([delta.bytes]));
    return { base, delta: stored.sha256 };
  }

  /**
   * Forgets builds a crash interrupted, so the next request (or batch) runs them again: claims
   * without a lease (from before leases), whose lease ended, or made by a process of this host that
   * is gone (a restarted service does not wait out its killed predecessor's lease). Live claims of
   * other processes stay.
   */
  async recover(): Promise<number> {
    const now = this.d.clock();
    const stale = (await this.d.store.staleOutputs()).filter(
      (o) => !o.leaseUntil || o.leaseUntil < now || deadLocalBuilder(o.builtBy, this.id),
    );
    for (const o of stale) await this.d.store.deleteOutput(o.key);
    return stale.length;
  }

  async drain(): Promise<void> {
    this.#closing = true;
    await Promise.allSettled([...this.#inflight.values()]);
    await this.settled();
  }

  /** Work left running behind an answered build (storing its base + delta). */
  readonly #background = new Set<Promise<void>>();

  #behind(p: Promise<void>): void {
    const tracked = p.finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }

  async settled(): Promise<void> {
    while (this.#background.size) await Promise.allSettled([...this.#background]);
  }

  /** The ready, verified output of `kind` for the site and release, built first when needed. */
  async ensure(site: SiteRecord, release: ReleaseRecord, kind: OutputKind): Promise<OutputRecord> {
    const key = outputKey(site, release, this.d.signer.profile, kind);
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = await this.d.store.output(key);
      if (existing?.state === 'ready') {
        if (await this.#servable(existing)) {
          this.d.stats.cacheHits++;
          return existing;
        }
        await this.d.store.deleteOutput(key);
      } else if (existing?.state === 'failed') {
        await this.d.store.deleteOutput(key);
      }
      if (attempt === 0) this.d.stats.cacheMisses++;
      await this.#build(site, release);
      const after = await this.d.store.output(key);
      // built here or by another process: served only once this process checked it (hash, signature)
      if (after?.state === 'ready' && (await this.#servable(after))) return after;
      if (after?.state === 'failed')
        throw new SignetError(
          'E_INSTALLER_BUILD_FAILED',
          `building ${site.siteCode}'s installers failed: ${after.error ?? 'unknown'}`,
          {
            details: { siteCode: site.siteCode },
          },
        );
    }
    throw new SignetError(
      'E_INSTALLER_BUILD_FAILED',
      `the installers of ${site.siteCode} could not be made servable`,
    );
  }

  async #servable(o: OutputRecord): Promise<boolean> {
    if (!o.sha256) return false;
    const checked = `${o.key}:${o.sha256}`;
    if (this.#checked.has(checked) && this.d.blobs.has(o.sha256)) return true;
    // an evicted whole file is assembled again from its base and delta (attach verifies, the hash must match)
    if (!this.d.blobs.has(o.sha256) && !(await this.#assemble(o))) return false;
    if (!this.#checked.has(checked)) {
      if (!(await this.d.blobs.check(o.sha256))) return false;
      try {
        await this.d.signer.verify(this.d.blobs.path(o.sha256));
      } catch {
        return false;
      }
    }
    this.#checked.add(checked);
    return true;
  }

  async #assemble(o: OutputRecord): Promise<boolean> {
    const d = this.d;
    if (!o.deltaSha256 || !o.baseSha256 || !d.blobs.has(o.deltaSha256) || !d.blobs.has(o.baseSha256))
      return false;
    const out = join(d.workDir, `assemble-${randomBytes(6).toString('hex')}`);
    try {
      const delta = decodeDelta(readFileSync(d.blobs.path(o.deltaSha256)));
      if (delta.header.sha256 !== o.sha256 || delta.header.base !== o.baseSha256) return false;
      await assembleDelta(d.blobs.path(o.baseSha256), delta, out, d.workDir, deltaTrust(d));
      const blob = await d.blobs.adopt(out);
      d.stats.assembled++;
      return blob.sha256 === o.sha256;
    } catch (e) {
      d.log('warn', `assembling ${o.fileName ?? o.key} from its delta failed: ${toSignetError(e).message}`);
      return false;
    } finally {
      rmSync(out, { force: true });
    }
  }

  /** One build of both kinds per site and release, shared by every concurrent caller. */
  #build(site: SiteRecord, release: ReleaseRecord): Promise<void> {
    const id = outputKey(site, release, this.d.signer.profile, 'exe');
    const running = this.#inflight.get(id);
    if (running) return running;
    if (this.#closing)
      return Promise.reject(new SignetError('E_SERVICE_CLOSING', 'the service is shutting down'));
    // on-demand builds are bounded (service.buildConcurrency, default 2 per core): 1,000 first
    // downloads at once run a few builds at a time, not 1,000 makensis
    const p = this.#slot()
      .then(async (free) => {
        try {
          await this.#run(site, release);
        } finally {
          free();
        }
      })
      .finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, p);
    return p;
  }

  readonly #agents = new Map<string, Promise<Awaited<ReturnType<Deps['signer']['verify']>>>>();

  /** The release's agent, verified once per process (it was verified at upload; not again per build). */
  #agent(release: ReleaseRecord, path: string) {
    let v = this.#agents.get(release.agentSha256);
    if (!v) {
      v = this.d.signer.verify(path).then((a) => {
        if (a.sha256 !== release.agentSha256)
          throw new SignetError(
            'E_VERIFY_FAILED',
            `the stored agent of ${release.version} is not the one that was released`,
            {
              details: { version: release.version },
            },
          );
        return a;
      });
      v.catch(() => this.#agents.delete(release.agentSha256));
      this.#agents.set(release.agentSha256, v);
    }
    return v;
  }

  #slots = 0;
  readonly #waiting: (() => void)[] = [];

  /** A build slot; the function returned hands it to the next waiter (or frees it). */
  async #slot(): Promise<() => void> {
    // a build mostly waits (tools, the TSA, the disk): a few per core keep the cores busy
    const max = this.d.service.buildConcurrency ?? 2 * Math.max(1, availableParallelism());
    if (this.#slots < max) this.#slots++;
    else await new Promise<void>((r) => this.#waiting.push(r));
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#slots--;
    };
  }

  async #run(site: SiteRecord, release: ReleaseRecord): Promise<void> {
    const d = this.d;
    const now = d.clock();
    const keys = Object.fromEntries(
      KINDS.map((k) => [k, outputKey(site, release, d.signer.profile, k)]),
    ) as Record<OutputKind, string>;
    const claims = await Promise.all(
      KINDS.map((kind) =>
        d.store.claimOutput(
          {
            key: keys[kind],
            siteCode: site.siteCode,
            releaseId: release.id,
            keyVersion: site.keyVersion,
            kind,
            state: 'building',
            sha256: null,
            size: null,
            fileName: null,
            error: null,
            createdAt: now,
            verifiedAt: null,
            leaseUntil: now + d.service.leaseMs,
            builtBy: this.id,
          },
          now,
        ),
      ),
    );
    // The kinds this call claimed are its to build (a build makes both; an output another process
    // holds, or one already ready, is left as it is). None claimed: another process builds them.
    const mine = KINDS.filter((_, i) => claims[i]!.claimed);
    if (!mine.length) {
      await this.#await(keys);
      return;
    }
    const started = d.clock();
    d.stats.buildsStarted++;
    await record(
      d,
      { kind: 'anonymous', name: this.id, ip: '-', scopes: [] },
      'installer.build',
      'started',
      site.siteCode,
      release.version,
    );
    const work = mkdtempSync(join(d.workDir, 'build-'));
    const renew = setInterval(() => {
      d.store
        .renewLeases(
          mine.map((k) => keys[k]),
          this.id,
          d.clock() + d.service.leaseMs,
        )
        .catch(() => undefined);
    }, d.service.leaseMs / 3);
    renew.unref();
    try {
      const agentPath = d.blobs.path(release.agentSha256);
      const agent = await this.#agent(release, agentPath);
      const config = {
        ...d.config,
        installers: { ...d.config.installers, cacheDir: join(work, 'cache') },
      };
      // the builder's own warnings go to the service's log, not the process's stderr
      const sink = { write: (line: string) => d.log(line.startsWith('warn: ') ? 'warn' : 'info', line) };
      const siteConfig = await siteConfigOf(d, site);
      // incrementally assembled outputs are also kept as a delta of the release base (a few KB)
      const deltas = new Map<OutputKind, { base: string; bytes: Buffer }>();
      const onAssembled = async (p: {
        kind: OutputKind;
        base: string;
        unsigned?: string;
        signed: string;
        sha256: string;
        size: number;
      }) => {
        const delta = await makeDelta({ ...p, work, trust: deltaTrust(d), verify: false });
        deltas.set(p.kind, { base: p.base, bytes: encodeDelta(delta) });
      };
      const result = await withLogSink(sink, () =>
        buildSiteInstallers({
          agent,
          sites: [siteConfig],
          config,
          signer: d.signer,
          outDir: join(work, 'out'),
          concurrency: 1,
          // the blob store's own file, verified by #agent with this signer (once per release)
          agentIsPrivate: true,
          version: release.version,
          baseDir: d.baseDir,
          force: true,
          onAssembled,
        }),
      );
      const r = result.results[0];
      if (!result.ok || !r?.ok || !r.exe || !r.msi) {
        const message = r?.error ? `${r.error.code}: ${r.error.message}` : 'the build failed';
        for (const kind of mine) await d.store.updateOutput(keys[kind], { state: 'failed', error: message });
        d.stats.buildsFailed++;
        return;
      }
      // The signer verified each output (signature, timestamp, pins) in its own private folder and
      // the build moved it through this build's private folders; the manifest names the verified
      // SHA-256, and the bytes that become the blob must be those.
      const verified = new Map(
        (readManifest(r.manifest ?? '')?.outputs ?? []).map((o) => [o.kind, o.sha256] as const),
      );
      const keep = async (kind: OutputKind) => {
        const file = kind === 'exe' ? r.exe! : r.msi!;
        const expected = verified.get(kind);
        if (!expected)
          throw new SignetError('E_VERIFY_FAILED', `${kind}: the build's manifest names no verified file`);
        const blob = await d.blobs.adopt(file);
        if (blob.sha256 !== expected)
          throw new SignetError('E_VERIFY_FAILED', `${kind} changed after it was verified`);
        await d.store.updateOutput(keys[kind], {
          state: 'ready',
          sha256: blob.sha256,
          size: blob.size,
          fileName: file.slice(file.lastIndexOf('/') + 1),
          verifiedAt: d.clock(),
        });
        this.#checked.add(`${keys[kind]}:${blob.sha256}`);
        // The base + delta are stored after the answer. Until they are recorded the output is kept
        // whole (only a delta-backed file is ever evicted), and a delta recorded on a newer output
        // of the same key is never used (its header names this file's SHA-256).
        const delta = deltas.get(kind);
        if (delta)
          this.#behind(
            this.#storeDelta(delta)
              .then((stored) =>
                d.store.updateOutput(keys[kind], { baseSha256: stored.base, deltaSha256: stored.delta }),
              )
              .catch((e: unknown) =>
                d.log('warn', `storing the delta of ${site.siteCode} (${kind}): ${toSignetError(e).message}`),
              ),
          );
      };
      // both kinds at once: hashing one file overlaps the other's disk writes
      const kept = await Promise.allSettled(mine.map(keep));
      const failed = kept.find((k): k is PromiseRejectedResult => k.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (e) {
      const err = toSignetError(e);
      // a bug, not a refusal: its stack goes to the service log (the answer carries the code)
      if (!(e instanceof SignetError))
        d.log('error', `building ${site.siteCode}: ${(e as Error)?.stack ?? String(e)}`);
      for (const kind of mine)
        await d.store.updateOutput(keys[kind], { state: 'failed', error: `${err.code}: ${err.message}` });
      d.stats.buildsFailed++;
    } finally {
      clearInterval(renew);
      rmSync(work, { recursive: true, force: true });
      d.stats.buildSeconds.push((d.clock() - started) / 1000);
    }
  }

  /** Waits for another process's build; returns when it finished, or when its lease ended (it died). */
  async #await(keys: Record<OutputKind, string>): Promise<void> {
    for (;;) {
      const states = await Promise.all(KINDS.map((k) => this.d.store.output(keys[k])));
      if (states.every((s) => s && s.state !== 'building')) return;
      if (states.some((s) => !s || (s.state === 'building' && (s.leaseUntil ?? 0) < this.d.clock()))) return;
      if (this.#closing) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * `builtBy` (`host:pid:nonce`) names a process of this host that no longer runs: its pid is gone,
 * or it is this process's pid under another nonce (a restarted container reuses pids).
 */
export function deadLocalBuilder(builtBy: string | null | undefined, self: string): boolean {
  const m = /^(.+):(\d+):([0-9a-f]+)$/.exec(builtBy ?? '');
  if (!m || m[1] !== hostname() || builtBy === self) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export async function installerFor(
  d: Deps,
  builder: InstallerBuilder,
  input: { siteCode: string; kind: OutputKind; channel: Channel; version?: string },
): Promise<InstallerFile> {
  const site = await requireSite(d, input.siteCode);
  const release = await resolveRelease(d, input.channel, input.version);
  const o = await builder.ensure(site, release, input.kind);
  const sha256 = o.sha256!;
  return {
    kind: input.kind,
    fileName: o.fileName!,
    sha256,
    size: o.size!,
    release: { version: release.version, channel: release.channel },
    siteCode: site.siteCode,
    keyVersion: site.keyVersion,
    open: (range) => d.blobs.read(sha256, range) as import('node:stream').Readable,
    path: d.blobs.path(sha256),
  };
}
