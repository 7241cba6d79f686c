/**
 * Collecting old outputs. An output is current while its site still has that key version and its
 * release is still its channel's current one; an old output is kept while an active link can
 * still reach it (a link pinned to that version, for that key version), then its record goes and
 * the blobs no record references are deleted. Nothing current is ever collected.
 */

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { assembleDelta, decodeDelta } from '../../service-store/delta.ts';
import type { OutputRecord } from '../../service-store/types.ts';
import type { Deps } from './deps.ts';
import { deltaTrust } from './installers.ts';

export interface GcResult {
  outputs: number;
  blobs: number;
  /** Whole files evicted (their base + delta remain; they are assembled again when asked for). */
  evicted: number;
}

export async function collectGarbage(d: Deps, minBlobAgeMs?: number): Promise<GcResult> {
  const now = d.clock();
  const current = new Map<string, string>(); // channel → current release id
  for (const c of ['stable', 'beta'] as const) {
    const r = await d.store.currentRelease(c);
    if (r) current.set(c, r.id);
  }
  let removed = 0;
  let cursor: string | null = null;
  do {
    const page = await d.store.listSites(cursor, 500);
    for (const site of page.items) {
      const links = await d.store.activeLinks(site.siteCode, now);
      for (const o of await d.store.outputsOfSite(site.siteCode)) {
        if (o.state === 'building') continue;
        if (await keep(d, o, site.keyVersion, current, links)) continue;
        await d.store.deleteOutput(o.key);
        removed++;
      }
    }
    cursor = page.next;
  } while (cursor);
  const evicted = await evictWholeFiles(d);
  const blobs = d.blobs.collect(await d.store.referencedBlobs(), minBlobAgeMs, now);
  return { outputs: removed, blobs, evicted };
}

async function keep(
  d: Deps,
  o: OutputRecord,
  keyVersion: number,
  current: Map<string, string>,
  links: Awaited<ReturnType<Deps['store']['activeLinks']>>,
): Promise<boolean> {
  const release = await d.store.releaseById(o.releaseId);
  if (!release) return false;
  if (o.keyVersion === keyVersion && current.get(release.channel) === release.id) return true;
  // an old output still reachable through an active link (same key version, that version pinned)
  return links.some(
    (l) =>
      l.kind === o.kind &&
      l.keyVersion === o.keyVersion &&
      l.channel === release.channel &&
      l.version === release.version,
  );
}

/** Keeps the whole files of delta-backed outputs within `service.cacheBytes`, newest first. */
async function evictWholeFiles(d: Deps): Promise<number> {
  const withDelta: OutputRecord[] = [];
  let cursor: string | null = null;
  do {
    const page = await d.store.listSites(cursor, 500);
    for (const site of page.items)
      for (const o of await d.store.outputsOfSite(site.siteCode))
        if (o.state === 'ready' && o.sha256 && o.deltaSha256 && o.baseSha256 && d.blobs.has(o.sha256))
          withDelta.push(o);
    cursor = page.next;
  } while (cursor);
  withDelta.sort((a, b) => b.createdAt - a.createdAt);
  let total = 0;
  let evicted = 0;
  for (const o of withDelta) {
    total += o.size ?? 0;
    // evicted only once its delta is proven to assemble into exactly this file
    if (total > d.service.cacheBytes && (await provenDelta(d, o))) {
      d.blobs.remove(o.sha256!);
      evicted++;
    }
  }
  return evicted;
}

/** Assembles the output from its base and delta once (attach verifies; the hash must match). */
async function provenDelta(d: Deps, o: OutputRecord): Promise<boolean> {
  const out = join(d.workDir, `prove-${o.key.slice(0, 16)}-${Date.now()}`);
  try {
    const delta = decodeDelta(readFileSync(d.blobs.path(o.deltaSha256!)));
    if (delta.header.sha256 !== o.sha256) return false;
    await assembleDelta(d.blobs.path(o.baseSha256!), delta, out, d.workDir, deltaTrust(d));
    return true;
  } catch {
    return false;
  } finally {
    rmSync(out, { force: true });
  }
}
