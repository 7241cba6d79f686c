import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, serviceHarness } from '../../test/helpers/service-app.ts';
import type { SecretRef } from '../lib/secrets.ts';
import { remoteProduce } from '../lib/sign/remote.ts';
import { SignetClient } from './client.ts';

let h: Harness;
let base: string;
beforeAll(async () => {
  h = await serviceHarness();
  base = await h.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => h.close());

describe('SignetClient over a real port', () => {
  it('one method per route, typed answers, server errors thrown as SignetError with the code', async () => {
    const admin = new SignetClient({ baseUrl: base, token: h.tokens.admin });
    expect((await admin.token()).name).toBe('t-admin');
    const agent = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(300), Buffer.from('SIGNED')]);
    expect((await admin.uploadRelease('3.0.0', 'stable', agent)).current).toBe(true);
    expect((await admin.releases()).map((r) => r.version)).toEqual(['3.0.0']);
    const put = await admin.putSite('CL-1', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 1,
      enrollmentKey: 'canary-client-key-000001',
    });
    expect(put).toMatchObject({ created: true, site: { siteCode: 'CL-1' } });
    await admin.putSite('CL-2', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 1,
      enrollmentKey: 'canary-client-key-000002',
    });
    const all: string[] = [];
    for await (const s of admin.allSites(1)) all.push(s.siteCode);
    expect(all).toEqual(['CL-1', 'CL-2']);
    const res = await admin.installer('CL-1', 'exe');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(res.headers.get('etag')).toBe(`"${createHash('sha256').update(bytes).digest('hex')}"`);
    expect((await admin.installer('CL-1', 'exe', { ifNoneMatch: res.headers.get('etag')! })).status).toBe(
      304,
    );
    expect((await admin.installer('CL-1', 'exe', { range: 'bytes=0-1' })).status).toBe(206);
    const link = await admin.createLink('CL-1', { kind: 'msi', expiresIn: '1h' });
    expect(link.url.startsWith(`${base}/dl/`)).toBe(true);
    expect((await fetch(link.url)).status).toBe(200);
    const b = await admin.startBuild({ sites: 'all' });
    expect((await admin.build(b.id)).state).toBe('completed');
    expect((await admin.audit({ limit: 2 })).items).toHaveLength(2);
    expect(await admin.deliveries()).toEqual([]);
    expect((await admin.ready()).ok).toBe(true);
    await admin.deleteSite('CL-2');
    const e = await admin.site('CL-2').catch((x) => x);
    expect(e).toMatchObject({ name: 'SignetError', code: 'E_NOT_FOUND', details: { status: 404 } });
    const reader = new SignetClient({ baseUrl: base, token: h.tokens['sites:read'] });
    expect(await reader.startBuild({ sites: 'all' }).catch((x) => x.code)).toBe('E_AUTH_SCOPE');
    const nobody = new SignetClient({ baseUrl: base, token: 'sgn_nope-nope-nope-nope-nope' });
    expect(await nobody.token().catch((x) => x.code)).toBe('E_AUTH_INVALID');
  });
});

describe('Signet’s remote signing backend against POST /v1/sign', () => {
  it('signs through the service (the backend’s protocol end to end); a token without `sign` is "token rejected"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signet-remote-'));
    const input = join(dir, 'agent.exe');
    writeFileSync(input, Buffer.concat([Buffer.from('MZ'), Buffer.alloc(1000, 3)]));
    const settings = {
      url: `${base}/v1/sign`,
      token: 'env:SIGNET_TEST_SIGN_TOKEN' as SecretRef,
      timeoutMs: 10_000,
      retries: 0,
      retryWaitMs: 10,
    };
    process.env['SIGNET_TEST_SIGN_TOKEN'] = h.tokens.sign;
    await remoteProduce(settings, {
      input,
      output: join(dir, 'out.exe'),
      work: dir,
      description: 'agent.exe',
      nest: false,
      replaced: false,
      size: 1002,
    });
    expect(readFileSync(join(dir, 'out.exe')).subarray(-6).toString()).toBe('SIGNED');
    process.env['SIGNET_TEST_SIGN_TOKEN'] = h.tokens['sites:read'];
    const e = await remoteProduce(settings, {
      input,
      output: join(dir, 'out2.exe'),
      work: dir,
      description: 'agent.exe',
      nest: false,
      replaced: false,
      size: 1002,
    }).catch((x) => x);
    expect(e.code).toBe('E_SIGN_TOKEN_REJECTED');
    delete process.env['SIGNET_TEST_SIGN_TOKEN'];
    expect(h.api.signed.every((s) => s.cleaned)).toBe(true);
  });
});
