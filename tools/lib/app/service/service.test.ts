/**
 * The service's use cases over real parts (SQLite store, blobs, the test PKI and TSA, makensis,
 * wixl, osslsigncode): tokens, verified releases, sites and key rotation, on-demand installers
 * shared by concurrent requests, links, batch builds, signing, restart, and the planted
 * enrollment key found nowhere in clear outside the installers.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  bufferBody,
  fileBody,
  makeServiceFixture,
  type ServiceFixture,
} from '../../../../test/helpers/service-fixture.ts';
import { tempDir } from '../../../../test/helpers/tmp.ts';
import { readNsisOverlay } from '../../installers/nsis-incremental.ts';
import { verifyFile } from '../../sign/verify.ts';
import type { ServiceApi } from './index.ts';
import type { InstallerFile } from './types.ts';

const KEY = 'canary-svc-enroll-6f1d2c3b4a5e';
const KEY2 = 'canary-svc-enroll-rotated-9e8d7c';

async function bytesOf(f: InstallerFile): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of f.open()) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

describe('service use cases', () => {
  let fx: ServiceFixture;
  let api: ServiceApi;

  beforeAll(async () => {
    fx = await makeServiceFixture();
    api = await fx.start();
  }, 120_000);

  it('tokens: shown once, stored hashed, scoped, revocable, expiring', async () => {
    const { token, status } = await api.createToken({
      name: 'rmm-server',
      scopes: ['sites:read', 'installers:read'],
    });
    expect(token).toMatch(/^sgn_[A-Za-z0-9_-]{43}$/);
    expect(status).toMatchObject({ name: 'rmm-server', active: true, expiresAt: null });
    const { actor } = await api.authenticate(token, '10.0.0.1');
    expect(actor).toMatchObject({ kind: 'token', name: 'rmm-server', ip: '10.0.0.1' });
    expect(() => api.requireScope(actor, 'sites:read')).not.toThrow();
    expect(() => api.requireScope(actor, 'sites:write')).toThrow(
      expect.objectContaining({ code: 'E_AUTH_SCOPE' }),
    );
    await expect(api.authenticate(undefined, '-')).rejects.toMatchObject({ code: 'E_AUTH_MISSING' });
    await expect(api.authenticate(`${token}x`, '-')).rejects.toMatchObject({ code: 'E_AUTH_INVALID' });
    await expect(api.createToken({ name: 'rmm-server', scopes: ['admin'] })).rejects.toMatchObject({
      code: 'E_CONFLICT',
    });
    await expect(api.createToken({ name: 'x', scopes: ['root' as never] })).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
    });
    await api.revokeToken('rmm-server');
    await expect(api.authenticate(token, '-')).rejects.toMatchObject({ code: 'E_AUTH_INVALID' });
    const short = await api.createToken({ name: 'short', scopes: ['admin'], expiresInMs: 1 });
    await new Promise((r) => setTimeout(r, 5));
    await expect(api.authenticate(short.token, '-')).rejects.toMatchObject({ code: 'E_AUTH_INVALID' });
    // the database holds no token in clear
    const db = readFileSync(join(fx.dir, 'data', 'service.db'));
    expect(db.includes(token)).toBe(false);
  });

  it('releases: a signed agent is verified and becomes current; unsigned or untrusted agents are refused', async () => {
    const r = await api.uploadRelease(ADMIN, {
      version: '1.0.0',
      channel: 'stable',
      body: fileBody(await fx.agent('1.0.0')),
    });
    expect(r).toMatchObject({ version: '1.0.0', channel: 'stable', current: true });
    expect(r.signer.leafSha256).toBe(fx.pki.leafSha256);
    await expect(
      api.uploadRelease(ADMIN, { version: '1.0.1', channel: 'stable', body: fileBody(fx.unsignedAgent) }),
    ).rejects.toMatchObject({ code: 'E_VERIFY_UNSIGNED' });
    await expect(
      api.uploadRelease(ADMIN, {
        version: '1.0.1',
        channel: 'stable',
        body: bufferBody(Buffer.from('not a PE')),
      }),
    ).rejects.toMatchObject({ exitCode: expect.any(Number) });
    await expect(
      api.uploadRelease(ADMIN, { version: 'v1', channel: 'stable', body: bufferBody(Buffer.alloc(1)) }),
    ).rejects.toMatchObject({ code: 'E_INPUT_INVALID' });
    // the same agent again is idempotent; another agent under the same version is a conflict
    const again = await api.uploadRelease(ADMIN, {
      version: '1.0.0',
      channel: 'stable',
      body: fileBody(await fx.agent('1.0.0')),
    });
    expect(again.id).toBe(r.id);
    await expect(
      api.uploadRelease(ADMIN, {
        version: '1.0.0',
        channel: 'stable',
        body: fileBody(await fx.agent('1.0.2')),
      }),
    ).rejects.toMatchObject({ code: 'E_CONFLICT' });
    expect((await api.listReleases()).map((x) => x.version)).toEqual(['1.0.0']);
  });

  it('sites: the key is write-only; rotation needs keyVersion + 1; older or skipped versions are refused', async () => {
    await expect(
      api.putSite(ADMIN, 'ACME-HQ', { serverUrl: 'https://rmm.example.com', keyVersion: 1 }),
    ).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
    });
    const put = await api.putSite(ADMIN, 'ACME-HQ', {
      serverUrl: 'https://rmm.example.com',
      company: 'Acme "quoted" $(id) <x>',
      keyVersion: 1,
      enrollmentKey: KEY,
    });
    expect(put.created).toBe(true);
    expect(put.site.fingerprint).toMatch(/^v1 \([0-9A-F]{4}\)$/);
    expect(JSON.stringify(put)).not.toContain(KEY);
    expect(JSON.stringify(await api.getSite('ACME-HQ'))).not.toContain(KEY);
    // labels change without the key
    const upd = await api.putSite(ADMIN, 'ACME-HQ', {
      serverUrl: 'https://rmm.example.com',
      company: 'Acme',
      keyVersion: 1,
    });
    expect(upd).toMatchObject({ created: false, rotated: false });
    await expect(
      api.putSite(ADMIN, 'ACME-HQ', {
        serverUrl: 'https://rmm.example.com',
        keyVersion: 1,
        enrollmentKey: KEY2,
      }),
    ).rejects.toMatchObject({ code: 'E_KEY_VERSION' });
    await expect(
      api.putSite(ADMIN, 'ACME-HQ', {
        serverUrl: 'https://rmm.example.com',
        keyVersion: 3,
        enrollmentKey: KEY2,
      }),
    ).rejects.toMatchObject({ code: 'E_KEY_VERSION' });
    await expect(
      api.putSite(ADMIN, 'bad code!', { serverUrl: 'https://x.example', keyVersion: 1, enrollmentKey: KEY }),
    ).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
    });
    await expect(api.getSite('nope')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  it('installers: 20 concurrent first requests share one build; every answer is the same verified file', async () => {
    const before = await metric(api, 'signet_builds_total');
    const files = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api.installer(ADMIN, { siteCode: 'ACME-HQ', kind: i % 2 ? 'msi' : 'exe', channel: 'stable' }),
      ),
    );
    expect((await metric(api, 'signet_builds_total')) - before).toBe(1);
    const exe = files.filter((f) => f.kind === 'exe');
    expect(new Set(exe.map((f) => f.sha256)).size).toBe(1);
    expect(exe[0]!.fileName).toMatch(/^Agent-ACME-HQ-v1-[0-9A-F]{4}\.exe$/);
    const dir = tempDir('signet-svc-dl-');
    for (const f of [exe[0]!, files.find((x) => x.kind === 'msi')!]) {
      const path = join(dir, f.fileName);
      writeFileSync(path, await bytesOf(f));
      expect(statSync(path).size).toBe(f.size);
      const v = await verifyFile(path, {
        caFile: fx.pki.caCert,
        tsaCaFile: fx.pki.caCert,
        leafSha256: [fx.pki.leafSha256],
      });
      expect(v.sha256).toBe(f.sha256);
    }
    // the site's data: Signet's overlay record of an incrementally assembled exe (read as the
    // installer script reads it), or site.json inside the NSIS archive of a full build
    const exePath = join(dir, exe[0]!.fileName);
    let siteJson = readNsisOverlay(exePath)?.toString('utf8');
    if (!siteJson) {
      execFileSync('7z', ['x', '-y', `-o${join(dir, 'x')}`, exePath], { stdio: 'ignore' });
      siteJson = readFileSync(filesUnder(join(dir, 'x')).find((p) => p.endsWith('site.json'))!, 'utf8');
    }
    expect(JSON.parse(siteJson).enrollment.key).toBe(KEY);
    // a warm request builds nothing
    await api.installer(ADMIN, { siteCode: 'ACME-HQ', kind: 'exe', channel: 'stable' });
    expect((await metric(api, 'signet_builds_total')) - before).toBe(1);
  }, 120_000);

  it('links: download without a token until expiry or key rotation; each download audited', async () => {
    const link = await api.createLink(ADMIN, 'ACME-HQ', { kind: 'exe', expiresInMs: 3_600_000 });
    expect(link.url).toMatch(/^https:\/\/signet\.example\.test\/dl\/sgl_[A-Za-z0-9_-]{43}$/);
    const token = link.url.slice(link.url.lastIndexOf('/') + 1);
    const f = await api.installerByLink(token, '192.0.2.7');
    expect(f.fileName).toMatch(/ACME-HQ-v1/);
    await expect(api.installerByLink(`${token.slice(0, -2)}xx`, '192.0.2.7')).rejects.toMatchObject({
      code: 'E_LINK_INVALID',
    });
    // rotate: the next request builds afresh, the old link stops working
    const rot = await api.putSite(ADMIN, 'ACME-HQ', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 2,
      enrollmentKey: KEY2,
    });
    expect(rot.rotated).toBe(true);
    await expect(api.installerByLink(token, '192.0.2.7')).rejects.toMatchObject({ code: 'E_LINK_INVALID' });
    const fresh = await api.installer(ADMIN, { siteCode: 'ACME-HQ', kind: 'exe', channel: 'stable' });
    expect(fresh.fileName).toMatch(/ACME-HQ-v2-/);
    expect(fresh.sha256).not.toBe(f.sha256);
    const audit = await api.audit(null, 100);
    const downloads = audit.items.filter((a) => a.action === 'link.download');
    expect(downloads.map((a) => a.result)).toEqual(['refused: site key rotated', 'refused: unknown', 'ok']);
    expect(downloads.every((a) => a.ip === '192.0.2.7')).toBe(true);
  }, 120_000);

  it('two concurrent rotations to the same version: one wins, the other is refused; one key per version', async () => {
    await api.putSite(ADMIN, 'RACE', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 1,
      enrollmentKey: `${KEY}-race-1`,
    });
    const results = await Promise.allSettled(
      ['a', 'b'].map((x) =>
        api.putSite(ADMIN, 'RACE', {
          serverUrl: 'https://rmm.example.com',
          keyVersion: 2,
          enrollmentKey: `${KEY}-race-2${x}`,
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(['E_CONFLICT', 'E_KEY_VERSION']).toContain(refused.reason.code);
    await api.deleteSite(ADMIN, 'RACE');
  }, 60_000);

  it('a link dies with its site: deleted and made again (same code and key version), the old link is refused', async () => {
    await api.putSite(ADMIN, 'TEMP', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 1,
      enrollmentKey: `${KEY}-temp-old`,
    });
    const link = await api.createLink(ADMIN, 'TEMP', { kind: 'exe', expiresInMs: 3_600_000 });
    const token = link.url.slice(link.url.lastIndexOf('/') + 1);
    await api.deleteSite(ADMIN, 'TEMP');
    await api.putSite(ADMIN, 'TEMP', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 1,
      enrollmentKey: `${KEY}-temp-new`,
    });
    await expect(api.installerByLink(token, '192.0.2.9')).rejects.toMatchObject({ code: 'E_LINK_INVALID' });
    await api.deleteSite(ADMIN, 'TEMP');
  }, 60_000);

  it('readiness names a failing check without its message (paths, hosts stay in the log)', async () => {
    const logged: string[] = [];
    const blind = await fx.start({
      env: { ...process.env, PATH: '/nonexistent' },
      background: false,
      log: (_l, m) => logged.push(m),
    });
    try {
      const r = await blind.readiness();
      expect(r.ok).toBe(false);
      expect(r.checks.find((c) => c.name === 'tools')).toEqual({ name: 'tools', ok: false });
      expect(JSON.stringify(r)).not.toContain('missing on PATH');
      expect(logged.join('\n')).toContain('missing on PATH');
    } finally {
      await blind.close();
    }
  });

  it('batch builds: 202-style start, progress, per-site results', async () => {
    for (const code of ['north', 'south'])
      await api.putSite(ADMIN, code, {
        serverUrl: 'https://rmm.example.com',
        keyVersion: 1,
        enrollmentKey: `${KEY}-${code}`,
      });
    const b = await api.startBuild(ADMIN, { channel: 'stable', sites: 'all' });
    expect(b.total).toBe(3);
    let view = b;
    for (let i = 0; i < 300 && view.state !== 'completed' && view.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      view = await api.getBuild(b.id);
    }
    expect(view).toMatchObject({ state: 'completed', done: 3, failed: 0 });
    expect(view.results.map((r) => r.siteCode).sort()).toEqual(['ACME-HQ', 'north', 'south']);
    expect(view.results.every((r) => r.ok)).toBe(true);
    await expect(api.startBuild(ADMIN, { sites: ['ghost'] })).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  }, 180_000);

  it('sign: a PE in, the same file signed and verified out; a non-PE is refused', async () => {
    const r = await api.sign(ADMIN, { fileName: 'agent.exe', body: fileBody(fx.unsignedAgent) });
    try {
      const v = await verifyFile(r.path, {
        caFile: fx.pki.caCert,
        tsaCaFile: fx.pki.caCert,
        leafSha256: [fx.pki.leafSha256],
      });
      expect(v.sha256).toBe(r.sha256);
    } finally {
      r.cleanup();
    }
    await expect(
      api.sign(ADMIN, { fileName: 'x.txt', body: bufferBody(Buffer.from('hello')) }),
    ).rejects.toMatchObject({
      code: 'E_SIGN_UNSUPPORTED',
    });
  }, 60_000);

  it('a restart serves the stored outputs again (re-verified) and forgets interrupted builds', async () => {
    const before = await api.installer(ADMIN, { siteCode: 'north', kind: 'msi', channel: 'stable' });
    await api.close();
    api = await fx.start();
    const after = await api.installer(ADMIN, { siteCode: 'north', kind: 'msi', channel: 'stable' });
    expect(after.sha256).toBe(before.sha256);
    expect(await metric(api, 'signet_builds_total')).toBe(0);
  }, 60_000);

  it('the enrollment keys appear nowhere in clear: database, blobs other than installers, audit, metrics', async () => {
    const data = join(fx.dir, 'data');
    for (const f of filesUnder(data).filter((p) => !p.includes(`${'blobs'}/sha256`))) {
      const b = readFileSync(f);
      expect(b.includes(KEY) || b.includes(KEY2), f).toBe(false);
    }
    expect(JSON.stringify((await api.audit(null, 500)).items)).not.toMatch(/canary-svc-enroll/);
    expect((await api.metrics()).text).not.toMatch(/canary-svc-enroll/);
    // no work folder keeps a file (they hold keys while a build runs)
    expect(filesUnder(join(data, 'work'))).toEqual([]);
  });
});

async function metric(api: ServiceApi, name: string): Promise<number> {
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec((await api.metrics()).text);
  return m ? Number(m[1]) : 0;
}
