/**
 * The release's shared parts for one batch: the base MSI (its site slot sized from the batch's
 * largest site.json) and the NSIS stub when Signet has the NSIS module, from the process's cache
 * when an earlier batch built them with the same inputs.
 */
import { join } from 'node:path';
import type { SignedArtifact } from '../artifact.ts';
import { buildMsiBase, type Fallback, type MsiBase, msiSlotSize } from './msi-incremental.ts';
import { sha256, signetVersion } from './naming.ts';
import { loadNsisIncremental } from './nsis-slot.ts';
import { serializeSiteJson, siteJson } from './payload.ts';
import { type CachedStub, processReleaseCache } from './release.ts';
import { msiReleaseValues, nsisValues, type ReleaseParts, type Shared } from './site-build.ts';
import type { BuildSiteInstallersOptions } from './types.ts';

const PER_SITE_NSIS = ['SITE_CODE', 'KEY_VERSION', 'FINGERPRINT_HEX'];

export async function releaseParts(s: Shared, options: BuildSiteInstallersOptions): Promise<ReleaseParts> {
  const cache = options.incremental || processReleaseCache();
  const largest = Math.max(
    0,
    ...options.sites.map((site) => serializeSiteJson(siteJson(site, s.product, s.fullVersion, s.dev)).length),
  );
  const slot = msiSlotSize(largest);
  const values = msiReleaseValues(s);
  const common = {
    signet: signetVersion(),
    agent: s.agent.sha256,
    icon: s.icon?.sha256 ?? null,
    product: s.product,
    dev: s.dev,
  };
  const msiKey = sha256(JSON.stringify({ part: 'msi', ...common, wix: s.wix.sha256, values, slot }));
  const msi = cache.get<MsiBase>(msiKey, (work) =>
    buildMsiBase({
      template: s.wix,
      values,
      product: s.product,
      agentPath: s.agent.path,
      agentSha256: s.agent.sha256,
      agentFileName: s.product.agentFileName,
      ...(s.icon ? { iconPath: s.icon.path } : {}),
      slot,
      work,
      runner: s.runner,
      key: msiKey,
    }),
  );

  const module = await loadNsisIncremental();
  let nsis: Promise<ReleaseParts['nsis']>;
  if (!module) nsis = Promise.resolve({ fallback: 'this Signet has no incremental NSIS builder' });
  else {
    const release = nsisValues(s, { siteCode: 'X', keyVersion: 1 } as never, { hex: '0000' } as never);
    for (const k of PER_SITE_NSIS) delete release[k];
    delete release['OUT_FILE'];
    const key = sha256(
      JSON.stringify({
        part: 'nsis',
        ...common,
        nsis: s.nsis.sha256,
        values: release,
        compression: s.installers.compression,
        signer: s.signerIdentity,
      }),
    );
    nsis = cache
      .get<CachedStub>(key, async (work): Promise<CachedStub | Fallback> => {
        const before = new Set(s.signServer.signed.keys());
        const stub = await module.buildNsisStub({
          shared: {
            agent: { path: s.agent.path, sha256: s.agent.sha256 },
            version: s.version,
            product: s.product,
            installers: { compression: s.installers.compression },
            nsis: s.nsis,
            icon: s.icon,
            signServer: s.signServer,
            signerIdentity: s.signerIdentity,
            runner: s.runner,
          },
          work: join(work, 'nsis'),
          runner: s.runner,
        });
        if (!stub) return { fallback: 'the NSIS template does not declare the overlay' };
        const signed = new Map<string, SignedArtifact>();
        for (const [sha, a] of s.signServer.signed) if (!before.has(sha)) signed.set(sha, a);
        return { stub, signed };
      })
      .then((v) => ('fallback' in v ? v : { stub: v, module }));
  }
  const [m, n] = await Promise.all([msi, nsis]);
  return { msi: m, nsis: n };
}
