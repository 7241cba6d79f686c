/**
 * The vendor's repository for the workflow tests: a bare origin with signet.config.yaml (the release
 * profile reads its key from env:SIGNET_SIGN_PFX_BASE64, as a CI secret holds it), a package.json
 * manifest, notes of the last release committed under .signet/notes, a build.sh that stands for the
 * Windows build (it copies a prebuilt, unsigned agent), a stable tag and conventional commits since.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { buildTestAgent } from './agent.ts';
import type { FakeForge } from './fake-forge.ts';
import type { TestPki } from './pki.ts';
import { tempDir } from './tmp.ts';
import type { LocalTsa } from './tsa.ts';
import type { HarnessOptions } from './workflow-harness.ts';

export const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Dev',
      GIT_AUTHOR_EMAIL: 'dev@example.invalid',
      GIT_COMMITTER_NAME: 'Dev',
      GIT_COMMITTER_EMAIL: 'dev@example.invalid',
    },
  }).trim();

export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

export interface VendorRepo {
  origin: string;
  pfxBase64: string;
}

export async function makeVendorRepo(pki: TestPki, tsa: LocalTsa): Promise<VendorRepo> {
  const dir = tempDir('signet-wf-repo-');
  const origin = tempDir('signet-wf-origin-');
  const config = {
    version: { manifests: ['package.json'] },
    signing: {
      defaultProfile: 'release',
      profiles: {
        release: {
          backend: 'osslsigncode',
          pkcs12: 'env:SIGNET_SIGN_PFX_BASE64',
          password: 'env:SIGNET_SIGN_PASSWORD',
          timestamp: { urls: [tsa.url] },
          verify: { caFile: 'ci/ca.pem', tsaCaFile: 'ci/ca.pem', leafSha256: [pki.leafSha256] },
        },
      },
    },
    installers: { product: { vendor: 'Acme', product: 'Agent', serviceName: 'AcmeAgent' } },
  };
  writeFileSync(join(dir, 'signet.config.yaml'), YAML.stringify(config));
  mkdirSync(join(dir, 'ci'));
  copyFileSync(pki.caCert, join(dir, 'ci', 'ca.pem'));
  mkdirSync(join(dir, 'prebuilt'));
  copyFileSync(await buildTestAgent({ version: '0.2.0' }), join(dir, 'prebuilt', 'agent.exe'));
  writeFileSync(
    join(dir, 'build.sh'),
    '#!/bin/bash\nset -e\nmkdir -p dist\ncp prebuilt/agent.exe dist/agent.exe\necho "built agent $SIGNET_VERSION"\n',
    { mode: 0o755 },
  );
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'acme-agent', version: '0.1.0' }, null, 2)}\n`,
  );
  mkdirSync(join(dir, '.signet', 'notes'), { recursive: true });
  writeFileSync(join(dir, '.signet', 'notes', '0.1.0.md'), '### Features\n\n- the first release\n');
  writeFileSync(join(dir, '.gitignore'), 'dist/\n.signet-cache/\n');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'chore: initial');
  git(dir, 'tag', '-a', 'v0.1.0', '-m', 'v0.1.0');
  writeFileSync(join(dir, 'service.txt'), 'reports its site\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'feat: the agent reports its site');
  writeFileSync(join(dir, 'service.txt'), 'reports its site, retries\n');
  git(dir, 'commit', '-qam', 'fix: retry enrollment on a 503');
  git(origin, 'init', '-q', '--bare', '-b', 'main');
  git(dir, 'push', '-q', '--follow-tags', origin, 'main');
  const pfxBase64 = readFileSync(pki.pkcs12).toString('base64');
  return { origin, pfxBase64 };
}

export function forgeOf(fake: FakeForge, token: string): HarnessOptions['forge'] {
  return fake.flavor === 'github'
    ? { flavor: 'github', serverUrl: fake.apiUrl, apiUrl: fake.apiUrl, token }
    : { flavor: 'gitea', serverUrl: fake.apiUrl, apiUrl: `${fake.apiUrl}/api/v1`, token };
}
