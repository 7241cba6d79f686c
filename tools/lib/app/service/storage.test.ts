/**
 * The service keeps a release's base files once and each site as its delta: incrementally
 * assembled outputs get a base + delta; an evicted whole file (over service.cacheBytes) is
 * assembled again from them on download — the same bytes, verified — and sites cost KB, not MB.
 */
import { statSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  fileBody,
  makeServiceFixture,
  type ServiceFixture,
} from '../../../../test/helpers/service-fixture.ts';
import { SqliteStore } from '../../service-store/sqlite.ts';
import type { OutputRecord } from '../../service-store/types.ts';
import type { ServiceApi } from './index.ts';

describe('delta storage', () => {
  let fx: ServiceFixture;
  let api: ServiceApi;
  beforeAll(async () => {
    // no room for whole files: every download beyond the build is assembled from base + delta
    fx = await makeServiceFixture({ cacheBytes: 0 });
    api = await fx.start();
    await api.uploadRelease(ADMIN, {
      version: '1.0.0',
      channel: 'stable',
      body: fileBody(await fx.agent('1.0.0')),
    });
    for (const code of ['A1', 'A2', 'A3'])
      await api.putSite(ADMIN, code, {
        serverUrl: 'https://rmm.example.com',
        keyVersion: 1,
        enrollmentKey: `canary-storage-${code}-0123456789`,
      });
  }, 120_000);

  it('builds keep a base once and a small delta per output; evicted files are assembled again, identical', async () => {
    const first = new Map<string, string>();
    for (const code of ['A1', 'A2', 'A3'])
      for (const kind of ['exe', 'msi'] as const) {
        const f = await api.installer(ADMIN, { siteCode: code, kind, channel: 'stable' });
        first.set(`${code}.${kind}`, f.sha256);
      }
    await api.settled(); // the deltas are stored after the answers
    const store = new SqliteStore(`${fx.dir}/data/service.db`);
    const outputs: OutputRecord[] = [];
    for (const code of ['A1', 'A2', 'A3']) outputs.push(...(await store.outputsOfSite(code)));
    await store.close();
    const incremental = outputs.filter((o) => o.deltaSha256);
    expect(incremental.length).toBeGreaterThan(0);
    const blob = (sha: string) => `${fx.dir}/data/blobs/sha256/${sha.slice(0, 2)}/${sha.slice(2)}`;
    // one base per kind and release, shared by every site
    const bases = new Set(incremental.map((o) => `${o.kind}:${o.baseSha256}`));
    expect(bases.size).toBeLessThanOrEqual(2);
    for (const o of incremental) expect(statSync(blob(o.deltaSha256!)).size).toBeLessThan(64 * 1024); // the changed regions and the signature
    const gc = await api.collectGarbage(0);
    expect(gc.evicted).toBe(incremental.length);
    // every download again: the same bytes, assembled and verified
    for (const code of ['A1', 'A2', 'A3'])
      for (const kind of ['exe', 'msi'] as const) {
        const f = await api.installer(ADMIN, { siteCode: code, kind, channel: 'stable' });
        expect(f.sha256).toBe(first.get(`${code}.${kind}`));
        const parts: Buffer[] = [];
        for await (const c of f.open()) parts.push(c as Buffer);
        expect(Buffer.concat(parts).length).toBe(f.size);
      }
    expect((await api.metrics()).text).toMatch(/signet_builds_total 3\b/);
  }, 180_000);
});
