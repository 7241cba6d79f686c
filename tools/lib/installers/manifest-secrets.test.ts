/**
 * The manifest is not a secret, so nothing in it may be a hash an attacker can recompute from
 * guessable labels plus a guessed enrollment key. Real build (makensis, wixl, osslsigncode, 7z,
 * msiextract) around a mingw-built agent signed with a dev certificate.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { signedTestAgent } from '../../../test/helpers/site-installers.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import type { SignedArtifact } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import type { Signer } from '../sign/types.ts';
import { buildSiteInstallers, type SiteManifest } from './build.ts';
import { siteConfigHash } from './payload.ts';
import { type SiteConfig, validateSites } from './site.ts';

const KEY = 'canary-manifest-key-3e4f5a6b7c8d';
const KEY_ROTATED = 'canary-manifest-key-rotated-9a0b';
const input = {
  siteCode: 'north',
  serverUrl: 'https://rmm.example.com',
  company: 'North',
  siteName: 'HQ',
  enrollmentKey: KEY,
  keyVersion: 1,
};

let dir: string;
let config: SignetConfig;
let signer: Signer;
let agent: SignedArtifact;

function sitesOf(key: string): SiteConfig[] {
  const r = validateSites([{ ...input, enrollmentKey: key }], { dev: false });
  expect(r.problems).toEqual([]);
  return r.sites;
}
const manifest = (out: string) =>
  JSON.parse(readFileSync(join(out, 'north.manifest.json'), 'utf8')) as SiteManifest;
const build = (key: string, out: string) =>
  buildSiteInstallers({ agent, sites: sitesOf(key), config, signer, outDir: out });

beforeAll(async () => {
  dir = tempDir('signet-manifest-');
  ({ config, signer, agent } = await signedTestAgent(dir));
});

describe('the manifest holds no hash of the enrollment key', () => {
  it('siteConfigSha256 covers labels and key version only; the cache key is keyed by a local secret', async () => {
    const out = join(dir, 'out');
    expect(await build(KEY, out)).toMatchObject({ built: 1, failed: 0 });
    const m = manifest(out);
    const text = readFileSync(join(out, 'north.manifest.json'), 'utf8');
    expect(text).not.toContain(KEY);
    // the same site with any other key has the same configuration hash
    expect(m.inputs.siteConfigSha256).toBe(siteConfigHash(sitesOf('any-other-key-000000')[0]!));
    // what an attacker would compute from the labels and a guessed key is nowhere in the manifest
    const s = sitesOf(KEY)[0]!;
    const labels = [s.siteCode, s.serverUrl, s.company, s.siteName, s.department, s.deviceType, s.tags];
    for (const guess of [[...labels, KEY, s.keyVersion], [...labels, s.keyVersion, KEY], [KEY]])
      expect(text).not.toContain(createHash('sha256').update(JSON.stringify(guess)).digest('hex'));
    expect(text).not.toContain(createHash('sha256').update(KEY).digest('hex'));
    // the cache secret lives in the cache folder, private
    const secret = join(dir, 'cache', 'cache.key');
    expect(statSync(secret).mode & 0o077).toBe(0);
    expect(text).not.toContain(readFileSync(secret, 'utf8').trim());
  });

  it('a key rotated without a new key version still rebuilds (the cache sees the key)', async () => {
    const out = join(dir, 'out');
    const before = manifest(out);
    expect(await build(KEY, out)).toMatchObject({ built: 0, cached: 1 });
    const rotated = await build(KEY_ROTATED, out);
    expect(rotated).toMatchObject({ built: 1, cached: 0, failed: 0 });
    const after = manifest(out);
    expect(after.inputs.siteConfigSha256).toBe(before.inputs.siteConfigSha256);
    expect(after.inputs.cacheKey).not.toBe(before.inputs.cacheKey);
    // without the cache secret nothing matches: one rebuild, then cached again
    rmSync(join(dir, 'cache', 'cache.key'));
    expect(await build(KEY_ROTATED, out)).toMatchObject({ built: 1, cached: 0 });
    expect(await build(KEY_ROTATED, out)).toMatchObject({ built: 0, cached: 1 });
  });
});
