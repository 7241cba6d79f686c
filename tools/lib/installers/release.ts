/**
 * What a release's sites share, built once: the base MSI (msi-incremental.ts) and, when Signet has
 * it, the NSIS stub (nsis-slot.ts). Kept across batches of one process (a server builds many),
 * keyed on every input of the shared part; held in a private folder removed at exit. A shared part
 * that cannot be built is not an error: its sites are built in full, and say why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SignedArtifact } from '../artifact.ts';
import { toSignetError } from '../errors.ts';
import { logger } from '../log.ts';
import type { Fallback, MsiBase } from './msi-incremental.ts';
import type { NsisStub } from './nsis-slot.ts';
import { openRunDir, type RunDir } from './workdir.ts';

export interface CachedStub {
  stub: NsisStub;
  /** The uninstaller(s) signed (and verified) while the stub was compiled, by SHA-256. */
  signed: Map<string, SignedArtifact>;
}

type Entry = Promise<MsiBase | CachedStub | Fallback>;

/** Shared parts by key; the oldest are dropped beyond `max` entries. */
export class ReleaseCache {
  private dir: RunDir | undefined;
  private readonly entries = new Map<string, { value: Entry; work: string }>();
  private readonly max: number;
  constructor(max = 8) {
    this.max = max;
  }

  /** The part under `key`, built by `build` in a fresh private folder the first time. */
  get<T extends MsiBase | CachedStub>(
    key: string,
    build: (work: string) => Promise<T | Fallback>,
  ): Promise<T | Fallback> {
    const hit = this.entries.get(key);
    if (hit) return hit.value as Promise<T | Fallback>;
    this.dir ??= openRunDir(false);
    const work = mkdtempSync(join(this.dir.path, 'release-'));
    const value: Entry = build(work).catch((e: unknown) => {
      const err = toSignetError(e);
      logger.warn(`shared release part could not be built (${err.code}); its sites are built in full`);
      return { fallback: `the shared part failed to build: [${err.code}] ${err.message.split('\n')[0]}` };
    });
    // a failed part is not kept: the next batch tries again
    void value.then((v) => {
      if ('fallback' in v && this.entries.get(key)?.value === value) {
        this.entries.delete(key);
        rmSync(work, { recursive: true, force: true });
      }
    });
    this.entries.set(key, { value, work });
    // beyond `max`, the oldest is forgotten (its files stay until exit: a batch may still copy them)
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
    return value as Promise<T | Fallback>;
  }

  /** Every part kept (for diagnostics and benchmarks). */
  async settled(): Promise<(MsiBase | CachedStub | Fallback)[]> {
    return Promise.all([...this.entries.values()].map((e) => e.value));
  }

  close(): void {
    this.entries.clear();
    this.dir?.close();
    this.dir = undefined;
  }
}

let processCache: ReleaseCache | undefined;

/** The process's cache of shared release parts. */
export function processReleaseCache(): ReleaseCache {
  processCache ??= new ReleaseCache();
  return processCache;
}
