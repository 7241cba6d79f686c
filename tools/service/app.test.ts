import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, SCOPE_LIST, serviceHarness } from '../../test/helpers/service-app.ts';
import type { Scope } from '../lib/service-store/types.ts';
import { COMMITTED_PATH } from './openapi.ts';

const KEY = 'canary-enroll-key-7c1e5a9b3d';
const KEY2 = 'canary-enroll-key-rotated-42f0';
const AGENT = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(2000, 1), Buffer.from('SIGNED')]);
const site = {
  serverUrl: 'https://rmm.example.com',
  company: 'Acme "Co" <&> 🦄',
  tags: ['a;b'],
  keyVersion: 1,
  enrollmentKey: KEY,
};

let h: Harness;

async function seed(hh: Harness) {
  expect(
    (
      await hh.call({
        method: 'POST',
        url: '/v1/releases?version=1.2.3&channel=stable',
        token: 'releases:write',
        body: AGENT,
      })
    ).status,
  ).toBe(201);
  expect(
    (await hh.call({ method: 'PUT', url: '/v1/sites/ACME-HQ', token: 'sites:write', json: site })).status,
  ).toBe(201);
}

beforeAll(async () => {
  h = await serviceHarness();
  await seed(h);
});
afterAll(async () => {
  await h.close();
  // every operation of the document was exercised by this file (or download.test.ts for HEAD)
});

describe('routes (every request and response checked against schema/service.openapi.json)', () => {
  it('GET /v1/token shows the caller’s token, never the token itself', async () => {
    const r = await h.call({ method: 'GET', url: '/v1/token', token: 'sign' });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ name: 't-sign', scopes: ['sign'], active: true });
    expect(r.body).not.toContain(h.tokens.sign);
  });

  it('releases: upload (201, verified by the use case), a refused agent (422), a duplicate (409), the list', async () => {
    const list = await h.call({ method: 'GET', url: '/v1/releases', token: 'installers:read' });
    expect(list.json().items).toHaveLength(1);
    expect(list.json().items[0]).toMatchObject({ version: '1.2.3', channel: 'stable', current: true });
    expect(list.json().items[0]).not.toHaveProperty('agent');
    const unsigned = await h.call({
      method: 'POST',
      url: '/v1/releases?version=1.2.4&channel=stable',
      token: 'releases:write',
      body: Buffer.from('MZ not signed'),
    });
    expect(unsigned.status).toBe(422);
    expect(unsigned.json().error.code).toBe('E_VERIFY_UNSIGNED');
    const dup = await h.call({
      method: 'POST',
      url: '/v1/releases?version=1.2.3&channel=stable',
      token: 'admin',
      body: AGENT,
    });
    expect(dup.status).toBe(409);
    const badVersion = await h.call({
      method: 'POST',
      url: '/v1/releases?version=1.2&channel=stable',
      token: 'admin',
      body: AGENT,
      invalidRequest: true,
    });
    expect(badVersion.status).toBe(400);
    expect(badVersion.json().error).toMatchObject({ code: 'E_INPUT_INVALID' });
    expect(badVersion.json().error.message).toMatch(/querystring\.version/);
  });

  it('sites: put (201 then 200), the key is write-only, rotation rules (409), get, list pages, delete', async () => {
    const again = await h.call({
      method: 'PUT',
      url: '/v1/sites/ACME-HQ',
      token: 'sites:write',
      json: { ...site, enrollmentKey: undefined },
    });
    expect(again.status).toBe(200);
    expect(again.json()).toMatchObject({
      created: false,
      rotated: false,
      site: { siteCode: 'ACME-HQ', keyVersion: 1 },
    });
    expect(again.body).not.toContain(KEY);
    expect(again.json().site.fingerprint).toMatch(/^v1 \([0-9A-F]{4}\)$/);
    const older = await h.call({
      method: 'PUT',
      url: '/v1/sites/ACME-HQ',
      token: 'sites:write',
      json: { ...site, keyVersion: 0 },
      invalidRequest: true,
    });
    expect(older.status).toBe(400);
    const skip = await h.call({
      method: 'PUT',
      url: '/v1/sites/ACME-HQ',
      token: 'sites:write',
      json: { ...site, keyVersion: 3, enrollmentKey: KEY2 },
    });
    expect(skip.status).toBe(409);
    expect(skip.json().error.code).toBe('E_KEY_VERSION');
    const got = await h.call({ method: 'GET', url: '/v1/sites/ACME-HQ', token: 'sites:read' });
    expect(got.json()).toMatchObject({ siteCode: 'ACME-HQ', company: site.company, tags: ['a;b'] });
    expect(got.body).not.toContain(KEY);
    for (const c of ['B-1', 'B-2', 'B-3'])
      await h.call({
        method: 'PUT',
        url: `/v1/sites/${c}`,
        token: 'admin',
        json: { ...site, enrollmentKey: `${KEY}-${c}` },
      });
    const p1 = await h.call({ method: 'GET', url: '/v1/sites?limit=2', token: 'sites:read' });
    expect(p1.json().items.map((s: { siteCode: string }) => s.siteCode)).toEqual(['ACME-HQ', 'B-1']);
    const p2 = await h.call({
      method: 'GET',
      url: `/v1/sites?limit=2&cursor=${p1.json().next}`,
      token: 'sites:read',
    });
    expect(p2.json()).toMatchObject({ next: null });
    expect(p2.json().items.map((s: { siteCode: string }) => s.siteCode)).toEqual(['B-2', 'B-3']);
    const tooMany = await h.call({
      method: 'GET',
      url: '/v1/sites?limit=100000',
      token: 'sites:read',
      invalidRequest: true,
    });
    expect(tooMany.status).toBe(400);
    expect((await h.call({ method: 'DELETE', url: '/v1/sites/B-3', token: 'sites:write' })).status).toBe(204);
    expect((await h.call({ method: 'DELETE', url: '/v1/sites/B-3', token: 'sites:write' })).status).toBe(404);
    const missing = await h.call({ method: 'GET', url: '/v1/sites/NOPE', token: 'sites:read' });
    expect(missing.status).toBe(404);
    expect(missing.json().error.code).toBe('E_NOT_FOUND');
  });

  it('validation names the field; unknown fields are refused, not dropped', async () => {
    const extra = await h.call({
      method: 'PUT',
      url: '/v1/sites/X1',
      token: 'sites:write',
      json: { ...site, enrolmentKey: 'typo-typo-typo-typo' },
      invalidRequest: true,
    });
    expect(extra.status).toBe(400);
    expect(extra.json().error).toMatchObject({
      code: 'E_INPUT_INVALID',
      details: { field: 'body.enrolmentKey' },
    });
    const missing = await h.call({
      method: 'PUT',
      url: '/v1/sites/X1',
      token: 'sites:write',
      json: { keyVersion: 1 },
      invalidRequest: true,
    });
    expect(missing.json().error.message).toMatch(/body\.serverUrl/);
    const type = await h.call({
      method: 'PUT',
      url: '/v1/sites/X1',
      token: 'sites:write',
      json: { ...site, tags: { a: 1 } },
      invalidRequest: true,
    });
    expect(type.json().error.message).toMatch(/body\.tags/);
    const notObject = await h.call({
      method: 'PUT',
      url: '/v1/sites/X1',
      token: 'sites:write',
      json: [1, 2],
      invalidRequest: true,
    });
    expect(notObject.status).toBe(400);
  });

  it('links: made with a token, downloaded without one, dead after rotation (404) and expiry (410)', async () => {
    await h.call({
      method: 'PUT',
      url: '/v1/sites/LNK',
      token: 'sites:write',
      json: { ...site, enrollmentKey: `${KEY}-lnk` },
    });
    const made = await h.call({
      method: 'POST',
      url: '/v1/sites/LNK/links',
      token: 'sites:write',
      json: { kind: 'exe', expiresIn: '1h' },
    });
    expect(made.status).toBe(201);
    const link = made.json();
    expect(link.url).toMatch(/^http:\/\/localhost(:\d+)?\/dl\/sgl_/);
    const path = new URL(link.url).pathname;
    const dl = await h.call({ method: 'GET', url: path });
    expect(dl.status).toBe(200);
    expect(dl.headers['content-disposition']).toMatch(
      /^attachment; filename="agent-LNK-1\.2\.3-v1-[0-9A-F]{4}\.exe"$/,
    );
    expect(h.api.auditLog.some((e) => e.action === 'link.download' && e.result === 'ok')).toBe(true);
    const secs = await h.call({
      method: 'POST',
      url: '/v1/sites/LNK/links',
      token: 'admin',
      json: { kind: 'msi', channel: 'stable', expiresIn: 600 },
    });
    expect(secs.json().expiresAt).toBe(new Date(h.api.now + 600_000).toISOString());
    const tooLong = await h.call({
      method: 'POST',
      url: '/v1/sites/LNK/links',
      token: 'admin',
      json: { kind: 'msi', expiresIn: '31d' },
    });
    expect(tooLong.status).toBe(400);
    const badKind = await h.call({
      method: 'POST',
      url: '/v1/sites/LNK/links',
      token: 'admin',
      json: { kind: 'zip', expiresIn: '1h' },
      invalidRequest: true,
    });
    expect(badKind.status).toBe(400);
    // rotation kills the link
    await h.call({
      method: 'PUT',
      url: '/v1/sites/LNK',
      token: 'sites:write',
      json: { ...site, keyVersion: 2, enrollmentKey: `${KEY2}-lnk` },
    });
    const rotated = await h.call({ method: 'GET', url: path });
    expect(rotated.status).toBe(404);
    expect(rotated.json().error.code).toBe('E_LINK_INVALID');
    // expiry → 410 Gone
    const fresh = (
      await h.call({
        method: 'POST',
        url: '/v1/sites/LNK/links',
        token: 'admin',
        json: { kind: 'exe', expiresIn: '1m' },
      })
    ).json();
    h.api.now += 120_000;
    const gone = await h.call({ method: 'GET', url: new URL(fresh.url).pathname });
    expect(gone.status).toBe(410);
    h.api.now -= 120_000;
    const unknown = await h.call({ method: 'GET', url: `/dl/sgl_${'A'.repeat(43)}` });
    expect(unknown.status).toBe(404);
    const hostile = await h.call({ method: 'GET', url: '/dl/..%2F..%2Fetc%2Fpasswd', invalidRequest: true });
    expect(hostile.status).toBe(400);
  });

  it('batch builds: 202 with a Location, progress by id, unknown build 404', async () => {
    const b = await h.call({
      method: 'POST',
      url: '/v1/builds',
      token: 'releases:write',
      json: { channel: 'stable', sites: ['ACME-HQ', 'B-1'] },
    });
    expect(b.status).toBe(202);
    expect(b.headers.location).toBe(`/v1/builds/${b.json().id}`);
    const all = await h.call({
      method: 'POST',
      url: '/v1/builds',
      token: 'admin',
      json: { version: '1.2.3', sites: 'all' },
    });
    expect(all.json().total).toBe(h.api.sites.size);
    const got = await h.call({ method: 'GET', url: b.headers.location!, token: 'installers:read' });
    expect(got.json()).toMatchObject({ state: 'completed', total: 2, done: 2, failed: 0 });
    expect(got.json().results[0].exe.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(
      (await h.call({ method: 'GET', url: '/v1/builds/bld_nope', token: 'installers:read' })).status,
    ).toBe(404);
    const none = await h.call({
      method: 'POST',
      url: '/v1/builds',
      token: 'admin',
      json: { channel: 'beta', sites: 'all' },
    });
    expect(none.status).toBe(404);
    expect(none.json().error.code).toBe('E_NO_RELEASE');
    const bad = await h.call({
      method: 'POST',
      url: '/v1/builds',
      token: 'admin',
      json: { sites: ['../x'] },
      invalidRequest: true,
    });
    expect(bad.status).toBe(400);
  });

  it('POST /v1/sign: the remote backend’s protocol in, the signed file out, the temp file cleaned up', async () => {
    const input = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(500, 7)]);
    const r = await h.call({
      method: 'POST',
      url: '/v1/sign',
      token: 'sign',
      body: input,
      headers: { 'x-signet-file-name': encodeURIComponent('agent ü.exe'), 'x-signet-nest': '1' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.raw.subarray(-11).toString()).toBe('SIGNED+NEST');
    expect(r.headers['x-signet-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(h.api.signed.at(-1)?.cleaned).toBe(true);
    const notPe = await h.call({
      method: 'POST',
      url: '/v1/sign',
      token: 'sign',
      body: Buffer.from('#!/bin/sh'),
      headers: { 'x-signet-file-name': 'x.sh' },
    });
    expect(notPe.status).toBe(400);
    expect(notPe.json().error.code).toBe('E_SIGN_UNSUPPORTED');
    for (const name of ['..%2Fetc%2Fpasswd', '%E0%A4%A', 'a%00b'])
      expect(
        (
          await h.call({
            method: 'POST',
            url: '/v1/sign',
            token: 'sign',
            body: input,
            headers: { 'x-signet-file-name': name },
          })
        ).status,
      ).toBe(400);
    const noName = await h.call({
      method: 'POST',
      url: '/v1/sign',
      token: 'sign',
      body: input,
      invalidRequest: true,
    });
    expect(noName.json().error.message).toMatch(/x-signet-file-name/);
  });

  it('audit and webhook deliveries (admin): ISO times, no secrets', async () => {
    h.api.deliveryLog.push({
      id: 'dlv_1',
      event: 'build.completed',
      url: 'https://user:pw@hooks.example.com/x',
      payload: '{}',
      attempts: 2,
      state: 'pending',
      lastStatus: 502,
      lastError: 'bad gateway',
      nextAt: h.api.now,
      createdAt: h.api.now,
      deliveredAt: null,
    });
    const a = await h.call({ method: 'GET', url: '/v1/audit?limit=5', token: 'admin' });
    expect(a.json().items).toHaveLength(5);
    expect(a.json().items[0].at).toBe(new Date(h.api.now).toISOString());
    const a2 = await h.call({
      method: 'GET',
      url: `/v1/audit?cursor=${a.json().next}&limit=500`,
      token: 'admin',
    });
    expect(a2.json().next).toBeNull();
    const d = await h.call({ method: 'GET', url: '/v1/webhooks/deliveries', token: 'admin' });
    expect(d.json().items[0]).toMatchObject({
      id: 'dlv_1',
      url: 'https://***@hooks.example.com/x',
      lastStatus: 502,
    });
    expect(JSON.stringify(a2.json()) + d.body).not.toContain(KEY);
  });

  it('operations: healthz, readyz (503 when not ready), metrics (HTTP by route template + the api’s), the document', async () => {
    expect((await h.call({ method: 'GET', url: '/healthz' })).json().ok).toBe(true);
    expect((await h.call({ method: 'GET', url: '/readyz' })).status).toBe(200);
    h.api.ready = false;
    const notReady = await h.call({ method: 'GET', url: '/readyz' });
    expect(notReady.status).toBe(503);
    expect(notReady.json().checks[0]).toMatchObject({ name: 'database', ok: false });
    h.api.ready = true;
    const m = await h.call({ method: 'GET', url: '/metrics' });
    expect(m.headers['content-type']).toMatch(/^text\/plain/);
    expect(m.body).toMatch(
      /signet_http_requests_total\{method="GET",route="\/v1\/sites\/:siteCode",status="200"\} \d+/,
    );
    expect(m.body).toMatch(/signet_http_request_duration_seconds_bucket\{/);
    expect(m.body).toContain('signet_fake_builds_total 3');
    expect(m.body).not.toMatch(/sgl_|sgn_|canary/);
    const doc = await h.call({ method: 'GET', url: '/v1/openapi.json' });
    expect(doc.json()).toEqual(JSON.parse(readFileSync(COMMITTED_PATH, 'utf8')));
  });
});

describe('authentication and scopes', () => {
  const authed: { method: string; url: string; scope: Scope | null; json?: unknown; body?: Buffer }[] = [
    { method: 'GET', url: '/v1/token', scope: null },
    { method: 'GET', url: '/v1/releases', scope: null },
    {
      method: 'POST',
      url: '/v1/releases?version=9.9.9&channel=stable',
      scope: 'releases:write',
      body: AGENT,
    },
    {
      method: 'PUT',
      url: '/v1/sites/AUTH-1',
      scope: 'sites:write',
      json: { ...site, enrollmentKey: `${KEY}-auth` },
    },
    { method: 'GET', url: '/v1/sites/ACME-HQ', scope: 'sites:read' },
    { method: 'GET', url: '/v1/sites', scope: 'sites:read' },
    { method: 'DELETE', url: '/v1/sites/AUTH-1', scope: 'sites:write' },
    {
      method: 'POST',
      url: '/v1/sites/ACME-HQ/links',
      scope: 'sites:write',
      json: { kind: 'exe', expiresIn: '1h' },
    },
    { method: 'GET', url: '/v1/sites/ACME-HQ/installers/exe', scope: 'installers:read' },
    { method: 'HEAD', url: '/v1/sites/ACME-HQ/installers/msi', scope: 'installers:read' },
    { method: 'POST', url: '/v1/builds', scope: 'releases:write', json: { sites: 'all' } },
    { method: 'GET', url: '/v1/builds/bld_1', scope: 'installers:read' },
    { method: 'POST', url: '/v1/sign', scope: 'sign', body: Buffer.from('MZx') },
    { method: 'GET', url: '/v1/audit', scope: 'admin' },
    { method: 'GET', url: '/v1/webhooks/deliveries', scope: 'admin' },
  ];
  const send = (r: (typeof authed)[number], token: string, headers: Record<string, string> = {}) =>
    h.call({
      method: r.method,
      url: r.url,
      token,
      ...(r.json ? { json: r.json } : {}),
      ...(r.body ? { body: r.body } : {}),
      headers: { ...(r.body ? { 'x-signet-file-name': 'a.exe' } : {}), ...headers },
    });

  it('missing, unknown, malformed, expired and revoked tokens → 401 with WWW-Authenticate; no use case runs', async () => {
    const expiring = (await h.api.createToken({ name: 'short', scopes: ['admin'], expiresInMs: 1000 })).token;
    const revoked = (await h.api.createToken({ name: 'gone', scopes: ['admin'] })).token;
    await h.api.revokeToken('gone');
    h.api.now += 2000;
    for (const r of authed) {
      for (const [token, code] of [
        ['none', 'E_AUTH_MISSING'],
        ['sgn_unknown-token-value-0000000000', 'E_AUTH_INVALID'],
        [expiring, 'E_AUTH_INVALID'],
        [revoked, 'E_AUTH_INVALID'],
      ] as const) {
        const before = h.api.calls.length;
        const res = await send(r, token);
        expect(res.status, `${r.method} ${r.url} with ${token.slice(0, 8)}`).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="signet"/);
        if (r.method !== 'HEAD') expect(res.json().error.code).toBe(code);
        expect(h.api.calls.slice(before).filter((c) => c !== 'authenticate')).toEqual([]);
      }
      const basic = await send(r, 'none', { authorization: 'Basic dXNlcjpwdw==' });
      expect(basic.status).toBe(401);
    }
    h.api.now -= 2000;
  });

  it('a token without the route’s scope → 403 E_AUTH_SCOPE naming it; admin has every scope', async () => {
    for (const r of authed) {
      if (!r.scope) continue;
      for (const s of SCOPE_LIST.filter((x) => x !== r.scope && x !== 'admin')) {
        const res = await send(r, s);
        expect(res.status, `${r.method} ${r.url} with ${s}`).toBe(403);
        if (r.method !== 'HEAD')
          expect(res.json().error).toMatchObject({ code: 'E_AUTH_SCOPE', details: { scope: r.scope } });
        expect(res.headers['www-authenticate']).toContain('insufficient_scope');
      }
      const ok = await send(r, 'admin');
      expect([401, 403], `${r.method} ${r.url} with admin`).not.toContain(ok.status);
    }
  });
});

describe('hostile input', () => {
  it('hostile site codes (the installer tests’) never reach a use case: 400 or 404, coded', async () => {
    const codes = [
      '-x',
      'a%20b',
      'x'.repeat(65),
      'a$b',
      '..',
      '%2e%2e',
      '..%2F..%2Fetc',
      'a%00b',
      '%E2%80%AEevil',
      'ACME%2FHQ',
      '%C0%AF',
      'x'.repeat(300),
    ];
    for (const c of codes)
      for (const [method, url, token] of [
        ['GET', `/v1/sites/${c}`, 'sites:read'],
        ['PUT', `/v1/sites/${c}`, 'sites:write'],
        ['GET', `/v1/sites/${c}/installers/exe`, 'installers:read'],
      ] as const) {
        const before = h.api.calls.filter((x) => x !== 'authenticate').length;
        const r = await h.call({
          method,
          url,
          token,
          ...(method === 'PUT' ? { json: site } : {}),
          invalidRequest: true,
        });
        expect([400, 404], `${method} ${url}`).toContain(r.status);
        expect(r.json().error.code).toMatch(/^E_(INPUT_INVALID|NOT_FOUND)$/);
        expect(h.api.calls.filter((x) => x !== 'authenticate').length).toBe(before);
      }
    const kind = await h.call({
      method: 'GET',
      url: '/v1/sites/ACME-HQ/installers/zip',
      token: 'admin',
      invalidRequest: true,
    });
    expect(kind.status).toBe(400);
  });

  it('bodies over the limit → 413 (JSON over 1 MiB; files over maxUploadBytes, declared or streamed)', async () => {
    const big = await h.call({
      method: 'PUT',
      url: '/v1/sites/BIG',
      token: 'sites:write',
      body: JSON.stringify({ ...site, company: 'x'.repeat(1_100_000) }),
      headers: { 'content-type': 'application/json' },
      invalidRequest: true,
    });
    expect(big.status).toBe(413);
    expect(big.json().error.code).toBe('E_TOO_LARGE');
    const file = await h.call({
      method: 'POST',
      url: '/v1/sign',
      token: 'sign',
      body: Buffer.alloc(65 * 1024, 0x4d),
      headers: { 'x-signet-file-name': 'a.exe' },
    });
    expect(file.status).toBe(413);
    // streamed without a Content-Length: counted as it arrives
    const chunks = Array.from({ length: 80 }, () => Buffer.alloc(1024, 0x4d));
    const r = await h.app.inject({
      method: 'POST',
      url: '/v1/releases?version=5.0.0&channel=stable',
      headers: {
        authorization: `Bearer ${h.tokens['releases:write']}`,
        'content-type': 'application/octet-stream',
      },
      payload: Readable.from(chunks),
    });
    expect(r.statusCode).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe('E_TOO_LARGE');
    expect(h.api.releases.some((x) => x.version === '5.0.0')).toBe(false);
  });

  it('wrong content types → 415; no body where none is taken → 415', async () => {
    const text = await h.call({
      method: 'PUT',
      url: '/v1/sites/CT',
      token: 'sites:write',
      body: JSON.stringify(site),
      headers: { 'content-type': 'text/plain' },
      invalidRequest: true,
    });
    expect(text.status).toBe(415);
    expect(text.json().error.code).toBe('E_UNSUPPORTED_MEDIA');
    const jsonUpload = await h.call({
      method: 'POST',
      url: '/v1/releases?version=5.0.1&channel=stable',
      token: 'releases:write',
      json: { agent: 'x' },
      invalidRequest: true,
    });
    expect(jsonUpload.status).toBe(415);
    const octetSite = await h.call({
      method: 'PUT',
      url: '/v1/sites/CT',
      token: 'sites:write',
      body: Buffer.from('{}'),
      invalidRequest: true,
    });
    expect(octetSite.status).toBe(415);
    const form = await h.call({
      method: 'POST',
      url: '/v1/builds',
      token: 'admin',
      body: 'sites=all',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      invalidRequest: true,
    });
    expect(form.status).toBe(415);
  });

  it('deep, broken or poisoned JSON → 400 E_INPUT_INVALID, and the process stays up', async () => {
    for (const depth of [33, 10_000, 400_000]) {
      const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const r = await h.call({
        method: 'POST',
        url: '/v1/builds',
        token: 'admin',
        body: deep,
        headers: { 'content-type': 'application/json' },
        invalidRequest: true,
      });
      expect(r.status).toBe(400);
      expect(r.json().error.message).toMatch(/deeper than 32/);
    }
    const deepObj = `{"sites":${'{"a":'.repeat(50)}1${'}'.repeat(50)}}`;
    expect(
      (
        await h.call({
          method: 'POST',
          url: '/v1/builds',
          token: 'admin',
          body: deepObj,
          headers: { 'content-type': 'application/json' },
          invalidRequest: true,
        })
      ).status,
    ).toBe(400);
    const broken = await h.call({
      method: 'POST',
      url: '/v1/builds',
      token: 'admin',
      body: '{"sites": [',
      headers: { 'content-type': 'application/json' },
      invalidRequest: true,
    });
    expect(broken.json().error).toMatchObject({
      code: 'E_INPUT_INVALID',
      message: 'the body is not valid JSON',
    });
    const proto = await h.call({
      method: 'POST',
      url: '/v1/builds',
      token: 'admin',
      body: '{"sites":"all","__proto__":{"x":1}}',
      headers: { 'content-type': 'application/json' },
      invalidRequest: true,
    });
    expect(proto.status).toBe(400);
    const strings = await h.call({
      method: 'POST',
      url: '/v1/builds',
      token: 'admin',
      body: JSON.stringify({ sites: ['[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['] }),
      headers: { 'content-type': 'application/json' },
      invalidRequest: true,
    });
    expect(strings.json().error.message).not.toMatch(/deeper/);
    expect((await h.call({ method: 'GET', url: '/healthz' })).status).toBe(200);
  });

  it('unknown routes and methods → 404 in the error shape, without a token', async () => {
    for (const [method, url] of [
      ['GET', '/'],
      ['GET', '/v2/sites'],
      ['POST', '/v1/token'],
      ['PATCH', '/v1/sites/ACME-HQ'],
      ['GET', '/v1/sites/ACME-HQ/installers'],
    ] as const) {
      const r = await h.call({ method, url });
      expect(r.status).toBe(404);
      expect(r.json().error.code).toBe('E_NOT_FOUND');
    }
  });

  it('an unexpected error → 500 E_INTERNAL with a generic message; its text only in the log', async () => {
    h.api.explode = 'secret internals /srv/signet/db';
    const r = await h.call({ method: 'GET', url: '/v1/sites', token: 'sites:read' });
    expect(r.status).toBe(500);
    expect(r.json().error).toEqual({
      code: 'E_INTERNAL',
      message: 'internal error',
      hint: expect.any(String),
    });
    expect(h.logs.join('\n')).toContain('secret internals');
  });
});

describe('rate limits', () => {
  it('per token: over the limit → 429 E_RATE_LIMITED with Retry-After; another token is unaffected', async () => {
    const hh = await serviceHarness({ rateLimit: { max: 3, windowMs: 60_000 } });
    try {
      for (let i = 0; i < 3; i++)
        expect((await hh.call({ method: 'GET', url: '/v1/token', token: 'sign' })).status).toBe(200);
      const over = await hh.call({ method: 'GET', url: '/v1/token', token: 'sign' });
      expect(over.status).toBe(429);
      expect(over.json().error.code).toBe('E_RATE_LIMITED');
      expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
      expect((await hh.call({ method: 'GET', url: '/v1/token', token: 'admin' })).status).toBe(200);
      // without a token: by address (download links, failed authentication)
      for (let i = 0; i < 3; i++) await hh.call({ method: 'GET', url: '/healthz' });
      expect((await hh.call({ method: 'GET', url: `/dl/sgl_${'B'.repeat(43)}` })).status).toBe(429);
      expect(
        (await hh.call({ method: 'GET', url: '/v1/token', token: 'sgn_bogus-000000000000000000' })).status,
      ).toBe(429);
    } finally {
      await hh.close();
    }
  });
});

describe('logs', () => {
  it('never carry a token, a link token or an enrollment key (Fastify’s log stream captured)', async () => {
    const joined = h.logs.join('\n');
    expect(joined.length).toBeGreaterThan(1000);
    expect(joined).toContain('"url":"/dl/***"');
    for (const t of Object.values(h.tokens)) expect(joined).not.toContain(t);
    for (const link of h.api.links.keys()) expect(joined).not.toContain(link);
    expect(joined).not.toContain(KEY);
    expect(joined).not.toMatch(/sgn_[A-Za-z0-9_-]{20}|sgl_[A-Za-z0-9_-]{20}/);
  });
});
