/**
 * What the service benches share: the package built as users run it, and a service set up on a
 * throwaway PKI — a pinned release profile timestamped by a local TSA, a master key file, the
 * config on disk (for `signet serve` / `signet worker` processes) and parsed, and signed agents.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../tools/lib/config/load.ts';
import type { SignetConfig } from '../tools/lib/config/schema.ts';
import { buildCachedAgent } from '../tools/lib/demo/agent.ts';
import { type DevCert, makeDevCert } from '../tools/lib/sign/devcert.ts';
import { createSigner } from '../tools/lib/sign/index.ts';
import { type LocalTsa, startLocalTsa } from '../tools/lib/sign/local-tsa.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The package's built JavaScript in a private package folder under `dir` (the repository's dist/
 * is left alone: `npm pack` may be using it); returns the path of its `signet` bin.
 */
export function builtPackage(dir: string): string {
  const pkg = join(dir, 'pkg');
  rmSync(pkg, { recursive: true, force: true });
  mkdirSync(pkg, { recursive: true });
  copyFileSync(join(REPO, 'package.json'), join(pkg, 'package.json'));
  for (const d of ['templates', 'workflows', 'schema', 'node_modules'])
    symlinkSync(join(REPO, d), join(pkg, d));
  execFileSync(
    join(REPO, 'node_modules', '.bin', 'tsc'),
    ['-p', join(REPO, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')],
    { cwd: REPO, stdio: 'inherit' },
  );
  return join(pkg, 'dist', 'cli', 'bin.js');
}

export interface ServiceBench {
  pki: DevCert;
  tsa: LocalTsa;
  config: SignetConfig;
  /** signet.config.json in `dir`. */
  configPath: string;
  /** The master key the config names (`file:` in `dir`). */
  masterKey: Uint8Array;
  /** The demo agent at `version`, padded to `mb` MiB, signed with the release profile. */
  signedAgent(version: string): Promise<string>;
}

/** A service's setup in `dir`; `service` adds to the config's `service` section. */
export async function serviceBench(
  dir: string,
  mb: number,
  service: Record<string, unknown> = {},
): Promise<ServiceBench> {
  const pki = await makeDevCert(join(dir, 'pki'));
  const tsa = await startLocalTsa({ cert: pki.tsaCert, key: pki.tsaKey, chain: pki.caCert });
  const masterKey = new Uint8Array(crypto.getRandomValues(new Uint8Array(32)));
  writeFileSync(join(dir, 'master.key'), Buffer.from(masterKey).toString('base64'), { mode: 0o600 });
  const raw = {
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
    installers: { product: { vendor: 'Acme', product: 'Agent', serviceName: 'SignetTestAgent' } },
    service: {
      data: join(dir, 'data'),
      profile: 'svc',
      masterKey: `file:${join(dir, 'master.key')}`,
      ...service,
    },
  };
  const configPath = join(dir, 'signet.config.json');
  writeFileSync(configPath, JSON.stringify(raw, null, 2));
  const config = parseConfig(raw, 'bench');
  const signer = createSigner(config, { profile: 'svc', releasePath: true, baseDir: dir });
  return {
    pki,
    tsa,
    config,
    configPath,
    masterKey,
    async signedAgent(version) {
      const a = join(dir, `agent-${version}.exe`);
      copyFileSync(await buildCachedAgent({ version, ...(mb ? { padMiB: mb } : {}) }), a);
      await signer.sign(a);
      return a;
    },
  };
}
