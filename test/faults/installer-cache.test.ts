/**
 * The installer cache must not trust a file's size: an output changed in place (same size, one
 * byte flipped) is rebuilt, never reported as `cached` with the tampered bytes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../../tools/lib/artifact.ts';
import { buildSiteInstallers } from '../../tools/lib/installers/build.ts';
import { validateSites } from '../../tools/lib/installers/site.ts';
import { type BuiltSite, buildTestSite } from '../helpers/site-installers.ts';
import { tempDir } from '../helpers/tmp.ts';

let dir: string;
let site: BuiltSite;

beforeAll(async () => {
  dir = tempDir('signet-cache-tamper-');
  site = await buildTestSite(dir);
});

function flip(path: string, at: number): void {
  const b = readFileSync(path);
  b[at] = b[at]! ^ 0x01;
  writeFileSync(path, b);
}

async function rerun() {
  const { sites } = validateSites(
    [
      {
        siteCode: 'ACME-HQ',
        serverUrl: 'https://rmm.example.com',
        company: 'ACME',
        enrollmentKey: site.key,
        keyVersion: 1,
      },
    ],
    {},
  );
  return buildSiteInstallers({
    agent: site.agent,
    sites,
    config: site.config,
    signer: site.signer,
    outDir: join(dir, 'installers'),
  });
}

describe('installer cache', () => {
  it('an untouched re-run is cached', async () => {
    const r = await rerun();
    expect(r.results[0]).toMatchObject({ ok: true, cached: true });
  });

  for (const kind of ['exe', 'msi'] as const) {
    for (const where of ['signed content', 'last byte'] as const) {
      it(`a same-size ${kind} with one byte flipped (${where}) is rebuilt, not cached`, async () => {
        const path = kind === 'exe' ? site.exe : site.msi;
        const manifest = JSON.parse(readFileSync(site.manifest, 'utf8'));
        const recorded = manifest.outputs.find((o: { kind: string }) => o.kind === kind);
        const size = readFileSync(path).length;
        flip(path, where === 'last byte' ? size - 1 : 1024);
        expect(readFileSync(path).length).toBe(size);
        expect(await sha256File(path)).not.toBe(recorded.sha256);
        const r = await rerun();
        expect(r.results[0]).toMatchObject({ ok: true, cached: false });
        // what is there now is what the (new) manifest records, and it verifies
        const now = JSON.parse(readFileSync(site.manifest, 'utf8'));
        for (const o of now.outputs as { name: string; sha256: string }[]) {
          const p = join(dir, 'installers', o.name);
          expect(await sha256File(p)).toBe(o.sha256);
          expect((await site.signer.verify(p)).sha256).toBe(o.sha256);
        }
      });
    }
  }

  it('a tampered exe whose manifest was edited to its hash is rebuilt (the signature is re-verified)', async () => {
    const manifest = JSON.parse(readFileSync(site.manifest, 'utf8'));
    const recorded = manifest.outputs.find((o: { kind: string }) => o.kind === 'exe');
    flip(site.exe, 1024);
    recorded.sha256 = await sha256File(site.exe);
    writeFileSync(site.manifest, JSON.stringify(manifest));
    const r = await rerun();
    expect(r.results[0]).toMatchObject({ ok: true, cached: false });
    await site.signer.verify(site.exe);
  });
});
