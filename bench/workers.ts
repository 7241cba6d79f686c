/**
 * The service beyond one machine, on real parts started here on loopback: PostgreSQL and Redis
 * (Debian's), the service as a library (the vendor's server importing it) with its records in
 * PostgreSQL and its builds on BullMQ, and `signet worker` processes (the package's built
 * JavaScript) on one blob folder.
 *
 *  1. A batch of N sites (default 200) on one worker, then a new release's batch of the same sites
 *     on two workers: wall time and throughput of each, and the ratio. Each worker takes
 *     --worker-concurrency jobs at once (default 1: one job per worker, so that two workers have
 *     the two cores of this machine to share).
 *  2. Storage: bytes on disk of the blob folder once the whole files of delta-backed outputs are
 *     evicted (service.cacheBytes 0), against the whole files of the N sites' installers.
 *
 *   node bench/workers.ts [--sites 200] [--mb 5] [--worker-concurrency 1]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removePostgres, startPostgres } from '../test/helpers/postgres.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { fileBody } from '../tools/lib/app/service/body.ts';
import { createService } from '../tools/lib/app/service/index.ts';
import type { Actor, BuildView } from '../tools/lib/app/service/types.ts';
import { logger } from '../tools/lib/log.ts';
import { arg } from './installer-setup.ts';
import { builtPackage, serviceBench } from './service-setup.ts';

const SITES = arg('sites', 200);
const MB = arg('mb', 5);
const WORKER_CONC = arg('worker-concurrency', 1);
logger.level = 'warn';

const ROOT = dirname(fileURLToPath(import.meta.url));
const dir = join(ROOT, '.data', 'workers');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

// the workers run as users run them: the package's built JavaScript
const BIN = builtPackage(dir);

const ADMIN: Actor = { kind: 'token', name: 'bench', ip: '127.0.0.1', scopes: ['admin'] };

function du(path: string): number {
  let n = 0;
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    n += e.isDirectory() ? du(p) : statSync(p).size;
  }
  return n;
}

interface Worker {
  child: ChildProcess;
  log: string;
  ready: Promise<void>;
}

function startWorker(configPath: string): Worker {
  const child = spawn(
    process.execPath,
    [BIN, 'worker', '--config', configPath, '--concurrency', String(WORKER_CONC)],
    { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const w: Worker = { child, log: '', ready: Promise.resolve() };
  w.ready = new Promise((resolve, reject) => {
    const on = (d: Buffer) => {
      w.log = (w.log + d).slice(-20_000);
      if (w.log.includes(' ready')) resolve();
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (code) => reject(new Error(`worker exited (${code}): ${w.log}`)));
  });
  return w;
}

async function stopWorker(w: Worker): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode) return;
  const exited = new Promise((r) => w.child.once('exit', r));
  w.child.kill('SIGTERM');
  await exited;
}

const pg = await startPostgres();
const redis = await startRedis();
const { tsa, config, configPath, masterKey, signedAgent } = await serviceBench(dir, MB, {
  database: pg.url,
  queue: redis.url,
  cacheBytes: 0,
});
const workers: Worker[] = [];
try {
  const api = await createService({
    config,
    baseDir: dir,
    masterKey,
    publicUrl: 'https://signet.example.test',
  });
  const release = async (version: string) => {
    await api.uploadRelease(ADMIN, {
      version,
      channel: 'stable',
      body: fileBody(await signedAgent(version)),
    });
  };
  await release('1.0.0');
  for (let i = 0; i < SITES; i++)
    await api.putSite(ADMIN, `site-${String(i).padStart(4, '0')}`, {
      serverUrl: 'https://rmm.example.com',
      company: `Company ${i}`,
      keyVersion: 1,
      enrollmentKey: `bench-worker-key-${i}-0123456789`,
    });

  const batch = async (n: number): Promise<{ wall: number; view: BuildView }> => {
    while (workers.length < n) workers.push(startWorker(configPath));
    await Promise.all(workers.map((w) => w.ready));
    const t0 = performance.now();
    const b = await api.startBuild(ADMIN, { channel: 'stable', sites: 'all' });
    for (;;) {
      const v = await api.getBuild(b.id);
      if (v.state === 'completed' || v.state === 'failed') {
        if (v.failed) throw new Error(`batch on ${n} worker(s): ${v.failed} failed`);
        return { wall: (performance.now() - t0) / 1000, view: v };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const one = await batch(1);
  await release('1.0.1'); // a new release: every site is built again
  const two = await batch(2);

  // storage: evict the whole files of delta-backed outputs, then measure the blob folder
  await api.collectGarbage(0);
  const whole = two.view.results.reduce((n, r) => n + (r.exe?.size ?? 0) + (r.msi?.size ?? 0), 0);
  const onDisk = du(join(dir, 'data', 'blobs'));
  await api.close();

  console.log(
    `workers bench: ${availableParallelism()} cores, agent ${MB} MiB, ${SITES} sites, PostgreSQL + BullMQ on Redis, ${WORKER_CONC} job(s) per worker`,
  );
  const line = (label: string, r: { wall: number }) =>
    `${label}: ${r.wall.toFixed(1)} s, ${(SITES / r.wall).toFixed(2)} sites/s, ${((r.wall / SITES) * 1000).toFixed(0)} ms a site`;
  console.log(line('one worker ', one));
  console.log(line('two workers', two));
  console.log(`throughput, two workers against one: ${(one.wall / two.wall).toFixed(2)}×`);
  console.log(
    `storage for ${SITES} sites: ${(onDisk / 1e6).toFixed(1)} MB on disk (two releases' agents and bases, every site's deltas) against ${(whole / 1e9).toFixed(2)} GB of one release's whole files (${(whole / onDisk).toFixed(0)}×)`,
  );
} finally {
  for (const w of workers) await stopWorker(w);
  await tsa.close();
  await redis.remove();
  removePostgres(pg);
}
