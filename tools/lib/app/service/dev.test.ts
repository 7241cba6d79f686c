/** `signet serve --dev`'s setup over real parts: dev PKI, local TSA, the demo agent released, two sites, an admin token; a second start reuses it all. */
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../../test/helpers/tmp.ts';
import { startDevService } from './dev.ts';

describe('startDevService', () => {
  it('releases the demo agent, registers two sites, prints a working admin token; a restart reuses the data', async () => {
    const dir = tempDir('signet-dev-svc-');
    const first = await startDevService({
      dir,
      publicUrl: 'http://127.0.0.1:8750',
      listen: '127.0.0.1:8750',
    });
    try {
      const { actor } = await first.api.authenticate(first.adminToken, '127.0.0.1');
      expect(actor.scopes).toEqual(['admin']);
      expect((await first.api.listReleases()).map((r) => `${r.version} ${r.channel}`)).toEqual([
        '1.0.0 stable',
      ]);
      expect((await first.api.listSites(null, 10)).items.map((s) => s.siteCode)).toEqual(first.sites.sort());
      const exe = await first.api.installer(actor, { siteCode: 'ACME-HQ', kind: 'exe', channel: 'stable' });
      expect(exe.fileName).toMatch(/^DemoAgent-ACME-HQ-v1-[0-9A-F]{4}\.exe$/);
    } finally {
      await first.close();
    }
    const second = await startDevService({
      dir,
      publicUrl: 'http://127.0.0.1:8750',
      listen: '127.0.0.1:8750',
    });
    try {
      expect(await second.api.listReleases()).toHaveLength(1);
      expect((await second.api.listTokens()).length).toBe(2);
      const { actor } = await second.api.authenticate(second.adminToken, '127.0.0.1');
      const again = await second.api.installer(actor, {
        siteCode: 'ACME-HQ',
        kind: 'exe',
        channel: 'stable',
      });
      expect(again.fileName).toMatch(/ACME-HQ-v1/);
    } finally {
      await second.close();
    }
  }, 120_000);
});
