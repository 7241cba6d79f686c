/**
 * Site installers never go into a release by accident: real NSIS + MSI installers of one site
 * (built by buildSiteInstallers), their manifest and a bare site.json are recognised by content —
 * renamed too — and publishing them to dir: or to the fake forge is refused before anything is
 * created; --allow-site-installers publishes them with a warning; a plain signed agent (also a
 * 10 MB one) passes without a single process spawned. Prints the cost of the check.
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingRunner } from '../../../test/helpers/canary.ts';
import { FakeForge } from '../../../test/helpers/fake-forge.ts';
import { buildMsi, buildPe } from '../../../test/helpers/pe.ts';
import { type BuiltSite, buildTestSite } from '../../../test/helpers/site-installers.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import type { SignedArtifact } from '../artifact.ts';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { clearSecrets } from '../redact.ts';
import { DirForge } from './dir.ts';
import { GitHubForge } from './github.ts';
import { publishRelease } from './publish.ts';
import { siteSecretOf } from './site-secrets.ts';

const TOKEN = 'canary-site-check-token-0d4e';
const logs: string[] = [];
const sink = logger.sink;

let dir: string;
let site: BuiltSite;
let bigAgent: string;
let renamed: { exe: string; msi: string; manifest: string };
let verify: (p: string) => Promise<SignedArtifact>;

function copyAs(src: string, name: string): string {
  const p = join(dir, name);
  copyFileSync(src, p);
  return p;
}

async function refusal(p: Promise<unknown>): Promise<SignetError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SignetError) return e;
    throw e;
  }
  throw new Error('was not refused');
}

function ms(f: () => Promise<unknown>, rounds = 5): Promise<number> {
  return (async () => {
    await f();
    const t = performance.now();
    for (let i = 0; i < rounds; i++) await f();
    return (performance.now() - t) / rounds;
  })();
}

beforeAll(async () => {
  dir = tempDir('signet-site-secrets-');
  site = await buildTestSite(dir);
  verify = (p) => site.signer.verify(p);
  renamed = {
    exe: copyAs(site.exe, 'tool.bin'),
    msi: copyAs(site.msi, 'data.dat'),
    manifest: copyAs(site.manifest, 'notes.txt'),
  };
  bigAgent = await buildPe(join(dir, 'big-unsigned.exe'), { padBytes: 10 * 1024 * 1024 });
  await site.signer.sign(bigAgent, { out: join(dir, 'big.exe') });
  bigAgent = join(dir, 'big.exe');
  logger.sink = { write: (l) => logs.push(l) };
}, 180_000);
afterAll(() => {
  logger.sink = sink;
  clearSecrets();
});

describe('siteSecretOf: by content, not by name', () => {
  it('recognises the NSIS installer, the MSI, the manifest and a bare site.json — under any name', async () => {
    // incrementally assembled (the normal path): the site data is Signet's overlay record
    expect(await siteSecretOf(site.exe)).toBe('NSIS installer carrying a site overlay (site.json)');
    expect(await siteSecretOf(renamed.exe)).toBe('NSIS installer carrying a site overlay (site.json)');
    expect(await siteSecretOf(site.msi)).toBe('MSI installer carrying site.json');
    expect(await siteSecretOf(renamed.msi)).toBe('MSI installer carrying site.json');
    expect(await siteSecretOf(renamed.manifest)).toMatch(/per-site manifest/);
    const siteJson = join(dir, 'config.json');
    writeFileSync(
      siteJson,
      `\uFEFF${JSON.stringify({ schema: 1, siteCode: 'X', enrollment: { key: site.key } }, null, 2)}\n`,
    );
    expect(await siteSecretOf(siteJson)).toBe('site.json with an enrollment key');
  });

  it('passes a signed agent (10 MB too) without spawning anything, an MSI without site.json, other JSON', async () => {
    const runner = new RecordingRunner();
    expect(await siteSecretOf(site.agent.path, runner)).toBeUndefined();
    expect(await siteSecretOf(bigAgent, runner)).toBeUndefined();
    expect(runner.calls).toEqual([]);
    const plainMsi = await buildMsi(join(dir, 'plain.msi'), site.agent.path, tempDir('signet-plain-msi-'));
    expect(await siteSecretOf(plainMsi, runner)).toBeUndefined();
    writeFileSync(join(dir, 'package.json'), '{"name": "x", "site": {"siteCode": "A"}}');
    expect(await siteSecretOf(join(dir, 'package.json'), runner)).toBeUndefined();
    expect(runner.calls).toEqual([]);
    // an incremental installer is recognised by its overlay record, without spawning anything
    expect(await siteSecretOf(site.exe, runner)).toBeDefined();
    expect(runner.calls).toEqual([]);
    // a fully built one carries site.json inside its NSIS archive: listed with 7z through the runner
    const full = await buildTestSite(tempDir('signet-site-full-'), 'canary-site-enroll-full-77aa11', {
      full: true,
    });
    expect(await siteSecretOf(full.exe, runner)).toBe('NSIS installer carrying site.json');
    expect(runner.calls.map((c) => [c.file, c.args[0]])).toEqual([['7z', 'l']]);
    // belt and braces: an overlay that merely contains the record's magic is refused too
    const odd = join(dir, 'odd.exe');
    writeFileSync(odd, Buffer.concat([readFileSync(site.agent.path), Buffer.from('xxxxSIGNETSJyyyy')]));
    expect(await siteSecretOf(odd, runner)).toBe('PE carrying a Signet site overlay');
  });

  it('measures the check (printed for the report)', async () => {
    const cost = {
      agent10MB: await ms(() => siteSecretOf(bigAgent)),
      nsisExe: await ms(() => siteSecretOf(site.exe)),
      msi: await ms(() => siteSecretOf(site.msi)),
      manifest: await ms(() => siteSecretOf(site.manifest)),
    };
    console.log(
      `site-installer check, ms per file: ${JSON.stringify(cost, (_k, v) => (typeof v === 'number' ? Number(v.toFixed(2)) : v))}`,
    );
    expect(cost.agent10MB).toBeLessThan(20);
  });
});

describe('publish refuses site installers before anything is created', () => {
  let fake: FakeForge;
  let forge: GitHubForge;
  beforeAll(async () => {
    fake = await FakeForge.start({ flavor: 'github', token: TOKEN });
    forge = new GitHubForge({ apiUrl: fake.apiUrl, owner: fake.owner, repo: fake.repo, token: TOKEN });
  });
  afterAll(async () => {
    fake.assertClean();
    await fake.close();
  });
  const input = (files: string[], extra = {}) => ({
    tag: 'v1.0.0-beta.1',
    channel: 'beta' as const,
    files,
    verify,
    ...extra,
  });

  it('to the fake forge: the exe and msi (and renamed copies) are refused, listed, with no request at all', async () => {
    for (const files of [
      [site.agent.path, site.exe, site.msi],
      [site.agent.path, renamed.exe],
      [renamed.msi],
      [site.agent.path, renamed.manifest],
    ]) {
      const e = await refusal(publishRelease(forge, input(files)));
      expect(e.code).toBe('E_PUBLISH_SITE_INSTALLER');
      expect(e.exitCode).toBe(3);
      expect(e.hint).toMatch(/--allow-site-installers/);
      for (const f of files.slice(files[0] === site.agent.path ? 1 : 0))
        expect(e.message).toContain(f.split('/').pop());
      expect(e.message).not.toContain('agent.exe:');
    }
    expect(fake.requests).toEqual([]);
    expect(fake.releases()).toEqual([]);
  });

  it('to dir: refused, and the release folder is not created', async () => {
    const out = join(dir, 'release');
    const e = await refusal(publishRelease(new DirForge(out), input([site.agent.path, site.exe])));
    expect(e.code).toBe('E_PUBLISH_SITE_INSTALLER');
    expect(existsSync(out)).toBe(false);
  });

  it('with allowSiteInstallers they are published, with a loud warning; a plain signed agent is published as is', async () => {
    logs.length = 0;
    const { result } = await publishRelease(
      forge,
      input([site.agent.path, site.exe, site.msi], { allowSiteInstallers: true }),
    );
    expect(result!.assets.map((a) => a.name).sort()).toEqual(
      ['SHA256SUMS', 'agent.exe', site.exe.split('/').pop()!, site.msi.split('/').pop()!].sort(),
    );
    expect(logs.join('\n')).toMatch(
      /--allow-site-installers: publishing 2 file\(s\) that carry a site's enrollment key/,
    );
    logs.length = 0;
    const plain = await publishRelease(forge, input([site.agent.path], { tag: 'v1.0.0-beta.2' }));
    expect(plain.result!.assets.map((a) => a.name)).toEqual(['agent.exe', 'SHA256SUMS']);
    expect(logs.join('\n')).not.toMatch(/enrollment key/);
  });
});
