/**
 * A real service for tests: the test PKI and a local TSA, a signing profile pinned to the test
 * leaf, the embedded store in a temporary data folder, and a signed (and an unsigned) mingw agent
 * ready to upload. Nothing here is a double: it is `createService` over real parts.
 */

import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CreateServiceOptions,
  createService,
  type ServiceApi,
} from '../../tools/lib/app/service/index.ts';
import type { Actor } from '../../tools/lib/app/service/types.ts';
import { parseConfig } from '../../tools/lib/config/load.ts';
import type { SignetConfig } from '../../tools/lib/config/schema.ts';
import { createSigner } from '../../tools/lib/sign/index.ts';
import { buildTestAgent } from './agent.ts';
import { makeTestPki, type TestPki } from './pki.ts';
import { tempDir } from './tmp.ts';
import { type LocalTsa, startTestTsa } from './tsa.ts';

export interface ServiceFixture {
  dir: string;
  /** The config as a file (JSON), for worker processes. */
  configPath: string;
  pki: TestPki;
  tsa: LocalTsa;
  config: SignetConfig;
  masterKey: Uint8Array;
  /** Signed and timestamped agents by version (x.y.z); `padMiB` makes a large one. */
  agent(version: string, padMiB?: number): Promise<string>;
  unsignedAgent: string;
  start(extra?: Partial<CreateServiceOptions>): Promise<ServiceApi>;
}

export const ADMIN: Actor = { kind: 'token', name: 'test-admin', ip: '127.0.0.1', scopes: ['admin'] };

export { bufferBody, fileBody } from '../../tools/lib/app/service/body.ts';

export interface FixtureOptions {
  webhooks?: { url: string; secret: string; events: string[] }[];
  buildConcurrency?: number;
  /** postgres:// of a shared store (default: the embedded SQLite file). */
  database?: string;
  /** redis:// of BullMQ (default: builds in process). */
  queue?: string;
  leaseMs?: number;
  cacheBytes?: number;
  /** The Windows service name of the product and of the test agents (default AcmeAgent / the agent's own). */
  serviceName?: string;
}

export async function makeServiceFixture(options: FixtureOptions = {}): Promise<ServiceFixture> {
  const dir = tempDir('signet-svc-');
  const pki = await makeTestPki();
  const tsa = await startTestTsa(pki);
  const config = parseConfig(
    {
      signing: {
        defaultProfile: 'svc',
        profiles: {
          svc: {
            ...pki.profile,
            dev: false,
            timestamp: { urls: [tsa.url], retries: 0, retryWaitMs: 0, timeoutMs: 15000 },
          },
        },
      },
      installers: {
        product: { vendor: 'Acme', product: 'Agent', serviceName: options.serviceName ?? 'AcmeAgent' },
      },
      service: {
        data: join(dir, 'data'),
        profile: 'svc',
        ...(options.webhooks ? { webhooks: options.webhooks } : {}),
        ...(options.buildConcurrency ? { buildConcurrency: options.buildConcurrency } : {}),
        ...(options.database ? { database: options.database } : {}),
        ...(options.queue ? { queue: options.queue } : {}),
        ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
        ...(options.cacheBytes !== undefined ? { cacheBytes: options.cacheBytes } : {}),
        masterKey: `file:${join(dir, 'master.key')}`,
      },
    },
    'test',
  );
  const signer = createSigner(config, { profile: 'svc', releasePath: true, baseDir: dir });
  const agents = new Map<string, string>();
  const unsignedDir = join(dir, 'unsigned');
  mkdirSync(unsignedDir, { recursive: true });
  const unsignedAgent = join(unsignedDir, 'agent.exe');
  copyFileSync(await buildTestAgent({ version: '1.0.0' }), unsignedAgent);
  const masterKey = new Uint8Array(randomBytes(32));
  writeFileSync(join(dir, 'master.key'), Buffer.from(masterKey).toString('base64'), { mode: 0o600 });
  // the same config on disk, for worker processes (`signet worker --config …`)
  const configPath = join(dir, 'signet.config.json');
  writeFileSync(configPath, JSON.stringify(config));
  return {
    dir,
    configPath,
    pki,
    tsa,
    config,
    masterKey,
    unsignedAgent,
    async agent(version, padMiB = 0) {
      const id = `${version}+${padMiB}`;
      const have = agents.get(id);
      if (have) return have;
      const d = join(dir, 'agents', padMiB ? `${version}-pad${padMiB}` : version);
      mkdirSync(d, { recursive: true });
      const file = join(d, 'agent.exe');
      copyFileSync(
        await buildTestAgent({
          version: version.split('-')[0]!,
          ...(options.serviceName ? { serviceName: options.serviceName } : {}),
          ...(padMiB ? { padMiB } : {}),
        }),
        file,
      );
      await signer.sign(file);
      agents.set(id, file);
      return file;
    },
    start: (extra = {}) =>
      createService({ config, baseDir: dir, masterKey, publicUrl: 'https://signet.example.test', ...extra }),
  };
}
