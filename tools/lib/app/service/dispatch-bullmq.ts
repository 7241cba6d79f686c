/**
 * Batch builds beyond one machine, on an existing queue engine: BullMQ on Redis. The service
 * enqueues one job per site (job id = build + site, so a job is never queued twice); `signet
 * worker` processes take them. A worker that dies mid-job (kill -9) stops renewing its job lock;
 * BullMQ's stalled-job check hands the job to another worker, whose builder takes over the dead
 * one's output claim once its lease ends — so every site is still built exactly once.
 */
import { Queue, Worker } from 'bullmq';
import { SignetError } from '../../errors.ts';
import { resolveSecret, type SecretRef } from '../../secrets.ts';
import { type JobDispatch, runSiteJob, type SiteJob } from './builds.ts';
import type { Deps } from './deps.ts';
import type { InstallerBuilder } from './installers.ts';

export const QUEUE_NAME = 'signet-builds';

export interface RedisConnection {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: object;
  /** BullMQ workers need blocking commands without a per-request retry cap. */
  maxRetriesPerRequest: null;
}

/** `service.queue`: redis:// or rediss:// (or env:/file: holding one; a password only that way). */
export function redisConnection(value: string, env: NodeJS.ProcessEnv): RedisConnection {
  const secret = /^(env|file):/.test(value);
  const text = secret ? resolveSecret(value as SecretRef, 'service.queue', env) : value;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new SignetError('E_CONFIG_INVALID', 'service.queue: expected redis://HOST:PORT', {
      details: { field: 'service.queue' },
    });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new SignetError('E_CONFIG_INVALID', 'service.queue: expected redis:// or rediss://', {
      details: { field: 'service.queue' },
    });
  if (u.password && !secret)
    throw new SignetError(
      'E_SECRET_ON_ARGV',
      'service.queue carries a password: give it as env:NAME or file:PATH',
      {
        details: { field: 'service.queue' },
      },
    );
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

const jobId = (j: SiteJob) => `${j.buildId}-${j.siteCode}`;

export class BullDispatch implements JobDispatch {
  readonly kind = 'bullmq' as const;
  readonly #queue: Queue;

  constructor(connection: RedisConnection) {
    this.#queue = new Queue(QUEUE_NAME, { connection });
    this.#queue.on('error', () => undefined);
  }

  async enqueue(jobs: SiteJob[]): Promise<void> {
    await this.#queue.addBulk(
      jobs.map((data) => ({
        name: 'site',
        data,
        opts: {
          jobId: jobId(data),
          attempts: 5,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: { count: 10_000 },
          removeOnFail: { count: 10_000 },
        },
      })),
    );
  }

  async depth(): Promise<number> {
    const c = await this.#queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(c).reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    await this.#queue.close();
  }
}

export interface SiteWorker {
  close(): Promise<void>;
}

/** A BullMQ worker running site jobs through this process's builder. */
export function startSiteWorker(
  d: Deps,
  builder: InstallerBuilder,
  connection: RedisConnection,
  options: { concurrency: number; lockDurationMs?: number; stalledIntervalMs?: number },
): SiteWorker {
  const worker = new Worker<SiteJob>(
    QUEUE_NAME,
    async (job) => {
      const r = await runSiteJob(d, builder, job.data);
      // a site whose build failed is a result, not a job failure (no retry for a bad site)
      return r;
    },
    {
      connection,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.stalledIntervalMs ?? 15_000,
      maxStalledCount: 5,
    },
  );
  worker.on('error', (e) => d.log('warn', `queue: ${e.message}`));
  worker.on('failed', (job, e) => d.log('warn', `job ${job?.id ?? '?'} failed: ${e.message}`));
  return { close: () => worker.close() };
}
