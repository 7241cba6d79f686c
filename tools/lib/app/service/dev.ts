/**
 * `signet serve --dev`: the service's quick start on embedded defaults — a throwaway dev PKI
 * (NOT FOR RELEASE) and a local RFC 3161 TSA, the demo agent built with mingw, signed and
 * uploaded as the stable release, two demo sites, and an admin token printed once. The data
 * folder is kept between runs (the PKI, the master key and the records are reused).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../config/load.ts';
import type { SignetConfig } from '../../config/schema.ts';
import { buildDemoAgent } from '../../demo/agent.ts';
import { registerSecret } from '../../redact.ts';
import { makeDevCert } from '../../sign/devcert.ts';
import { createSigner } from '../../sign/index.ts';
import { startLocalTsa } from '../../sign/local-tsa.ts';
import { fileBody } from './body.ts';
import { createService, type ServiceApi } from './index.ts';
import type { Actor } from './types.ts';

export interface DevService {
  api: ServiceApi;
  config: SignetConfig;
  /** A fresh admin token (printed once by the CLI). */
  adminToken: string;
  dataDir: string;
  sites: string[];
  close(): Promise<void>;
}

const DEV_SITES = [
  {
    siteCode: 'ACME-HQ',
    serverUrl: 'https://rmm.example.invalid',
    company: 'ACME Corp. "Head Office"',
    siteName: 'HQ',
    tags: ['hq'],
  },
  {
    siteCode: 'Globex-Lab',
    serverUrl: 'https://rmm.example.invalid',
    company: 'Globex',
    siteName: 'R&D Lab',
    tags: ['lab'],
  },
];

const SYSTEM: Actor = { kind: 'anonymous', name: 'signet serve --dev', ip: '127.0.0.1', scopes: ['admin'] };

export async function startDevService(o: {
  dir: string;
  publicUrl: string;
  listen: string;
  log?: (l: string) => void;
}): Promise<DevService> {
  const say = o.log ?? (() => undefined);
  const dataDir = join(o.dir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pki = await makeDevCert(join(o.dir, 'dev-pki'), { reuse: true });
  const tsa = await startLocalTsa({ cert: pki.tsaCert, key: pki.tsaKey, chain: pki.caCert });
  say(`dev PKI in ${join(o.dir, 'dev-pki')} (NOT FOR RELEASE), local TSA at ${tsa.url}`);
  const keyFile = join(o.dir, 'master.key');
  if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const config = parseConfig(
    {
      signing: {
        defaultProfile: 'dev',
        profiles: {
          dev: {
            ...pki.profile,
            timestamp: { urls: [tsa.url] },
          },
        },
      },
      installers: { product: { vendor: 'SignetDemo', product: 'DemoAgent', serviceName: 'SignetDemoAgent' } },
      service: {
        data: dataDir,
        profile: 'dev',
        listen: o.listen,
        publicUrl: o.publicUrl,
        masterKey: `file:${keyFile}`,
      },
    },
    'signet serve --dev',
  );
  const api = await createService({ config, baseDir: o.dir, dev: true, publicUrl: o.publicUrl });
  try {
    if (!(await api.listReleases()).some((r) => r.channel === 'stable')) {
      const agentDir = join(o.dir, 'agent');
      mkdirSync(agentDir, { recursive: true });
      const agent = await buildDemoAgent(join(agentDir, 'agent.exe'), { version: '1.0.0' });
      await createSigner(config, { profile: 'dev', baseDir: o.dir }).sign(agent);
      await api.uploadRelease(SYSTEM, { version: '1.0.0', channel: 'stable', body: fileBody(agent) });
      say('demo agent 1.0.0 built, signed with the dev certificate and uploaded as the stable release');
    }
    for (const s of DEV_SITES) {
      const existing = await api.getSite(s.siteCode).catch(() => undefined);
      if (existing) continue;
      const enrollmentKey = `dev-${s.siteCode}-${randomBytes(12).toString('hex')}`;
      registerSecret(enrollmentKey);
      await api.putSite(SYSTEM, s.siteCode, { ...s, keyVersion: 1, enrollmentKey });
    }
    const name = `dev-admin-${Date.now().toString(36)}`;
    const { token } = await api.createToken({ name, scopes: ['admin'] });
    return {
      api,
      config,
      adminToken: token,
      dataDir,
      sites: DEV_SITES.map((s) => s.siteCode),
      close: async () => {
        await api.close();
        await tsa.close();
      },
    };
  } catch (e) {
    await api.close();
    await tsa.close();
    throw e;
  }
}

/** The curl lines `signet serve --dev` prints. */
export function devExamples(baseUrl: string, site: string): string[] {
  return [
    `export SIGNET_TOKEN=…   # the admin token above`,
    `curl -s -H "Authorization: Bearer $SIGNET_TOKEN" ${baseUrl}/v1/token`,
    `curl -s -H "Authorization: Bearer $SIGNET_TOKEN" ${baseUrl}/v1/sites`,
    `curl -sOJ -H "Authorization: Bearer $SIGNET_TOKEN" "${baseUrl}/v1/sites/${site}/installers/exe?channel=stable"`,
    `curl -s -H "Authorization: Bearer $SIGNET_TOKEN" -H 'content-type: application/json' -d '{"kind":"msi","expiresIn":"1h"}' ${baseUrl}/v1/sites/${site}/links`,
  ];
}
