/**
 * One contract, two stores: the embedded SQLite file and a real PostgreSQL server (Debian's,
 * started on loopback for this file and stopped after). Claims are exclusive across concurrent
 * callers, pages are complete and ordered, records round-trip exactly.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, postgresBin, removePostgres, startPostgres } from '../../../test/helpers/postgres.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { PostgresStore } from './postgres.ts';
import { SqliteStore } from './sqlite.ts';
import type { OutputRecord, Store } from './types.ts';

let pg: PgServer | undefined;
beforeAll(async () => {
  if (postgresBin()) pg = await startPostgres();
}, 60_000);
afterAll(() => {
  if (pg) removePostgres(pg);
});

const makers: [string, () => Store][] = [
  ['sqlite', () => new SqliteStore(join(tempDir('signet-store-'), 'service.db'))],
  ['postgres', () => new PostgresStore(pg!.url)],
];

const output = (key: string, over: Partial<OutputRecord> = {}): OutputRecord => ({
  key,
  siteCode: 'S1',
  releaseId: 'rel_1',
  keyVersion: 1,
  kind: 'exe',
  state: 'building',
  sha256: null,
  size: null,
  fileName: null,
  error: null,
  createdAt: 1,
  verifiedAt: null,
  ...over,
});

describe.each(makers)('%s store', (kind, make) => {
  let store: Store;
  beforeAll(async () => {
    if (kind === 'postgres' && !pg)
      throw new Error('PostgreSQL is required for this test (scripts/setup.sh installs it)');
    store = make();
    const version = await store.migrate();
    expect(version).toBe(3);
    expect(await store.migrate()).toBe(version); // idempotent
  });
  afterAll(() => store.close());

  it('round-trips tokens, sites, releases exactly (arrays, objects, nulls, 64-bit times)', async () => {
    const t = {
      id: 'tok_1',
      name: 'a',
      hash: 'h1',
      scopes: ['sites:read' as const],
      createdAt: 1_764_000_000_123,
      expiresAt: null,
      revokedAt: null,
      lastUsedAt: null,
    };
    await store.insertToken(t);
    expect(await store.tokenByHash('h1')).toEqual(t);
    expect(await store.revokeToken('tok_1', 5)).toBe(true);
    expect(await store.revokeToken('tok_1', 6)).toBe(false);
    const site = {
      siteCode: 'S1',
      fields: { company: 'Ünïcode "q"', tags: ['a', 'b'] },
      keyVersion: 2,
      keyCiphertext: 'c',
      fingerprint: 'v2 (ABCD)',
      createdAt: 1,
      updatedAt: 2,
    };
    await store.putSite(site);
    await store.putSite({ ...site, updatedAt: 3 });
    expect(await store.site('S1')).toEqual({ ...site, updatedAt: 3 });
    for (const [v, at] of [
      ['1.0.0', 10],
      ['1.1.0', 20],
    ] as const)
      await store.insertRelease({
        id: `rel_${v}`,
        version: v,
        channel: 'stable',
        agentSha256: 'a'.repeat(64),
        agentSize: 5_000_000_000,
        signerSubject: '/CN=x',
        signerLeafSha256: 'b',
        timestamp: null,
        createdAt: at,
      });
    expect((await store.currentRelease('stable'))?.version).toBe('1.1.0');
    expect((await store.releaseByVersion('1.0.0', 'stable'))?.agentSize).toBe(5_000_000_000);
    expect(await store.currentRelease('beta')).toBeUndefined();
  });

  it('a site and its audit entry are written together', async () => {
    const site = {
      siteCode: 'ATOMIC',
      fields: {},
      keyVersion: 1,
      keyCiphertext: 'x',
      fingerprint: 'v1 (0000)',
      createdAt: 1,
      updatedAt: 1,
    };
    await store.putSiteAudited(
      site,
      {
        at: 9,
        actorKind: 'token',
        actor: 'a',
        ip: '::1',
        action: 'site.create',
        siteCode: 'ATOMIC',
        result: 'ok',
        detail: 'v1 (0000)',
      },
      null,
    );
    expect(await store.site('ATOMIC')).toEqual(site);
    expect(
      (await store.listAudit(null, 50)).items.some(
        (e) => e.siteCode === 'ATOMIC' && e.action === 'site.create',
      ),
    ).toBe(true);
    // a failing audit insert (NOT NULL) rolls the site back too
    await expect(
      store.putSiteAudited(
        { ...site, keyVersion: 2 },
        {
          at: 9,
          actorKind: 'token',
          actor: 'a',
          ip: '::1',
          action: null as never,
          siteCode: 'ATOMIC',
          result: 'ok',
          detail: null,
        },
        site,
      ),
    ).rejects.toThrow();
    expect((await store.site('ATOMIC'))?.keyVersion).toBe(1);
    // conditional: two writers that read the same version — the second one is refused, nothing written
    const audit = {
      at: 10,
      actorKind: 'token' as const,
      actor: 'a',
      ip: '::1',
      action: 'site.rotate',
      siteCode: 'ATOMIC',
      result: 'ok',
      detail: null,
    };
    expect(await store.putSiteAudited({ ...site, keyVersion: 2, updatedAt: 2 }, audit, site)).toBe(true);
    expect(
      await store.putSiteAudited(
        { ...site, keyVersion: 2, keyCiphertext: 'other', updatedAt: 3 },
        audit,
        site,
      ),
    ).toBe(false);
    expect(await store.site('ATOMIC')).toMatchObject({ keyVersion: 2, keyCiphertext: 'x' });
    // null: the site must not exist yet
    expect(await store.putSiteAudited(site, audit, null)).toBe(false);
  });

  it('a claim is exclusive: 20 concurrent claimers, one winner', async () => {
    const claims = await Promise.all(Array.from({ length: 20 }, () => store.claimOutput(output('k-race'))));
    expect(claims.filter((c) => c.claimed)).toHaveLength(1);
    await store.updateOutput('k-race', { state: 'ready', sha256: 'c'.repeat(64), size: 9 });
    expect(await store.output('k-race')).toMatchObject({ state: 'ready', size: 9 });
    await store.claimOutput(output('k-stale'));
    expect((await store.staleOutputs()).map((o) => o.key)).toEqual(['k-stale']);
    expect((await store.referencedBlobs()).has('c'.repeat(64))).toBe(true);
  });

  it('pages sites completely in code order and audit newest first', async () => {
    const codes = Array.from({ length: 23 }, (_, i) => `site-${String(i).padStart(2, '0')}`);
    for (const c of [...codes].reverse())
      await store.putSite({
        siteCode: c,
        fields: {},
        keyVersion: 1,
        keyCiphertext: 'x',
        fingerprint: 'v1 (0000)',
        createdAt: 1,
        updatedAt: 1,
      });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.listSites(cursor, 5);
      seen.push(...page.items.map((s) => s.siteCode));
      cursor = page.next;
    } while (cursor);
    expect(seen.filter((s) => s.startsWith('site-'))).toEqual(codes);
    for (let i = 0; i < 7; i++)
      await store.audit({
        at: i,
        actorKind: 'token',
        actor: 'a',
        ip: '::1',
        action: `a${i}`,
        siteCode: null,
        result: 'ok',
        detail: null,
      });
    const first = await store.listAudit(null, 4);
    const second = await store.listAudit(Number(first.next), 4);
    expect([...first.items, ...second.items].map((e) => e.action).filter((a) => /^a\d$/.test(a))).toEqual([
      'a6',
      'a5',
      'a4',
      'a3',
      'a2',
      'a1',
      'a0',
    ]);
  });
});
