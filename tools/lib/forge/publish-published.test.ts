/**
 * A re-run against a published release changes nothing until every new byte passed the gate:
 * a replacement the forge does not store byte for byte leaves the release's assets, names,
 * title and body exactly as they were (E_PUBLISH_GATE), and says so truthfully.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeForge } from '../../../test/helpers/fake-forge.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { GitHubForge } from './github.ts';
import { publishRelease, TEMP_PREFIX } from './publish.ts';
import type { Forge } from './types.ts';

let fake: FakeForge;
const work = tempDir('signet-pub-published-');
beforeAll(async () => {
  fake = await FakeForge.start({ flavor: 'github' });
});
afterAll(async () => {
  await fake.close();
});

/** The forge as Signet sees it, except that it stores temporary uploads wrongly (read-back differs). */
function corruptingTemps(): Forge {
  const real = new GitHubForge({
    apiUrl: fake.apiUrl,
    owner: fake.owner,
    repo: fake.repo,
    token: fake.token,
    retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
  });
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'readBackSha256')
        return async (rel: never, asset: { name: string }) => {
          const sha = await target.readBackSha256(rel, asset as never);
          return asset.name.startsWith(TEMP_PREFIX)
            ? `${sha.slice(0, -1)}${sha.endsWith('0') ? '1' : '0'}`
            : sha;
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

function snapshot(tag: string) {
  const r = fake.releases().find((x) => x.tag === tag)!;
  return {
    draft: r.draft,
    name: r.name,
    body: r.body,
    assets: r.assets.map((a) => ({ id: a.id, name: a.name, sha256: a.sha256, size: a.size })),
  };
}

describe('re-run against a published release', () => {
  it('a replacement that fails the gate changes nothing on the release', async () => {
    const id = fake.seedRelease({ tag: 'v7.0.0', name: 'v7.0.0', body: 'published notes', draft: false });
    fake.seedAsset(id, 'readme.txt', 'the published readme');
    fake.seedAsset(id, 'old-extra.txt', 'pruned by a clean run');
    const before = snapshot('v7.0.0');
    const readme = join(work, 'readme.txt');
    writeFileSync(readme, randomBytes(2000));
    const e = await publishRelease(corruptingTemps(), {
      tag: 'v7.0.0',
      channel: 'stable',
      notes: 'x',
      files: [readme],
    }).catch((x) => x);
    expect(snapshot('v7.0.0')).toEqual(before);
    expect(e.code).toBe('E_PUBLISH_GATE');
    expect(e.message).toMatch(/published release stays as it was/);
  });
});
