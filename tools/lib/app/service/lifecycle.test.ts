/**
 * The service over time, on real parts: webhooks signed with HMAC-SHA256 over timestamp + body,
 * retried after a failure and listed; old outputs kept while a link reaches them, then collected
 * with their blobs; nothing current ever collected.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  fileBody,
  makeServiceFixture,
  type ServiceFixture,
} from '../../../../test/helpers/service-fixture.ts';
import type { ServiceApi } from './index.ts';

const SECRET = 'canary-webhook-secret-5e2a9c';

interface Hook {
  headers: IncomingMessage['headers'];
  body: string;
}

describe('service lifecycle', () => {
  let fx: ServiceFixture;
  let api: ServiceApi;
  let server: Server;
  const received: Hook[] = [];
  let failNext = 1;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        if (failNext > 0) {
          failNext--;
          res.writeHead(500).end('try again');
        } else res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    fx = await makeServiceFixture({
      webhooks: [
        { url, secret: 'env:WH_SECRET', events: ['release.created', 'site.key_rotated', 'build.completed'] },
      ],
    });
    api = await fx.start({ env: { ...process.env, WH_SECRET: SECRET } });
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    await new Promise((r) => server.close(r));
  });

  it('webhooks: HMAC-signed, retried after a 500, listed as delivered; the secret never travels', async () => {
    await api.uploadRelease(ADMIN, {
      version: '1.0.0',
      channel: 'stable',
      body: fileBody(await fx.agent('1.0.0')),
    });
    await api.putSite(ADMIN, 'S1', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 1,
      enrollmentKey: 'canary-lifecycle-key-1-abcdef',
    });
    await api.putSite(ADMIN, 'S1', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 2,
      enrollmentKey: 'canary-lifecycle-key-2-abcdef',
    });
    for (let i = 0; i < 100 && (await api.deliveries(10)).some((d) => d.state !== 'delivered'); i++)
      await new Promise((r) => setTimeout(r, 100));
    const deliveries = await api.deliveries(10);
    expect(deliveries.map((d) => `${d.event} ${d.state}`).sort()).toEqual([
      'release.created delivered',
      'site.key_rotated delivered',
    ]);
    expect(deliveries.find((d) => d.event === 'release.created')!.attempts).toBe(2);
    // every request carries a signature the receiver can check
    for (const h of received) {
      const ts = String(h.headers['x-signet-timestamp']);
      const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${h.body}`).digest('hex')}`;
      expect(h.headers['x-signet-signature']).toBe(expected);
      expect(Math.abs(Date.now() / 1000 - Number(ts))).toBeLessThan(60);
      expect(h.body).not.toContain(SECRET);
      expect(h.body).not.toContain('canary-lifecycle-key');
    }
    const rotated = received.find((h) => h.headers['x-signet-event'] === 'site.key_rotated')!;
    expect(JSON.parse(rotated.body).data).toMatchObject({ siteCode: 'S1', keyVersion: 2 });
  }, 60_000);

  it('old outputs are kept while a link reaches them, then collected with their blobs; current ones never', async () => {
    const e1 = await api.installer(ADMIN, { siteCode: 'S1', kind: 'exe', channel: 'stable' });
    const m1 = await api.installer(ADMIN, { siteCode: 'S1', kind: 'msi', channel: 'stable' });
    // a technician's link pinned to 1.0.0's exe
    await api.createLink(ADMIN, 'S1', { kind: 'exe', version: '1.0.0', expiresInMs: 3_600_000 });
    await api.uploadRelease(ADMIN, {
      version: '1.1.0',
      channel: 'stable',
      body: fileBody(await fx.agent('1.1.0')),
    });
    const e2 = await api.installer(ADMIN, { siteCode: 'S1', kind: 'exe', channel: 'stable' });
    expect(e2.release.version).toBe('1.1.0');
    const gc = await api.collectGarbage(0);
    expect(gc.outputs).toBe(1); // 1.0.0's msi: no link reaches it
    // its whole file (and, when it was assembled incrementally, its delta and the release's MSI base, which nothing else uses now)
    expect(gc.blobs).toBeGreaterThanOrEqual(1);
    // the linked 1.0.0 exe and the current 1.1.0 exe are still served, from their blobs
    expect(
      (await api.installer(ADMIN, { siteCode: 'S1', kind: 'exe', channel: 'stable', version: '1.0.0' }))
        .sha256,
    ).toBe(e1.sha256);
    expect((await api.installer(ADMIN, { siteCode: 'S1', kind: 'exe', channel: 'stable' })).sha256).toBe(
      e2.sha256,
    );
    // the msi of 1.0.0 is built again on request (its old blob is gone, the new one identical in content? not required)
    const again = await api.installer(ADMIN, {
      siteCode: 'S1',
      kind: 'msi',
      channel: 'stable',
      version: '1.0.0',
    });
    expect(again.fileName).toBe(m1.fileName);
    // a rotation makes every output of the old key unreachable (links of the old key stop working)
    await api.putSite(ADMIN, 'S1', {
      serverUrl: 'https://rmm.example.com',
      keyVersion: 3,
      enrollmentKey: 'canary-lifecycle-key-3-abcdef',
    });
    const after = await api.collectGarbage(0);
    expect(after.outputs).toBeGreaterThanOrEqual(3);
    const fresh = await api.installer(ADMIN, { siteCode: 'S1', kind: 'exe', channel: 'stable' });
    expect(fresh.fileName).toMatch(/-v3-/);
    // nothing current is collected
    expect((await api.collectGarbage(0)).outputs).toBe(0);
  }, 180_000);
});
