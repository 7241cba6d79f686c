/**
 * One site's real installers for tests that handle them as files (publish refusal, delivery):
 * the mingw test agent signed with a throwaway dev certificate, then `buildSiteInstallers` for one
 * site whose enrollment key is a canary (default settings: zlib NSIS, agentCommand MSI).
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SignedArtifact } from '../../tools/lib/artifact.ts';
import { parseConfig } from '../../tools/lib/config/load.ts';
import type { SignetConfig } from '../../tools/lib/config/schema.ts';
import { buildSiteInstallers } from '../../tools/lib/installers/build.ts';
import { validateSites } from '../../tools/lib/installers/site.ts';
import { type DevCert, makeDevCert } from '../../tools/lib/sign/devcert.ts';
import { createSigner } from '../../tools/lib/sign/index.ts';
import type { Signer } from '../../tools/lib/sign/types.ts';
import { buildTestAgent } from './agent.ts';

export interface SignedTestAgent {
  pki: DevCert;
  config: SignetConfig;
  signer: Signer;
  /** The mingw test agent signed with `pki` (`dir/agent.exe`). */
  agent: SignedArtifact;
}

/**
 * A throwaway dev certificate in `dir/pki`, a config whose default profile it is (installer cache
 * in `dir/cache`), and the test agent signed with it.
 */
export async function signedTestAgent(
  dir: string,
  o: { version?: string; product?: { vendor: string; product: string; serviceName: string } } = {},
): Promise<SignedTestAgent> {
  const pki = await makeDevCert(join(dir, 'pki'));
  const config = parseConfig(
    {
      signing: { defaultProfile: 'dev', profiles: { dev: pki.profile } },
      installers: {
        product: o.product ?? { vendor: 'Example Vendor', product: 'Agent', serviceName: 'SignetTestAgent' },
        cacheDir: join(dir, 'cache'),
      },
    },
    'test',
  );
  const signer = createSigner(config);
  copyFileSync(await buildTestAgent({ version: o.version ?? '1.2.3' }), join(dir, 'agent-unsigned.exe'));
  const agent = await signer.sign(join(dir, 'agent-unsigned.exe'), { out: join(dir, 'agent.exe') });
  return { pki, config, signer, agent };
}

export interface BuiltSite {
  /** The signed agent (not an installer). */
  agent: SignedArtifact;
  exe: string;
  msi: string;
  manifest: string;
  /** The site's enrollment key (a canary). */
  key: string;
  config: SignetConfig;
  signer: Signer;
  pki: DevCert;
}

export async function buildTestSite(
  dir: string,
  key = 'canary-site-enroll-key-3c9e1f5a7b',
  options: { full?: boolean } = {},
): Promise<BuiltSite> {
  const { pki, config, signer, agent } = await signedTestAgent(dir, {
    version: '1.0.0',
    product: { vendor: 'Acme', product: 'Agent', serviceName: 'AcmeAgent' },
  });
  const { sites } = validateSites(
    [
      {
        siteCode: 'ACME-HQ',
        serverUrl: 'https://rmm.example.com',
        company: 'ACME',
        enrollmentKey: key,
        keyVersion: 1,
      },
    ],
    {},
  );
  const r = await buildSiteInstallers({
    agent,
    sites,
    config,
    signer,
    outDir: join(dir, 'installers'),
    ...(options.full ? { incremental: false as const } : {}),
  });
  const site = r.results[0];
  if (!site?.ok || !site.exe || !site.msi || !site.manifest)
    throw new Error(`test site did not build: ${JSON.stringify(site?.error)}`);
  return { agent, exe: site.exe, msi: site.msi, manifest: site.manifest, key, config, signer, pki };
}
