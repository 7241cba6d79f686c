import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, serviceHarness } from '../../test/helpers/service-app.ts';
import { contentDisposition, etagMatches, parseRange } from './download.ts';

describe('parseRange (RFC 9110 single byte ranges)', () => {
  it('a-b, a-, -n; clipped at the end; malformed or multiple → the whole file; outside → unsatisfiable', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(parseRange('bytes=50-1000', 100)).toEqual({ kind: 'partial', start: 50, end: 99 });
    expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', 100)).toEqual({ kind: 'unsatisfiable' });
    for (const h of [
      'bytes=0-1,5-6',
      'items=0-1',
      'bytes=5-1',
      'bytes=-',
      'bytes=a-b',
      `bytes=0-${'9'.repeat(30)}`,
      'bytes=0x1-2',
    ])
      expect(parseRange(h, 100), h).toEqual({ kind: 'full' });
  });

  it('If-None-Match: exact, weak, lists and *', () => {
    expect(etagMatches('"abc"', '"abc"')).toBe(true);
    expect(etagMatches('W/"abc"', '"abc"')).toBe(true);
    expect(etagMatches('"x", "abc"', '"abc"')).toBe(true);
    expect(etagMatches('*', '"abc"')).toBe(true);
    expect(etagMatches('"abcd"', '"abc"')).toBe(false);
    expect(etagMatches(undefined, '"abc"')).toBe(false);
  });

  it('Content-Disposition: a quoted ASCII name, filename* (RFC 8187) for anything else, no path, no quote breakout', () => {
    expect(contentDisposition('agent-ACME-1.2.3-v1-AB12.exe')).toBe(
      'attachment; filename="agent-ACME-1.2.3-v1-AB12.exe"',
    );
    expect(contentDisposition('agent-Zürich 🦄.msi')).toBe(
      `attachment; filename="agent-Z_rich __.msi"; filename*=UTF-8''agent-Z%C3%BCrich%20%F0%9F%A6%84.msi`,
    );
    const evil = contentDisposition('../a"; filename="x.bat\r\n.exe');
    expect(evil).not.toMatch(/[\r\n]/);
    expect(
      evil.startsWith('attachment; filename="a__ filename=_x.bat__.exe"; filename*=UTF-8\'\'a%22%3B'),
    ).toBe(true);
  });
});

describe('installer downloads over HTTP', () => {
  let h: Harness;
  let size: number;
  let sha: string;
  let bytes: Buffer;
  const url = '/v1/sites/DL-1/installers/exe?channel=stable';
  beforeAll(async () => {
    h = await serviceHarness();
    const agent = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(100), Buffer.from('SIGNED')]);
    await h.call({
      method: 'POST',
      url: '/v1/releases?version=2.0.0&channel=stable',
      token: 'admin',
      body: agent,
    });
    await h.call({
      method: 'PUT',
      url: '/v1/sites/DL-1',
      token: 'admin',
      json: {
        serverUrl: 'https://rmm.example.com',
        keyVersion: 1,
        enrollmentKey: 'canary-download-key-0001',
      },
    });
    bytes = h.api.installerBytes('DL-1', 'exe', '2.0.0', 1);
    size = bytes.length;
    sha = (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
  });
  afterAll(() => h.close());

  it('GET: the bytes, ETag = "sha256", the fingerprinted name, Accept-Ranges, private no-store', async () => {
    const r = await h.call({ method: 'GET', url, token: 'installers:read' });
    expect(r.status).toBe(200);
    expect(r.raw.equals(bytes)).toBe(true);
    expect(r.headers).toMatchObject({
      etag: `"${sha}"`,
      'accept-ranges': 'bytes',
      'content-length': String(size),
      'content-type': 'application/octet-stream',
      'cache-control': 'private, no-store',
    });
    expect(r.headers['content-disposition']).toMatch(
      /^attachment; filename="agent-DL-1-2\.0\.0-v1-[0-9A-F]{4}\.exe"$/,
    );
    const msi = await h.call({
      method: 'GET',
      url: '/v1/sites/DL-1/installers/msi',
      token: 'installers:read',
    });
    expect(msi.headers['content-disposition']).toMatch(/\.msi"$/);
  });

  it('HEAD: the same headers, no body', async () => {
    const r = await h.call({ method: 'HEAD', url, token: 'installers:read' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
    expect(r.headers['content-length']).toBe(String(size));
    expect(r.headers.etag).toBe(`"${sha}"`);
    const ranged = await h.call({
      method: 'HEAD',
      url,
      token: 'installers:read',
      headers: { range: 'bytes=0-9' },
    });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-length']).toBe('10');
  });

  it('If-None-Match → 304 without a body; a stale tag → 200', async () => {
    const r = await h.call({
      method: 'GET',
      url,
      token: 'installers:read',
      headers: { 'if-none-match': `"${sha}"` },
    });
    expect(r.status).toBe(304);
    expect(r.body).toBe('');
    expect(r.headers.etag).toBe(`"${sha}"`);
    expect(
      (await h.call({ method: 'GET', url, token: 'installers:read', headers: { 'if-none-match': '"old"' } }))
        .status,
    ).toBe(200);
  });

  it('Range: 206 with Content-Range for a-b, a- and -n; 416 outside; several ranges → 200; If-Range mismatch → 200', async () => {
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      [`bytes=${size - 10}-`, size - 10, size - 1],
      ['bytes=-16', size - 16, size - 1],
      [`bytes=5-${size + 100}`, 5, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const r = await h.call({ method: 'GET', url, token: 'installers:read', headers: { range } });
      expect(r.status, range).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${size}`);
      expect(r.raw.equals(bytes.subarray(start, end + 1)), range).toBe(true);
    }
    const out = await h.call({
      method: 'GET',
      url,
      token: 'installers:read',
      headers: { range: `bytes=${size}-` },
    });
    expect(out.status).toBe(416);
    expect(out.headers['content-range']).toBe(`bytes */${size}`);
    expect(out.json().error.code).toBe('E_RANGE_UNSATISFIABLE');
    const multi = await h.call({
      method: 'GET',
      url,
      token: 'installers:read',
      headers: { range: 'bytes=0-1,4-5' },
    });
    expect(multi.status).toBe(200);
    expect(multi.raw.length).toBe(size);
    const ifRange = await h.call({
      method: 'GET',
      url,
      token: 'installers:read',
      headers: { range: 'bytes=0-1', 'if-range': '"other"' },
    });
    expect(ifRange.status).toBe(200);
    const ifRangeOk = await h.call({
      method: 'GET',
      url,
      token: 'installers:read',
      headers: { range: 'bytes=0-1', 'if-range': `"${sha}"` },
    });
    expect(ifRangeOk.status).toBe(206);
  });

  it('the same semantics through a link (GET and HEAD, no token); no release on a channel → 404 E_NO_RELEASE', async () => {
    const link = (
      await h.call({
        method: 'POST',
        url: '/v1/sites/DL-1/links',
        token: 'sites:write',
        json: { kind: 'exe', expiresIn: '2h' },
      })
    ).json();
    const path = new URL(link.url).pathname;
    const head = await h.call({ method: 'HEAD', url: path });
    expect(head.status).toBe(200);
    expect(head.headers.etag).toBe(`"${sha}"`);
    const part = await h.call({ method: 'GET', url: path, headers: { range: 'bytes=-4' } });
    expect(part.status).toBe(206);
    expect(part.raw.equals(bytes.subarray(size - 4))).toBe(true);
    expect(
      (await h.call({ method: 'GET', url: path, headers: { 'if-none-match': `W/"${sha}"` } })).status,
    ).toBe(304);
    const beta = await h.call({
      method: 'GET',
      url: '/v1/sites/DL-1/installers/exe?channel=beta',
      token: 'installers:read',
    });
    expect(beta.status).toBe(404);
    expect(beta.json().error.code).toBe('E_NO_RELEASE');
    const badVersion = await h.call({
      method: 'GET',
      url: '/v1/sites/DL-1/installers/exe?version=$(id)',
      token: 'installers:read',
      invalidRequest: true,
    });
    expect(badVersion.status).toBe(400);
  });
});
