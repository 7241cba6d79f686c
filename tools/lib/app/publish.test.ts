import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeForge } from '../../../test/helpers/fake-forge.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { parseConfig } from '../config/load.ts';
import { checkChannel, expandFiles, fetchReleaseAsset } from '../forge/assets.ts';
import { logger } from '../log.ts';
import { runPublish } from './publish.ts';

logger.level = 'error';
const TOKEN = 'canary-run-token-77aa01';

describe('runPublish / fetchReleaseAsset', () => {
  let fake: FakeForge;
  const dir = tempDir('signet-run-');
  const content = randomBytes(70_000);
  writeFileSync(join(dir, 'agent.zip'), content);
  const config = parseConfig({ publish: { concurrency: 1 } }, 'test');
  const env = { SIGNET_FORGE_TOKEN: TOKEN };
  beforeAll(async () => {
    fake = await FakeForge.start({ flavor: 'gitea', token: TOKEN });
  });
  afterAll(async () => {
    fake.assertClean();
    await fake.close();
  });

  it('publishes with globs and config defaults, then downloads an asset back (the site-installers path)', async () => {
    const { result } = await runPublish({
      config,
      cwd: dir,
      to: 'gitea',
      apiUrl: fake.apiUrl,
      repository: 'acme/agent',
      tag: 'v1.0.0',
      channel: 'stable',
      files: ['*.zip'],
      env,
    });
    expect(result!.assets.map((a) => a.name)).toEqual(['agent.zip', 'SHA256SUMS']);
    const got = await fetchReleaseAsset({
      config,
      cwd: dir,
      to: 'gitea',
      apiUrl: fake.apiUrl,
      repository: 'acme/agent',
      tag: 'v1.0.0',
      name: 'agent.zip',
      dest: 'copy.zip',
      env,
    });
    expect(got.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect(readFileSync(join(dir, 'copy.zip')).equals(content)).toBe(true);
    const missing = await fetchReleaseAsset({
      config,
      cwd: dir,
      to: 'gitea',
      apiUrl: fake.apiUrl,
      repository: 'acme/agent',
      tag: 'v1.0.0',
      name: 'nope.exe',
      dest: 'x',
      env,
    }).catch((e) => e);
    expect(missing.code).toBe('E_FORGE_NOT_FOUND');
  });

  it('checks channel against tag, and globs that match nothing', () => {
    expect(() => checkChannel('v1.2.0-beta.1', 'stable')).toThrow(/--channel beta/);
    expect(() => checkChannel('v1.2.0', 'beta')).toThrow(/prerelease tag/);
    expect(() => checkChannel('v1.2.0-rc.1', 'beta')).not.toThrow();
    expect(() => expandFiles(['*.none'], dir)).toThrow(/no file matches/);
    expect(expandFiles(['agent.*', 'agent.zip'], dir)).toEqual([join(dir, 'agent.zip')]); // deduplicated
  });
});
