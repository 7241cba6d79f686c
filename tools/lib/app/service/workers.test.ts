/**
 * Beyond one machine, on real parts: PostgreSQL and Redis (Debian's, started on loopback for this
 * file), `signet worker` processes taking site jobs from BullMQ, the service answering downloads
 * meanwhile. Two workers share a 200-site batch and each site is built exactly once; a worker
 * killed with SIGKILL mid-job has its job finished by the other; a Redis restart mid-batch loses
 * nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, removePostgres, startPostgres } from '../../../../test/helpers/postgres.ts';
import { type RedisServer, startRedis } from '../../../../test/helpers/redis.ts';
import {
  ADMIN,
  fileBody,
  makeServiceFixture,
  type ServiceFixture,
} from '../../../../test/helpers/service-fixture.ts';
import type { ServiceApi } from './index.ts';
import type { BuildView } from './types.ts';

const BIN = join(import.meta.dirname, '..', '..', '..', 'cli', 'bin.ts');

interface WorkerProc {
  child: ChildProcess;
  log: string;
  ready: Promise<void>;
}

function startWorker(fx: ServiceFixture): WorkerProc {
  const child = spawn(process.execPath, [BIN, 'worker', '--config', fx.configPath, '--concurrency', '1'], {
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const w: WorkerProc = { child, log: '', ready: Promise.resolve() };
  w.ready = new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      w.log += d;
      if (w.log.includes(' ready')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`worker exited (${code}): ${w.log}`)));
  });
  return w;
}

async function stopWorker(w: WorkerProc): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode) return;
  const exited = new Promise((r) => w.child.once('exit', r));
  w.child.kill('SIGTERM');
  await exited;
}

async function waitBuild(
  api: ServiceApi,
  id: string,
  timeoutMs: number,
  onTick?: (v: BuildView) => Promise<void>,
): Promise<BuildView> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await api.getBuild(id);
    if (v.state === 'completed' || v.state === 'failed') return v;
    if (Date.now() > end) throw new Error(`build ${id} did not finish: ${v.done}/${v.total}`);
    if (onTick) await onTick(v);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** installer.build audit entries (one per build a builder started). */
async function builds(api: ServiceApi): Promise<{ site: string; builder: string; version: string }[]> {
  const out: { site: string; builder: string; version: string }[] = [];
  let cursor: string | null = null;
  do {
    const page = await api.audit(cursor, 500);
    for (const e of page.items)
      if (e.action === 'installer.build' && e.siteCode)
        out.push({ site: e.siteCode, builder: e.actor, version: e.detail ?? '' });
    cursor = page.next;
  } while (cursor);
  return out;
}

async function buildsPerSite(api: ServiceApi, version: string): Promise<Map<string, string[]>> {
  const per = new Map<string, string[]>();
  for (const b of await builds(api))
    if (b.version === version) per.set(b.site, [...(per.get(b.site) ?? []), b.builder]);
  return per;
}

const workerId = (w: WorkerProc) => /worker (\S+) ready/.exec(w.log)?.[1];

describe('service on workers (BullMQ on Redis, PostgreSQL)', () => {
  let pg: PgServer;
  let redis: RedisServer;
  let fx: ServiceFixture;
  let api: ServiceApi;
  const workers: WorkerProc[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    redis = await startRedis();
    // a lease long enough to survive a loaded machine, short enough for the kill test to wait it out
    fx = await makeServiceFixture({ database: pg.url, queue: redis.url, leaseMs: 10_000 });
    api = await fx.start();
    await api.uploadRelease(ADMIN, {
      version: '1.0.0',
      channel: 'stable',
      body: fileBody(await fx.agent('1.0.0')),
    });
    for (let i = 0; i < 200; i++)
      await api.putSite(ADMIN, `site-${String(i).padStart(3, '0')}`, {
        serverUrl: 'https://rmm.example.com',
        company: `Company ${i}`,
        keyVersion: 1,
        enrollmentKey: `canary-worker-key-${i}-0123456789`,
      });
  }, 180_000);

  afterAll(async () => {
    for (const w of workers) await stopWorker(w);
    await api?.close();
    await redis?.remove();
    if (pg) removePostgres(pg);
  });

  it('two workers share a 200-site batch; every site is built exactly once; downloads are answered meanwhile', async () => {
    workers.push(startWorker(fx), startWorker(fx));
    await Promise.all(workers.map((w) => w.ready));
    const b = await api.startBuild(ADMIN, { channel: 'stable', sites: 'all' });
    expect(b.total).toBe(200);
    let served = 0;
    const done = await waitBuild(api, b.id, 600_000, async (v) => {
      if (v.done > 0 && served < 3) {
        // a ready site downloads while the workers build the rest
        const ready = v.results.find((r) => r.ok)!;
        const f = await api.installer(ADMIN, { siteCode: ready.siteCode, kind: 'exe', channel: 'stable' });
        expect(f.sha256).toBe(ready.exe!.sha256);
        served++;
      }
    });
    expect(done).toMatchObject({ state: 'completed', total: 200, done: 200, failed: 0 });
    expect(served).toBeGreaterThan(0);
    const per = await buildsPerSite(api, '1.0.0');
    expect(per.size).toBe(200);
    expect([...per.values()].filter((builders) => builders.length !== 1)).toEqual([]);
    // both workers took part
    expect(new Set([...per.values()].flat()).size).toBe(2);
  }, 900_000);

  it('kill -9 of a worker mid-job: the other worker finishes its job; the batch completes', async () => {
    await api.uploadRelease(ADMIN, {
      version: '1.1.0',
      channel: 'stable',
      body: fileBody(await fx.agent('1.1.0')),
    });
    const sites = Array.from({ length: 12 }, (_, i) => `site-${String(i).padStart(3, '0')}`);
    const b = await api.startBuild(ADMIN, { channel: 'stable', sites });
    let killed = false;
    const done = await waitBuild(api, b.id, 300_000, async () => {
      if (killed) return;
      // kill the first worker as soon as it has started a 1.1.0 build
      const victim = workerId(workers[0]!);
      if ((await builds(api)).some((x) => x.version === '1.1.0' && x.builder === victim)) {
        workers[0]!.child.kill('SIGKILL');
        killed = true;
      }
    });
    expect(killed).toBe(true);
    // its interrupted site was built again by the other worker
    const per = await buildsPerSite(api, '1.1.0');
    expect(per.size).toBe(12);
    expect([...per.values()].some((builders) => builders.length === 2)).toBe(true);
    expect(done).toMatchObject({ state: 'completed', total: 12, done: 12, failed: 0 });
  }, 400_000);

  it('a Redis restart mid-batch: the batch completes', async () => {
    workers.push(startWorker(fx));
    await workers[2]!.ready;
    await api.uploadRelease(ADMIN, {
      version: '1.2.0',
      channel: 'stable',
      body: fileBody(await fx.agent('1.2.0')),
    });
    const sites = Array.from({ length: 12 }, (_, i) => `site-${String(100 + i).padStart(3, '0')}`);
    const b = await api.startBuild(ADMIN, { channel: 'stable', sites });
    let restarted = false;
    const done = await waitBuild(api, b.id, 300_000, async (v) => {
      if (restarted || v.done < 2) return;
      restarted = true;
      await redis.stop();
      await new Promise((r) => setTimeout(r, 1500));
      await redis.start();
    });
    expect(restarted).toBe(true);
    expect(done).toMatchObject({ state: 'completed', total: 12, done: 12, failed: 0 });
  }, 400_000);
});
