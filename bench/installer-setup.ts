/**
 * What the installer benches share: their numeric flags, a fresh data folder under bench/.data, a
 * throwaway dev PKI, the installers config, and the mingw test agent padded to --mb MiB.
 */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTestAgent } from '../test/helpers/agent.ts';
import type { SignedArtifact } from '../tools/lib/artifact.ts';
import { parseConfig } from '../tools/lib/config/load.ts';
import type { SignetConfig } from '../tools/lib/config/schema.ts';
import { type SiteConfig, validateSites } from '../tools/lib/installers/site.ts';
import { logger } from '../tools/lib/log.ts';
import { type DevCert, makeDevCert } from '../tools/lib/sign/devcert.ts';
import type { Signer } from '../tools/lib/sign/types.ts';

export const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

export interface InstallerBench {
  data: string;
  dc: DevCert;
  config: SignetConfig;
  /** The unsigned agent, padded to `mb` MiB. */
  unsignedAgent: string;
}

export async function installerBench(name: string, mb: number): Promise<InstallerBench> {
  logger.level = 'warn';
  const data = join(dirname(fileURLToPath(import.meta.url)), '.data', name);
  rmSync(data, { recursive: true, force: true });
  mkdirSync(data, { recursive: true });
  const dc = await makeDevCert(join(data, 'pki'));
  const config = parseConfig(
    {
      signing: { defaultProfile: 'dev', profiles: { dev: dc.profile } },
      installers: {
        product: { vendor: 'Example Vendor', product: 'Agent', serviceName: 'SignetTestAgent' },
        cacheDir: join(data, 'cache'),
      },
    },
    'bench',
  );
  return { data, dc, config, unsignedAgent: await buildTestAgent({ version: '1.2.3', padMiB: mb }) };
}

/** The padded agent, signed once by `signer` into the data folder (what every site wraps). */
export async function signedAgent(b: InstallerBench, signer: Signer): Promise<SignedArtifact> {
  copyFileSync(b.unsignedAgent, join(b.data, 'agent-unsigned.exe'));
  return signer.sign(join(b.data, 'agent-unsigned.exe'), { out: join(b.data, 'agent.exe') });
}

/** The raw floor's `osslsigncode sign` argv with the bench's dev certificate (`-n` when named). */
export function rawSignArgs(dc: DevCert, inFile: string, outFile: string, name?: string): string[] {
  return [
    'sign',
    '-certs',
    dc.cert,
    '-key',
    dc.key,
    '-h',
    'sha256',
    ...(name ? ['-n', name] : []),
    '-in',
    inFile,
    '-out',
    outFile,
  ];
}

/** `n` valid sites `TAG-00000`…, each with its own enrollment key and a company name that needs quoting. */
export function benchSites(n: number, tag = 'SITE'): SiteConfig[] {
  return validateSites(
    Array.from({ length: n }, (_, i) => ({
      siteCode: `${tag}-${String(i).padStart(5, '0')}`,
      serverUrl: 'https://rmm.example.com',
      company: `Company ${i} "quoted" $x`,
      enrollmentKey: `bench-enrollment-key-${tag}-${i}-0123456789`,
      keyVersion: 1,
    })),
  ).sites;
}
