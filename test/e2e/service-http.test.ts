/**
 * The real service over real HTTP: `createService` over the service fixture (test PKI, local TSA,
 * pinned profile, SQLite, blobs, makensis/wixl/osslsigncode) behind the real Fastify adapter on a
 * loopback port. Every request and answer is checked against the committed OpenAPI document.
 * Upload (streamed), hostile site labels, download semantics (ETag, Range, HEAD, 304), links,
 * rotation, batch builds, /v1/sign, audit, metrics, readiness; 50 simultaneous first downloads
 * share one build; and a planted enrollment key is found only inside the installers.
 */
import { createReadStream, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../../tools/lib/log.ts';
import { verifyFile } from '../../tools/lib/sign/verify.ts';
import { LONG, NASTY } from '../helpers/hostile-labels.ts';
import { makeServiceFixture, type ServiceFixture } from '../helpers/service-fixture.ts';
import {
  filesUnder,
  type HttpAnswer,
  type HttpService,
  installerSiteJson,
  metricValue,
  startHttpService,
} from '../helpers/service-http.ts';
import { tempDir } from '../helpers/tmp.ts';

const KEY = 'canary-http-enroll-key-4c1b9e2d7a';
const KEY2 = 'canary-http-enroll-rotated-0f3e2d';
const CONC_KEY = 'canary-http-enroll-conc-77aa11bb';
const CANARIES = [KEY, KEY2, CONC_KEY];

let fx: ServiceFixture;
let svc: HttpService;
let out: string;
const signetLines: string[] = [];
const originalSink = logger.sink;
/** sha256 → file of every installer downloaded. */
const downloaded = new Map<string, string>();
const linkTokens: string[] = [];

const trust = () => ({ caFile: fx.pki.caCert, tsaCaFile: fx.pki.caCert, leafSha256: [fx.pki.leafSha256] });

async function keep(r: HttpAnswer, name: string): Promise<string> {
  const file = join(out, `${downloaded.size}-${name}`);
  writeFileSync(file, r.body);
  downloaded.set(r.headers['etag']!.replace(/"/g, ''), file);
  return file;
}

async function metrics(): Promise<string> {
  return (await svc.http.call({ method: 'GET', path: '/metrics' })).text;
}

function siteJsonOf(exe: string): Record<string, unknown> {
  return installerSiteJson(exe, out);
}

const site = {
  serverUrl: 'https://rmm.example.com/enroll?x=1&y=2',
  company: NASTY.join(' | '),
  siteName: LONG,
  department: NASTY[3],
  deviceType: NASTY[4],
  tags: [...NASTY, ''],
  keyVersion: 1,
  enrollmentKey: KEY,
};

describe('the service over HTTP (real parts, loopback)', () => {
  beforeAll(async () => {
    logger.sink = { write: (line) => void signetLines.push(line) };
    fx = await makeServiceFixture();
    svc = await startHttpService(fx);
    out = tempDir('signet-svc-http-');
    mkdirSync(out, { recursive: true });
  }, 180_000);
  afterAll(async () => {
    await svc?.close();
    logger.sink = originalSink;
  });

  it('/readyz and /healthz answer 200 with every check passing', async () => {
    const r = await svc.http.call({ method: 'GET', path: '/readyz' });
    expect(r.status).toBe(200);
    expect(r.json().checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
    expect((await svc.http.call({ method: 'GET', path: '/healthz' })).status).toBe(200);
  });

  it('POST /v1/releases streams a signed agent in (chunked); it is verified and current; unsigned is 422', async () => {
    const agent = await fx.agent('1.0.0');
    const r = await svc.http.call({
      method: 'POST',
      path: '/v1/releases?version=1.0.0&channel=stable',
      token: svc.tokens['releases:write'],
      body: createReadStream(agent, { highWaterMark: 16 * 1024 }),
    });
    expect(r.status, r.text).toBe(201);
    expect(r.json()).toMatchObject({
      version: '1.0.0',
      channel: 'stable',
      current: true,
      agentSize: statSync(agent).size,
    });
    const bad = await svc.http.call({
      method: 'POST',
      path: '/v1/releases?version=1.0.1&channel=stable',
      token: svc.tokens['releases:write'],
      body: createReadStream(fx.unsignedAgent),
    });
    expect(bad.status).toBe(422);
    expect(bad.json().error.code).toBe('E_VERIFY_UNSIGNED');
    const scope = await svc.http.call({
      method: 'POST',
      path: '/v1/releases?version=1.0.1&channel=stable',
      token: svc.tokens['sites:read'],
      body: Buffer.from('x'),
    });
    expect(scope.status).toBe(403);
    const list = await svc.http.call({
      method: 'GET',
      path: '/v1/releases',
      token: svc.tokens['sites:read'],
    });
    expect(list.json().items.map((x: { version: string }) => x.version)).toEqual(['1.0.0']);
  }, 60_000);

  it('PUT /v1/sites takes the hostile labels intact; the key is never answered; hostile site codes are 400', async () => {
    const r = await svc.http.call({
      method: 'PUT',
      path: '/v1/sites/ACME-HQ',
      token: svc.tokens['sites:write'],
      json: site,
    });
    expect(r.status, r.text).toBe(201);
    expect(r.text).not.toContain(KEY);
    expect(r.json().site).toMatchObject({ company: site.company, siteName: LONG, keyVersion: 1 });
    expect(r.json().site.fingerprint).toMatch(/^v1 \([0-9A-F]{4}\)$/);
    const g = await svc.http.call({
      method: 'GET',
      path: '/v1/sites/ACME-HQ',
      token: svc.tokens['sites:read'],
    });
    expect(g.json()).toMatchObject({ tags: site.tags, department: site.department });
    expect(g.text).not.toContain(KEY);
    for (const code of ['..%2F..%2Fetc', 'a%20b', '%E2%80%AEexe', '-lead', 'x'.repeat(65), '%00']) {
      const bad = await svc.http.call({
        method: 'PUT',
        path: `/v1/sites/${code}`,
        token: svc.tokens['sites:write'],
        json: site,
        invalidRequest: true,
      });
      expect([400, 404], `${code}: ${bad.text}`).toContain(bad.status);
      expect(bad.json().error.code).toMatch(/^E_/);
    }
  });

  it('GET …/installers/exe builds, streams a verified file with ETag; HEAD, If-None-Match, Range and 416 behave', async () => {
    const path = '/v1/sites/ACME-HQ/installers/exe?channel=stable';
    const token = svc.tokens['installers:read'];
    const r = await svc.http.call({ method: 'GET', path, token });
    expect(r.status, r.text).toBe(200);
    const sha = r.headers['etag']!.replace(/"/g, '');
    expect(r.headers['x-signet-sha256']).toBe(sha);
    expect(r.headers['content-disposition']).toMatch(
      /^attachment; filename="Agent-ACME-HQ-v1-[0-9A-F]{4}\.exe"$/,
    );
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    const file = await keep(r, 'ACME-HQ.exe');
    expect((await verifyFile(file, trust())).sha256).toBe(sha);
    const doc = siteJsonOf(file);
    expect(doc).toMatchObject({
      siteCode: 'ACME-HQ',
      company: site.company,
      siteName: LONG,
      tags: site.tags,
    });
    expect((doc['enrollment'] as { key: string }).key).toBe(KEY);

    const head = await svc.http.call({ method: 'HEAD', path, token });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['etag']).toBe(`"${sha}"`);
    expect(Number(head.headers['content-length'])).toBe(r.body.length);

    const cached = await svc.http.call({
      method: 'GET',
      path,
      token,
      headers: { 'if-none-match': `"${sha}"` },
    });
    expect(cached.status).toBe(304);
    expect(cached.body.length).toBe(0);

    const part = await svc.http.call({ method: 'GET', path, token, headers: { range: 'bytes=100-1123' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-1123/${r.body.length}`);
    expect(part.body.equals(r.body.subarray(100, 1124))).toBe(true);
    const tail = await svc.http.call({ method: 'GET', path, token, headers: { range: 'bytes=-512' } });
    expect(tail.body.equals(r.body.subarray(r.body.length - 512))).toBe(true);
    // If-Range with another tag: the whole file
    const stale = await svc.http.call({
      method: 'GET',
      path,
      token,
      headers: { range: 'bytes=0-9', 'if-range': '"0000"' },
    });
    expect(stale.status).toBe(200);
    expect(stale.body.equals(r.body)).toBe(true);
    const beyond = await svc.http.call({
      method: 'GET',
      path,
      token,
      headers: { range: `bytes=${r.body.length}-` },
    });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${r.body.length}`);
    expect(beyond.json().error.code).toBe('E_RANGE_UNSATISFIABLE');

    const msi = await svc.http.call({
      method: 'GET',
      path: '/v1/sites/ACME-HQ/installers/msi?channel=stable',
      token,
    });
    expect(msi.status).toBe(200);
    expect(msi.headers['content-disposition']).toMatch(/\.msi"$/);
    await verifyFile(await keep(msi, 'ACME-HQ.msi'), trust());

    const none = await svc.http.call({
      method: 'GET',
      path: '/v1/sites/ghost/installers/exe?channel=stable',
      token,
    });
    expect(none.status).toBe(404);
    const beta = await svc.http.call({
      method: 'GET',
      path: '/v1/sites/ACME-HQ/installers/exe?channel=beta',
      token,
    });
    expect(beta.json().error.code).toBe('E_NO_RELEASE');
  }, 120_000);

  it('a link downloads without a token; a rotation breaks it and the next download builds afresh', async () => {
    const l = await svc.http.call({
      method: 'POST',
      path: '/v1/sites/ACME-HQ/links',
      token: svc.tokens['sites:write'],
      json: { kind: 'exe', expiresIn: '1h' },
    });
    expect(l.status, l.text).toBe(201);
    const url = new URL(l.json().url);
    linkTokens.push(url.pathname.slice('/dl/'.length));
    const viaLink = await svc.http.call({ method: 'GET', path: url.pathname });
    expect(viaLink.status, viaLink.text).toBe(200);
    const firstSha = viaLink.headers['etag']!.replace(/"/g, '');
    expect(downloaded.has(firstSha)).toBe(true); // the file built before
    const headLink = await svc.http.call({ method: 'HEAD', path: url.pathname });
    expect(headLink.status).toBe(200);

    const builds = metricValue(await metrics(), 'signet_builds_total');
    const rot = await svc.http.call({
      method: 'PUT',
      path: '/v1/sites/ACME-HQ',
      token: svc.tokens['sites:write'],
      json: { ...site, keyVersion: 2, enrollmentKey: KEY2 },
    });
    expect(rot.status, rot.text).toBe(200);
    expect(rot.json()).toMatchObject({ rotated: true, site: { keyVersion: 2 } });
    const dead = await svc.http.call({ method: 'GET', path: url.pathname });
    expect(dead.status).toBe(404);
    expect(dead.json().error).toMatchObject({
      code: 'E_LINK_INVALID',
      details: { reason: 'site key rotated' },
    });

    const fresh = await svc.http.call({
      method: 'GET',
      path: '/v1/sites/ACME-HQ/installers/exe?channel=stable',
      token: svc.tokens['installers:read'],
    });
    expect(fresh.status).toBe(200);
    expect(fresh.headers['x-signet-key-version']).toBe('2');
    expect(fresh.headers['content-disposition']).toMatch(/ACME-HQ-v2-/);
    expect(fresh.headers['etag']).not.toBe(`"${firstSha}"`);
    expect(metricValue(await metrics(), 'signet_builds_total') - builds).toBe(1);
    const file = await keep(fresh, 'ACME-HQ-v2.exe');
    await verifyFile(file, trust());
    expect((siteJsonOf(file)['enrollment'] as { key: string }).key).toBe(KEY2);

    const audit = await svc.http.call({ method: 'GET', path: '/v1/audit?limit=500', token: svc.admin });
    const dl = audit.json().items.filter((a: { action: string }) => a.action === 'link.download');
    expect(dl.map((a: { result: string }) => a.result)).toEqual(['refused: site key rotated', 'ok', 'ok']);
    expect(
      dl.every((a: { ip: string; actorKind: string }) => a.ip === '127.0.0.1' && a.actorKind === 'link'),
    ).toBe(true);
  }, 120_000);

  it('50 simultaneous first requests for one site: exactly one build, 50 byte-identical verified answers', async () => {
    const put = await svc.http.call({
      method: 'PUT',
      path: '/v1/sites/CONC-1',
      token: svc.tokens['sites:write'],
      json: {
        serverUrl: 'https://rmm.example.com',
        company: 'Concurrent',
        keyVersion: 1,
        enrollmentKey: CONC_KEY,
      },
    });
    expect(put.status).toBe(201);
    const before = metricValue(await metrics(), 'signet_builds_total');
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        svc.http.call({
          method: 'GET',
          path: '/v1/sites/CONC-1/installers/exe?channel=stable',
          token: svc.tokens['installers:read'],
        }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    expect(metricValue(await metrics(), 'signet_builds_total') - before).toBe(1);
    const audit = (
      await svc.http.call({ method: 'GET', path: '/v1/audit?limit=500', token: svc.admin })
    ).json();
    expect(
      audit.items.filter(
        (a: { action: string; siteCode: string }) =>
          a.action === 'installer.build' && a.siteCode === 'CONC-1',
      ),
    ).toHaveLength(1);
    const first = answers[0]!.body;
    expect(answers.every((a) => a.body.equals(first))).toBe(true);
    const v = await verifyFile(await keep(answers[0]!, 'CONC-1.exe'), trust());
    expect(v.sha256).toBe(answers[0]!.headers['etag']!.replace(/"/g, ''));
  }, 180_000);

  it('POST /v1/builds runs a batch to completion with per-site results', async () => {
    await svc.http.call({
      method: 'PUT',
      path: '/v1/sites/north',
      token: svc.tokens['sites:write'],
      json: { serverUrl: 'https://rmm.example.com', keyVersion: 1, enrollmentKey: `${KEY}-north` },
    });
    const b = await svc.http.call({
      method: 'POST',
      path: '/v1/builds',
      token: svc.tokens['releases:write'],
      json: { channel: 'stable', sites: 'all' },
    });
    expect(b.status, b.text).toBe(202);
    expect(b.headers['location']).toBe(`/v1/builds/${b.json().id}`);
    let view = b.json();
    for (let i = 0; i < 600 && view.state !== 'completed' && view.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      view = (
        await svc.http.call({
          method: 'GET',
          path: `/v1/builds/${b.json().id}`,
          token: svc.tokens['installers:read'],
        })
      ).json();
    }
    expect(view).toMatchObject({ state: 'completed', total: 3, done: 3, failed: 0 });
    expect(view.results.map((r: { siteCode: string }) => r.siteCode).sort()).toEqual([
      'ACME-HQ',
      'CONC-1',
      'north',
    ]);
    const ghost = await svc.http.call({
      method: 'POST',
      path: '/v1/builds',
      token: svc.tokens['releases:write'],
      json: { sites: ['ghost'] },
    });
    expect(ghost.status).toBe(404);
  }, 180_000);

  it('POST /v1/sign answers the signed, verified file; a non-PE is a coded 422, never the input', async () => {
    const input = readFileSync(fx.unsignedAgent);
    const r = await svc.http.call({
      method: 'POST',
      path: '/v1/sign',
      token: svc.tokens.sign,
      headers: { 'x-signet-file-name': encodeURIComponent('agent (x64).exe') },
      body: createReadStream(fx.unsignedAgent),
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.equals(input)).toBe(false);
    const file = join(out, 'signed.exe');
    writeFileSync(file, r.body);
    expect((await verifyFile(file, trust())).sha256).toBe(r.headers['x-signet-sha256']);
    const bad = await svc.http.call({
      method: 'POST',
      path: '/v1/sign',
      token: svc.tokens.sign,
      headers: { 'x-signet-file-name': 'notes.txt' },
      body: Buffer.from('hello, not a PE'),
    });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.json().error.code).toMatch(/^E_SIGN_/);
    expect(bad.text).not.toContain('hello, not a PE');
    const noScope = await svc.http.call({
      method: 'POST',
      path: '/v1/sign',
      token: svc.tokens['installers:read'],
      headers: { 'x-signet-file-name': 'a.exe' },
      body: input,
    });
    expect(noScope.status).toBe(403);
  }, 60_000);

  it('/v1/audit (admin only) names actors, addresses and results, never a secret; /metrics counts', async () => {
    expect(
      (await svc.http.call({ method: 'GET', path: '/v1/audit', token: svc.tokens['sites:read'] })).status,
    ).toBe(403);
    expect((await svc.http.call({ method: 'GET', path: '/v1/audit' })).status).toBe(401);
    const items: { action: string; actor: string }[] = [];
    let cursor: string | null = null;
    do {
      const r = await svc.http.call({
        method: 'GET',
        path: `/v1/audit?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        token: svc.admin,
      });
      items.push(...r.json().items);
      cursor = r.json().next;
    } while (cursor);
    const actions = new Set(items.map((i) => i.action));
    for (const a of [
      'release.upload',
      'site.create',
      'site.rotate',
      'link.create',
      'link.download',
      'installer.build',
    ])
      expect(actions, a).toContain(a);
    expect(items.some((i) => i.actor === 'http-sites-write')).toBe(true);
    const text = JSON.stringify(items);
    for (const secret of [...CANARIES, ...Object.values(svc.tokens), ...linkTokens])
      expect(text).not.toContain(secret);
    const m = await metrics();
    expect(metricValue(m, 'signet_builds_total')).toBeGreaterThanOrEqual(4);
    expect(metricValue(m, 'signet_installer_cache_hits_total')).toBeGreaterThan(0);
    expect(m).toMatch(
      /signet_http_requests_total\{method="GET",route="\/v1\/sites\/:siteCode\/installers\/:kind",status="200"\}/,
    );
  });

  it('canary: the planted keys appear only inside installers — not in logs, audit, metrics, error bodies or the data folder', async () => {
    // one failing request of each kind with the key in its body, to tempt every error path
    for (const body of [
      { ...site, keyVersion: 1, enrollmentKey: `${KEY2}-x` }, // 409
      { ...site, serverUrl: 'not a url', keyVersion: 2, enrollmentKey: KEY2 }, // 400 from the use case
      { ...site, keyVersion: 'two', enrollmentKey: KEY }, // 400 from the schema
    ])
      await svc.http.call({
        method: 'PUT',
        path: '/v1/sites/ACME-HQ',
        token: svc.tokens['sites:write'],
        json: body,
        invalidRequest: true,
      });
    const secrets = [...CANARIES, ...Object.values(svc.tokens), ...linkTokens];
    const texts = {
      fastify: svc.fastifyLog.join('\n'),
      service: svc.serviceLog.join('\n'),
      signet: signetLines.join('\n'),
      errors: svc.http.errorBodies.join('\n'),
      metrics: await metrics(),
      audit: (await svc.http.call({ method: 'GET', path: '/v1/audit?limit=500', token: svc.admin })).text,
    };
    expect(svc.fastifyLog.length).toBeGreaterThan(100);
    expect(svc.http.errorBodies.length).toBeGreaterThan(10);
    for (const [where, text] of Object.entries(texts))
      for (const s of secrets) expect(text.includes(s), `${where} holds ${s.slice(0, 12)}…`).toBe(false);
    // the data folder: service.db, -wal, -shm, work folders, every blob — a blob with a key in it
    // must be a signed, verifying installer (keys go into installers, nowhere else)
    const data = join(fx.dir, 'data');
    const files = filesUnder(data);
    expect(files.some((f) => f.endsWith('service.db'))).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f);
      const hit = CANARIES.some((k) => bytes.includes(k));
      if (!hit) continue;
      expect(f, 'a key in clear outside the blobs').toMatch(/\/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{62}$/);
      // an installer kept as a delta of its release base (SGNDELT1) carries the overlay too
      if (bytes.subarray(0, 8).toString('latin1') === 'SGNDELT1') continue;
      await verifyFile(f, trust());
      expect(
        bytes.subarray(0, 2).toString('latin1') === 'MZ' || bytes.readUInt32BE(0) === 0xd0cf11e0,
        f,
      ).toBe(true);
    }
    // stored compressed, a key may not be visible in an installer at all; the installers downloaded are
    // all blobs (the same bytes)
    for (const [sha, file] of downloaded) {
      const blob = join(data, 'blobs', 'sha256', sha.slice(0, 2), sha.slice(2));
      expect(readFileSync(blob).equals(readFileSync(file))).toBe(true);
    }
  });
});
