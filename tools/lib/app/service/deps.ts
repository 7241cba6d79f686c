/** What every service use case works over: explicit ports, nothing process-wide. */
import type { SignetConfig } from '../../config/schema.ts';
import type { BlobStore } from '../../service-store/blobs.ts';
import type { ServiceConfig } from '../../service-store/config.ts';
import type { KeyBox } from '../../service-store/secrets.ts';
import type { AuditEntry, Store } from '../../service-store/types.ts';
import type { Signer } from '../../sign/types.ts';
import type { Actor } from './types.ts';

export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

export interface Deps {
  config: SignetConfig;
  service: ServiceConfig;
  /** Folder relative config paths resolve against. */
  baseDir: string;
  store: Store;
  blobs: BlobStore;
  keys: KeyBox;
  signer: Signer;
  /** Private (0700) folder for build and signing work; emptied at start. */
  workDir: string;
  publicUrl: string;
  clock: () => number;
  log: LogFn;
  env: NodeJS.ProcessEnv;
  /** Counters and timings the service reports at /metrics. */
  stats: Stats;
  /** Nudges the webhook dispatcher after an event was stored. */
  wakeWebhooks?: () => void;
}

export interface Stats {
  buildsStarted: number;
  buildsFailed: number;
  buildSeconds: number[];
  cacheHits: number;
  cacheMisses: number;
  /** Whole files assembled again from a base and a delta. */
  assembled: number;
  queueDepth: () => Promise<number>;
}

export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** Writes an audit entry; an audit failure is logged, never thrown over the answer. */
export async function record(
  d: Deps,
  actor: Actor,
  action: string,
  result: string,
  siteCode: string | null = null,
  detail: string | null = null,
): Promise<void> {
  const entry: AuditEntry = {
    at: d.clock(),
    actorKind: actor.kind,
    actor: actor.name,
    ip: actor.ip,
    action,
    siteCode,
    result,
    detail,
  };
  try {
    await d.store.audit(entry);
  } catch (e) {
    d.log('error', `audit write failed: ${(e as Error).message}`);
  }
}
