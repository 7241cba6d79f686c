import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import type { SignedArtifact } from '../artifact.ts';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { DirForge } from './dir.ts';
import { parseRemote, resolveForgeTarget } from './index.ts';
import { publishRelease } from './publish.ts';

logger.level = 'error';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('dir: publisher', () => {
  const src = tempDir('signet-dir-src-');
  writeFileSync(join(src, 'tool.zip'), 'zip-bytes');
  writeFileSync(join(src, 'readme.txt'), 'read me');
  const files = [join(src, 'tool.zip'), join(src, 'readme.txt')];

  it('writes assets, SHA256SUMS, NOTES.md and release.json; re-runs converge', async () => {
    const out = tempDir('signet-dir-out-');
    const forge = new DirForge(out);
    const { result } = await publishRelease(forge, {
      tag: 'v0.1.0',
      channel: 'stable',
      notes: '- first',
      files,
    });
    const dir = join(out, 'v0.1.0');
    expect(readdirSync(dir).sort()).toEqual([
      'NOTES.md',
      'SHA256SUMS',
      'readme.txt',
      'release.json',
      'tool.zip',
    ]);
    const meta = JSON.parse(readFileSync(join(dir, 'release.json'), 'utf8'));
    expect(meta).toMatchObject({ tag: 'v0.1.0', draft: false, prerelease: false });
    expect(meta.assets).toContainEqual({ name: 'tool.zip', size: 9, sha256: sha('zip-bytes') });
    expect(readFileSync(join(dir, 'NOTES.md'), 'utf8')).toContain('- first');
    expect(readFileSync(join(dir, 'SHA256SUMS'), 'utf8')).toBe(
      `${sha('read me')}  readme.txt\n${sha('zip-bytes')}  tool.zip\n`,
    );
    expect(result!.url).toBe(`file://${dir}`);
    // change one file, drop another: replaced and pruned
    writeFileSync(join(src, 'tool.zip'), 'zip-bytes-2');
    const again = await publishRelease(new DirForge(out), {
      tag: 'v0.1.0',
      channel: 'stable',
      files: [files[0]!],
    });
    expect(again.plan.actions.map((a) => `${a.kind}:${a.name}`).sort()).toEqual([
      'delete:readme.txt',
      'replace:SHA256SUMS',
      'replace:tool.zip',
    ]);
    expect(readdirSync(dir).sort()).toEqual(['NOTES.md', 'SHA256SUMS', 'release.json', 'tool.zip']);
    const third = await publishRelease(new DirForge(out), {
      tag: 'v0.1.0',
      channel: 'stable',
      files: [files[0]!],
    });
    expect(third.plan.changes).toBe(false);
  });

  it('beta goes to a prerelease folder', async () => {
    const out = tempDir('signet-dir-out-');
    await publishRelease(new DirForge(out), { tag: 'v0.2.0-beta.1', channel: 'beta', files });
    const meta = JSON.parse(readFileSync(join(out, 'v0.2.0-beta.1', 'release.json'), 'utf8'));
    expect(meta.prerelease).toBe(true);
  });

  it('gate: an .exe without a verifier, or one that fails verify, is refused and nothing is written', async () => {
    writeFileSync(join(src, 'agent.exe'), 'MZ not really');
    const out = tempDir('signet-dir-out-');
    const e1 = await publishRelease(new DirForge(out), {
      tag: 'v1.0.0',
      channel: 'stable',
      files: [join(src, 'agent.exe')],
    }).catch((x) => x);
    expect(e1.code).toBe('E_PUBLISH_GATE');
    const verify = async (): Promise<SignedArtifact> => {
      throw new SignetError('E_VERIFY_UNSIGNED', 'no signature');
    };
    const e2 = await publishRelease(new DirForge(out), {
      tag: 'v1.0.0',
      channel: 'stable',
      files: [join(src, 'agent.exe')],
      verify,
    }).catch((x) => x);
    expect(e2.code).toBe('E_PUBLISH_GATE');
    expect(e2.message).toMatch(/agent.exe did not verify/);
    expect(existsSync(join(out, 'v1.0.0'))).toBe(false);
  });

  it('rejects unsafe and reserved asset names before any work', async () => {
    writeFileSync(join(src, 'has space.zip'), 'x');
    writeFileSync(join(src, 'release.json'), '{}');
    const e = await publishRelease(new DirForge(tempDir()), {
      tag: 'v1.0.0',
      channel: 'stable',
      files: [join(src, 'has space.zip'), join(src, 'release.json')],
    }).catch((x) => x);
    expect(e.code).toBe('E_INPUT_INVALID');
    expect(e.details.problems).toHaveLength(2);
  });
});

describe('forge detection', () => {
  it('parses remotes', () => {
    expect(parseRemote('git@github.com:acme/agent.git')).toMatchObject({
      host: 'github.com',
      owner: 'acme',
      repo: 'agent',
    });
    expect(parseRemote('https://git.example.com/acme/agent.git')).toMatchObject({
      host: 'git.example.com',
      owner: 'acme',
      repo: 'agent',
    });
    expect(parseRemote('ssh://git@git.example.com:2222/acme/agent.git')).toMatchObject({
      host: 'git.example.com',
      owner: 'acme',
      repo: 'agent',
    });
  });

  it('uses the Actions environment: GitHub, GHES, Gitea act_runner', async () => {
    const gh = await resolveForgeTarget({
      env: {
        GITHUB_ACTIONS: 'true',
        GITHUB_API_URL: 'https://ghe.example.com/api/v3',
        GITHUB_REPOSITORY: 'acme/agent',
        GITHUB_TOKEN: 'x',
      },
      cwd: '/',
    });
    expect(gh).toMatchObject({
      kind: 'github',
      apiUrl: 'https://ghe.example.com/api/v3',
      owner: 'acme',
      repo: 'agent',
      token: 'env:GITHUB_TOKEN',
    });
    const gt = await resolveForgeTarget({
      env: {
        GITHUB_ACTIONS: 'true',
        GITEA_ACTIONS: 'true',
        GITHUB_SERVER_URL: 'https://git.example.com',
        GITHUB_REPOSITORY: 'acme/agent',
      },
      cwd: '/',
    });
    expect(gt).toMatchObject({
      kind: 'gitea',
      apiUrl: 'https://git.example.com',
      token: 'env:SIGNET_FORGE_TOKEN',
    });
  });

  it('probes /api/v1/version when only a URL is known', async () => {
    const yes = await resolveForgeTarget({
      env: {},
      cwd: '/',
      repository: 'a/b',
      apiUrl: 'https://code.example.com',
      probeGitea: async () => true,
    });
    expect(yes.kind).toBe('gitea');
    const no = resolveForgeTarget({
      env: {},
      cwd: '/',
      repository: 'a/b',
      apiUrl: 'https://code.example.com',
      probeGitea: async () => false,
    });
    await expect(no).rejects.toThrow(/neither as GitHub nor as Gitea/);
    expect(await resolveForgeTarget({ to: 'dir:./out', cwd: '/tmp' })).toEqual({
      kind: 'dir',
      path: '/tmp/out',
    });
  });

  it('refuses a literal token', async () => {
    await expect(
      resolveForgeTarget({ to: 'github', repository: 'a/b', token: 'ghp_literal', env: {}, cwd: '/' }),
    ).rejects.toThrow(/env:NAME or file:PATH/);
  });
});
