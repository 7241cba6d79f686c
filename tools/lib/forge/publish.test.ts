import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeForge } from '../../../test/helpers/fake-forge.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { isSignetError, type SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { clearSecrets } from '../redact.ts';
import { GiteaForge } from './gitea.ts';
import { GitHubForge } from './github.ts';
import { publishRelease } from './publish.ts';
import type { Forge } from './types.ts';

const CANARY = 'canary-token-5f1e9c0d7a3b';
const logs: string[] = [];
logger.sink = { write: (l) => logs.push(l) };

const work = tempDir('signet-publish-');
function file(name: string, content: Buffer | string): string {
  const p = join(work, name);
  writeFileSync(p, content);
  return p;
}
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

const A = randomBytes(300_000);
const B = randomBytes(1234);
const files = [file('agent-tools.zip', A), file('readme.txt', B)];

const sleeps: number[] = [];
function client(fake: FakeForge, token = fake.token): Forge {
  const retry = {
    retries: 3,
    baseDelayMs: 1,
    maxDelayMs: 5_000,
    sleep: async (ms: number) => void sleeps.push(ms),
  };
  const common = { owner: fake.owner, repo: fake.repo, token, retry };
  return fake.flavor === 'github'
    ? new GitHubForge({ apiUrl: fake.apiUrl, ...common })
    : new GiteaForge({ apiUrl: fake.apiUrl, ...common });
}

function input(extra: Partial<Parameters<typeof publishRelease>[1]> = {}) {
  return {
    tag: 'v1.2.0',
    channel: 'stable' as const,
    notes: '### Features\n\n- faster agent',
    files,
    ...extra,
  };
}

function expectExact(fake: FakeForge, tag: string, draft = false) {
  const rels = fake.releases().filter((r) => r.tag === tag);
  expect(rels).toHaveLength(1);
  const r = rels[0]!;
  expect(r.draft).toBe(draft);
  const names = r.assets.map((a) => a.name).sort();
  expect(names).toEqual(['SHA256SUMS', 'agent-tools.zip', 'readme.txt']);
  expect(r.assets.every((a) => a.state === 'uploaded')).toBe(true);
  expect(r.assets.find((a) => a.name === 'agent-tools.zip')!.sha256).toBe(sha(A));
  expect(r.assets.find((a) => a.name === 'readme.txt')!.sha256).toBe(sha(B));
  return r;
}

for (const flavor of ['github', 'gitea'] as const) {
  describe(`publish to fake ${flavor}`, () => {
    let fake: FakeForge;
    beforeAll(async () => {
      fake = await FakeForge.start({ flavor, token: CANARY });
    });
    afterAll(async () => {
      await fake.close();
      clearSecrets();
    });
    afterEach(() => {
      fake.clearFaults();
      fake.assertClean();
    });

    it('creates a draft, uploads, passes the gate and publishes a stable release', async () => {
      const { result, plan } = await publishRelease(client(fake), input());
      expect(plan.release.action).toBe('create');
      expect(result!.draft).toBe(false);
      expect(result!.prerelease).toBe(false);
      const r = expectExact(fake, 'v1.2.0');
      expect(r.prerelease).toBe(false);
      expect(r.body).toContain('faster agent');
      expect(r.body).toContain(`\`${sha(A)}\``);
      const sums = fake.assetContent('SHA256SUMS', 'v1.2.0').toString();
      expect(sums).toBe(`${sha(A)}  agent-tools.zip\n${sha(B)}  readme.txt\n`);
      // the release was created as a draft and un-drafted only at the end
      const ops = fake.requests.filter(
        (q) => q.op === 'create-release' || q.op === 'update-release' || q.op === 'upload',
      );
      expect(ops[0]!.op).toBe('create-release');
      expect(ops.at(-1)!.op).toBe('update-release');
    });

    it('re-running converges without uploading anything', async () => {
      const before = fake.requests.length;
      const { plan, result } = await publishRelease(client(fake), input());
      expect(plan.actions.every((a) => a.kind === 'skip')).toBe(true);
      expect(plan.changes).toBe(false);
      expect(fake.requests.slice(before).filter((q) => q.op === 'upload')).toHaveLength(0);
      expect(result!.assets.every((a) => a.action === 'kept')).toBe(true);
      expectExact(fake, 'v1.2.0');
    });

    it('a beta release is a prerelease with a notice and no changelog', async () => {
      await publishRelease(client(fake), input({ tag: 'v1.3.0-beta.1', channel: 'beta' }));
      const r = fake.releases().find((x) => x.tag === 'v1.3.0-beta.1')!;
      expect(r.prerelease).toBe(true);
      expect(r.draft).toBe(false);
      expect(r.body).toMatch(/Prerelease \/ test build/);
      expect(r.body).not.toContain('faster agent');
      expect(r.body).toContain(sha(B));
    });

    it('replaces a changed asset through a temporary name, never leaving the release without it', async () => {
      const changed = randomBytes(1234);
      const path = file('readme.txt', changed);
      const before = fake.requests.length;
      const { plan } = await publishRelease(client(fake), input({ files: [files[0]!, path] }));
      expect(plan.actions.find((a) => a.name === 'readme.txt')!.kind).toBe('replace');
      const seq = fake.requests
        .slice(before)
        .filter((q) => ['upload', 'delete-asset', 'update-asset'].includes(q.op))
        .map((q) => q.op);
      // tmp upload (readme + SHA256SUMS) precede deletes; each delete is followed by its rename
      expect(seq.filter((s) => s === 'upload')).toHaveLength(2);
      expect(seq.filter((s) => s === 'update-asset')).toHaveLength(2);
      const r = fake.releases().find((x) => x.tag === 'v1.2.0')!;
      expect(r.assets.find((a) => a.name === 'readme.txt')!.sha256).toBe(sha(changed));
      expect(r.assets.map((a) => a.name).sort()).toEqual(['SHA256SUMS', 'agent-tools.zip', 'readme.txt']);
      writeFileSync(path, B);
      await publishRelease(client(fake), input());
      expectExact(fake, 'v1.2.0');
    });

    it('retries a 500 on the second upload, and honours 429 Retry-After', async () => {
      fake.addFault({ op: 'upload', skip: 1, action: { status: 500 } });
      fake.addFault({ op: 'create-release', action: { status: 429, retryAfter: '2' } });
      sleeps.length = 0;
      await publishRelease(client(fake), input({ tag: 'v2.0.0', concurrency: 1 }));
      expect(sleeps).toContain(2000);
      expect(sleeps.length).toBeGreaterThanOrEqual(2);
      expectExact(fake, 'v2.0.0');
      expect(fake.requests.filter((q) => q.fault).length).toBe(2);
    });

    it('survives a connection reset in the middle of an upload', async () => {
      fake.addFault({ op: 'upload', name: 'agent-tools.zip', action: { reset: 'mid' } });
      await publishRelease(client(fake), input({ tag: 'v2.1.0' }));
      expect(fake.requests.some((q) => q.fault && q.status === 'reset')).toBe(true);
      expectExact(fake, 'v2.1.0');
    });

    it('recovers from a 422 for an existing asset name (a half-written earlier upload)', async () => {
      fake.addFault({
        op: 'upload',
        name: 'readme.txt',
        action: {
          status: 422,
          body: {
            message: 'Validation Failed',
            errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }],
          },
        },
      });
      await publishRelease(client(fake), input({ tag: 'v2.2.0' }));
      expectExact(fake, 'v2.2.0');
    });

    it('401 becomes E_FORGE_AUTH naming the scope, and never prints the token', async () => {
      const wrong = `${CANARY}-wrong`;
      const e = (await publishRelease(client(fake, wrong), input({ tag: 'v9.0.0' })).catch(
        (x) => x,
      )) as SignetError;
      expect(isSignetError(e)).toBe(true);
      expect(e.code).toBe('E_FORGE_AUTH');
      expect(e.hint).toMatch(flavor === 'github' ? /contents: write/ : /write:repository/);
      const everything = JSON.stringify([e.toJSON(), e.message, e.stack, logs]);
      expect(everything).not.toContain(CANARY);
    });

    it('403 and 404 are coded errors', async () => {
      fake.addFault({
        op: 'list-releases',
        action: { status: 403, body: { message: 'Resource not accessible by integration' } },
      });
      const e1 = (await publishRelease(client(fake), input({ tag: 'v9.0.1' })).catch(
        (x) => x,
      )) as SignetError;
      expect(e1.code).toBe('E_FORGE_AUTH');
      const other = new (flavor === 'github' ? GitHubForge : GiteaForge)({
        apiUrl: fake.apiUrl,
        owner: 'acme',
        repo: 'nope',
        token: CANARY,
        retry: { retries: 0 },
      });
      const e2 = (await publishRelease(other, input({ tag: 'v9.0.2' })).catch((x) => x)) as SignetError;
      expect(e2.code).toBe('E_FORGE_NOT_FOUND');
    });
  });
}

describe('GitHub without digests, and attach mode', () => {
  let fake: FakeForge;
  beforeAll(async () => {
    fake = await FakeForge.start({ flavor: 'github', token: CANARY, digests: false });
  });
  afterAll(async () => {
    fake.assertClean();
    await fake.close();
  });

  it('reads assets back by download when the forge reports no digest', async () => {
    await publishRelease(client(fake), input({ tag: 'v5.0.0' }));
    expectExact(fake, 'v5.0.0');
    expect(fake.requests.filter((r) => r.op === 'download').length).toBeGreaterThanOrEqual(3);
  });

  it('attach adds assets to a published release and leaves its notes, state and other assets alone', async () => {
    const before = fake.releases().find((r) => r.tag === 'v5.0.0')!;
    const extra = file('site-north.zip', randomBytes(4000));
    const { result } = await publishRelease(client(fake), {
      tag: 'v5.0.0',
      channel: 'stable',
      files: [extra],
      mode: 'attach',
    });
    const after = fake.releases().find((r) => r.tag === 'v5.0.0')!;
    expect(after.body).toBe(before.body);
    expect(after.draft).toBe(false);
    expect(after.assets.map((a) => a.name).sort()).toEqual([
      'SHA256SUMS',
      'agent-tools.zip',
      'readme.txt',
      'site-north.zip',
    ]);
    expect(result!.assets.map((a) => a.name)).toEqual(['site-north.zip']);
    const e = await publishRelease(client(fake), {
      tag: 'v404',
      channel: 'stable',
      files: [extra],
      mode: 'attach',
    }).catch((x) => x);
    expect(e.code).toBe('E_FORGE_NOT_FOUND');
  });

  it('a file that changes after it was prepared: the release gets the bytes that were checked', async () => {
    const path = file('moving.zip', randomBytes(5000));
    await publishRelease(client(fake), input({ tag: 'v5.1.0', files: [path] }));
    // same size, different bytes: prepare snapshots them; later changes to the path do not ship
    const { prepareRelease, planPublish, applyPublish } = await import('./publish.ts');
    const checked = randomBytes(5000);
    writeFileSync(path, checked);
    const prepared = await prepareRelease(input({ tag: 'v5.1.0', files: [path] }), 'github');
    const plan = await planPublish(client(fake), prepared);
    expect(plan.actions.find((a) => a.name === 'moving.zip')!.kind).toBe('replace');
    writeFileSync(path, randomBytes(5000));
    const result = await applyPublish(client(fake), prepared, plan).finally(() => prepared.cleanup());
    expect(result.assets.find((a) => a.name === 'moving.zip')!.sha256).toBe(sha(checked));
  });
});

describe('GitHub immutable releases', () => {
  it('refuses, before touching anything, to change the assets of a published immutable release', async () => {
    const fake = await FakeForge.start({ flavor: 'github', token: CANARY });
    try {
      const id = fake.seedRelease({ tag: 'v6.0.0', immutable: true });
      fake.seedAsset(id, 'readme.txt', 'an older readme');
      const before = fake.requests.length;
      const e = await publishRelease(client(fake), input({ tag: 'v6.0.0' })).catch((x) => x);
      expect(e.code).toBe('E_RELEASE_IMMUTABLE');
      expect(e.message).toMatch(/upload agent-tools\.zip.*replace readme\.txt/);
      const writes = fake.requests
        .slice(before)
        .filter((r) => !['list-releases', 'list-assets', 'download', 'get-asset'].includes(r.op));
      expect(writes).toEqual([]);
      fake.assertClean();
    } finally {
      await fake.close();
    }
  });
});
