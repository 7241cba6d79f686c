/**
 * `createService`: the service's use cases over its ports (store, blobs, key box, signer), as
 * the `ServiceApi` the HTTP adapter, the CLI and a Node server call. Defaults are the embedded
 * ones: SQLite in `service.data`, blobs beside it, an in-process build queue.
 */

import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SignetConfig } from '../../config/schema.ts';
import { SignetError } from '../../errors.ts';
import { useSpawnHelper } from '../../exec/runner.ts';
import { resolveSecret, type SecretRef } from '../../secrets.ts';
import { BlobStore } from '../../service-store/blobs.ts';
import { serviceConfigSchema } from '../../service-store/config.ts';
import { keyBox, masterKeyFrom } from '../../service-store/secrets.ts';
import { SqliteStore } from '../../service-store/sqlite.ts';
import type { Store } from '../../service-store/types.ts';
import { createSigner } from '../../sign/index.ts';
import type { Signer } from '../../sign/types.ts';
import { getBuild, InProcessDispatch, type JobDispatch, recoverBuilds, startBuild } from './builds.ts';
import type { Deps, LogFn, Stats } from './deps.ts';
import { BullDispatch, redisConnection, startSiteWorker } from './dispatch-bullmq.ts';
import { collectGarbage } from './gc.ts';
import { InstallerBuilder, installerFor } from './installers.ts';
import { createLink, installerByLink } from './links.ts';
import { listReleases, uploadRelease } from './releases.ts';
import { signUpload } from './signing.ts';
import { deleteSite, getSite, listSites, putSite } from './sites.ts';
import { authenticate, createToken, listTokens, requireScope, revokeToken, statusOf } from './tokens.ts';
import type { Health, ServiceApi } from './types.ts';
import { WebhookDispatcher } from './webhooks.ts';

export type { ServiceApi } from './types.ts';

export interface CreateServiceOptions {
  config: SignetConfig;
  /** Folder relative paths of the config resolve against. */
  baseDir: string;
  /** Environment for secret references (master key, webhook secrets, signing secrets). */
  env?: NodeJS.ProcessEnv;
  /** The master key itself (tests, --dev); otherwise `service.masterKey`. */
  masterKey?: Uint8Array;
  store?: Store;
  signer?: Signer;
  /** A dev signing profile is accepted (never on the release path). */
  dev?: boolean;
  publicUrl?: string;
  clock?: () => number;
  log?: LogFn;
  /** Start the webhook dispatcher and recover interrupted work (default true). */
  background?: boolean;
}

interface Opened {
  d: Deps;
  builder: InstallerBuilder;
  dispatch: JobDispatch;
  workDir: string;
}

/** This process's private work folder under the data folder; folders of dead processes on this host are removed. */
function processWorkDir(dataDir: string): string {
  const root = join(dataDir, 'work');
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const host = hostname();
  for (const name of readdirSync(root)) {
    const m = /^(.+)-(\d+)-[0-9a-f]{6}$/.exec(name);
    if (!m) {
      rmSync(join(root, name), { recursive: true, force: true });
      continue;
    }
    if (m[1] !== host) continue;
    let alive = true;
    try {
      process.kill(Number(m[2]), 0);
    } catch {
      alive = false;
    }
    // work folders hold keys while a build runs: none may outlive its process
    if (!alive) rmSync(join(root, name), { recursive: true, force: true });
  }
  const dir = join(root, `${host}-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

async function open(o: CreateServiceOptions): Promise<Opened> {
  const env = o.env ?? process.env;
  const service = serviceConfigSchema.parse((o.config as { service?: unknown }).service ?? {});
  const dataDir = resolve(o.baseDir, service.data);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const workDir = processWorkDir(dataDir);

  let master = o.masterKey;
  if (!master) {
    if (!service.masterKey)
      throw new SignetError(
        'E_CONFIG_INVALID',
        'service.masterKey is not set: enrollment keys need it to be stored encrypted',
        {
          hint: 'Set service.masterKey: env:SIGNET_MASTER_KEY (32 random bytes, base64: `openssl rand -base64 32`), or run `signet serve --dev`.',
          details: { field: 'service.masterKey' },
        },
      );
    master = masterKeyFrom(service.masterKey as SecretRef, env);
  }
  const store =
    o.store ??
    (service.database
      ? new (await import('../../service-store/postgres.ts')).PostgresStore(
          resolveSecretUrl(service.database, env),
        )
      : new SqliteStore(join(dataDir, 'service.db')));
  await store.migrate();
  const signer =
    o.signer ??
    createSigner(o.config, {
      ...(service.profile ? { profile: service.profile } : {}),
      releasePath: !o.dev,
      baseDir: o.baseDir,
      env,
    });
  if (signer.dev && !o.dev)
    throw new SignetError(
      'E_SIGN_DEV_PROFILE_REFUSED',
      `the signing profile ${signer.profile} is a dev profile`,
      {
        hint: 'Point service.profile at a release profile, or run `signet serve --dev`.',
      },
    );

  let builder: InstallerBuilder | undefined;
  let dispatch: JobDispatch | undefined;
  const stats: Stats = {
    buildsStarted: 0,
    buildsFailed: 0,
    buildSeconds: [],
    cacheHits: 0,
    cacheMisses: 0,
    assembled: 0,
    queueDepth: async () => ((await dispatch?.depth()) ?? 0) + (builder?.running ?? 0),
  };
  const d: Deps = {
    config: o.config,
    service,
    baseDir: o.baseDir,
    store,
    blobs: new BlobStore(join(dataDir, 'blobs')),
    keys: await keyBox(master),
    signer,
    workDir,
    publicUrl: o.publicUrl ?? service.publicUrl ?? `http://${service.listen}`,
    clock: o.clock ?? Date.now,
    log: o.log ?? (() => undefined),
    env,
    stats,
  };
  builder = new InstallerBuilder(d);
  const concurrency = service.buildConcurrency ?? Math.max(1, availableParallelism());
  dispatch = service.queue
    ? new BullDispatch(redisConnection(service.queue, env))
    : new InProcessDispatch(d, builder, concurrency);
  return { d, builder, dispatch, workDir };
}

export async function createService(o: CreateServiceOptions): Promise<ServiceApi> {
  const { d, builder, dispatch, workDir } = await open(o);
  // builds start their programs from the spawn helper (a small process), for the service's life
  const releaseHelper = useSpawnHelper();
  const store = d.store;
  const webhooks = new WebhookDispatcher(d);
  d.wakeWebhooks = () => webhooks.wake();
  if (o.background !== false) {
    await builder.recover();
    if (dispatch.kind === 'in-process') await recoverBuilds(d, dispatch);
    webhooks.start();
  }
  const metrics = serviceMetrics(d);
  let closed = false;
  // old outputs are collected every 10 minutes (and on demand)
  const gcTimer = setInterval(() => {
    collectGarbage(d).catch((e) => d.log('warn', `garbage collection: ${(e as Error).message}`));
  }, 10 * 60_000);
  gcTimer.unref();

  const api: ServiceApi = {
    createToken: (input) => createToken(d, input),
    listTokens: () => listTokens(d),
    revokeToken: (n) => revokeToken(d, n),
    authenticate: (bearer, ip) => authenticate(d, bearer, ip),
    requireScope,
    tokenStatus: (t) => statusOf(t, d.clock()),
    uploadRelease: (actor, input) => uploadRelease(d, actor, input),
    listReleases: () => listReleases(d),
    putSite: (actor, code, input) => putSite(d, actor, code, input),
    getSite: (code) => getSite(d, code),
    listSites: (cursor, limit) => listSites(d, cursor, limit),
    deleteSite: (actor, code) => deleteSite(d, actor, code),
    installer: async (_actor, input) => installerFor(d, builder, input),
    createLink: (actor, code, input) => createLink(d, actor, code, input),
    installerByLink: (token, ip) => installerByLink(d, builder, token, ip),
    startBuild: (actor, input) => startBuild(d, dispatch, actor, input),
    getBuild: (id) => getBuild(d, id),
    sign: (actor, input) => signUpload(d, actor, input),
    audit: (cursor, limit) =>
      store.listAudit(cursor ? Number(cursor) : null, Math.min(Math.max(limit, 1), 500)),
    deliveries: (limit) => store.listDeliveries(Math.min(Math.max(limit, 1), 500)),
    health: async () => ({ ok: !closed, checks: [{ name: 'process', ok: !closed }] }),
    readiness: () => readiness(d, closed),
    metrics: async () => ({ contentType: metrics.contentType, text: await metrics.metrics() }),
    // an output's delta may still be on its way: collect once it is recorded
    collectGarbage: async (minBlobAgeMs) => {
      await builder.settled();
      return collectGarbage(d, minBlobAgeMs);
    },
    settled: () => builder.settled(),
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(gcTimer);
      await webhooks.stop();
      await dispatch.close();
      await builder.drain();
      await store.close();
      releaseHelper();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
  return api;
}

export interface Worker {
  id: string;
  close(): Promise<void>;
}

/**
 * `signet worker`: takes site jobs from BullMQ (`service.queue`) and builds them with this
 * process's signer, over the shared records (`service.database`) and blobs (`service.data`).
 */
export async function createWorker(o: CreateServiceOptions & { concurrency?: number }): Promise<Worker> {
  const service = serviceConfigSchema.parse((o.config as { service?: unknown }).service ?? {});
  if (!service.queue)
    throw new SignetError(
      'E_CONFIG_INVALID',
      'service.queue is not set: a worker takes its jobs from BullMQ on Redis',
      {
        hint: 'Set service.queue: redis://HOST:PORT (and service.database: postgres://… shared with the service).',
        details: { field: 'service.queue' },
      },
    );
  const { d, builder, dispatch, workDir } = await open(o);
  // builds start their programs from the spawn helper (a small process), for the worker's life
  const releaseHelper = useSpawnHelper();
  await builder.recover();
  const worker = startSiteWorker(d, builder, redisConnection(service.queue, d.env), {
    concurrency: o.concurrency ?? service.buildConcurrency ?? Math.max(1, availableParallelism()),
    lockDurationMs: service.leaseMs,
    stalledIntervalMs: Math.max(500, Math.floor(service.leaseMs / 2)),
  });
  let closed = false;
  return {
    id: builder.id,
    close: async () => {
      if (closed) return;
      closed = true;
      await worker.close();
      await dispatch.close();
      await builder.drain();
      await d.store.close();
      releaseHelper();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/** `service.database` is a postgres:// URL, or env:/file: holding one (it may carry a password). */
function resolveSecretUrl(value: string, env: NodeJS.ProcessEnv): string {
  if (/^(env|file):/.test(value)) return resolveSecret(value as SecretRef, 'service.database', env);
  if (!/^postgres(ql)?:\/\//.test(value))
    throw new SignetError(
      'E_CONFIG_INVALID',
      'service.database: expected postgres://… (or env:NAME / file:PATH holding it)',
      {
        details: { field: 'service.database' },
      },
    );
  if (new URL(value).password)
    throw new SignetError(
      'E_SECRET_ON_ARGV',
      'service.database carries a password: give it as env:NAME or file:PATH',
      {
        details: { field: 'service.database' },
      },
    );
  return value;
}

async function readiness(d: Deps, closed: boolean): Promise<Health> {
  const checks: Health['checks'] = [];
  const check = async (name: string, fn: () => Promise<void> | void) => {
    try {
      await fn();
      checks.push({ name, ok: true });
    } catch (e) {
      // the public answer names the failing check; its message (paths, hosts) goes to the log only
      d.log('warn', `readiness: ${name}: ${(e as Error).message}`);
      checks.push({ name, ok: false });
    }
  };
  await check('open', () => {
    if (closed) throw new Error('shutting down');
  });
  await check('database', () => d.store.ping());
  await check('blobs', () => {
    const probe = d.blobs.tempPath();
    mkdirSync(probe);
    rmSync(probe, { recursive: true });
  });
  await check('signer', () => d.signer.prepare?.());
  await check('tools', async () => {
    const { preflightTools } = await import('../../installers/build.ts');
    preflightTools(d.env);
  });
  return { ok: checks.every((c) => c.ok), checks };
}

function serviceMetrics(d: Deps): Registry {
  const registry = new Registry();
  new Gauge({
    name: 'signet_build_queue_depth',
    help: 'Site builds queued or running',
    registers: [registry],
    async collect() {
      this.set(await d.stats.queueDepth());
    },
  });
  new Counter({
    name: 'signet_builds_total',
    help: 'Site builds started',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(d.stats.buildsStarted);
    },
  });
  new Counter({
    name: 'signet_builds_failed_total',
    help: 'Site builds that failed',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(d.stats.buildsFailed);
    },
  });
  new Counter({
    name: 'signet_installer_cache_hits_total',
    help: 'Installer requests served from a ready output',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(d.stats.cacheHits);
    },
  });
  new Counter({
    name: 'signet_installer_cache_misses_total',
    help: 'Installer requests that needed a build',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(d.stats.cacheMisses);
    },
  });
  const hist = new Histogram({
    name: 'signet_build_duration_seconds',
    help: 'Duration of one site build (both installers, signed and verified)',
    buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [registry],
    collect() {
      for (const s of d.stats.buildSeconds.splice(0)) hist.observe(s);
    },
  });
  return registry;
}
