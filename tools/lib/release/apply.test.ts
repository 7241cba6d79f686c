import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { writeChangelog } from '../changelog/index.ts';
import { parseConfig } from '../config/load.ts';
import { logger } from '../log.ts';
import { clearSecrets } from '../redact.ts';
import { planFromRepo } from '../version/repo.ts';
import { applyRelease } from './apply.ts';
import { notesFromRepo } from './notes.ts';
import { pushArgs, pushAuth } from './push.ts';

const CARGO =
  '# agent\n[package]\nname = "agent"  # keep me\nversion = "1.0.0" # product version\n\n[dependencies]\nserde = "1"\n';
const CARGO_LOCK =
  'version = 4\n\n[[package]]\nname = "agent"\nversion = "1.0.0"\n\n[[package]]\nname = "serde"\nversion = "1.0.0"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n';
const PKG = '{\n  "name": "dash",\n  "version": "1.0.0",\n  "private": true\n}\n';
const LOCK = `${JSON.stringify({ name: 'dash', version: '1.0.0', lockfileVersion: 3, packages: { '': { name: 'dash', version: '1.0.0' } } }, null, 2)}\n`;

const config = (over: Record<string, unknown> = {}) =>
  parseConfig(
    {
      version: { manifests: ['agent/Cargo.toml', 'dashboard/package.json'] },
      git: { authorName: 'Release Bot', authorEmail: 'bot@acme.invalid' },
      ...over,
    },
    'test',
  );

function product(): TestRepo {
  const repo = TestRepo.create({
    files: {
      'agent/Cargo.toml': CARGO,
      'agent/Cargo.lock': CARGO_LOCK,
      'dashboard/package.json': PKG,
      'dashboard/package-lock.json': LOCK,
    },
  });
  repo.tag('v1.0.0', { annotated: true });
  repo.commit('feat(agent): remote shell', { 'agent/src/shell.rs': '// shell' });
  repo.commit('fix(dashboard): login loop', { 'dashboard/app.js': '//' });
  return repo;
}

function snapshot(repo: TestRepo) {
  return {
    head: repo.head(),
    tags: repo.tags(),
    status: repo.status(),
    cargo: readFileSync(join(repo.dir, 'agent/Cargo.toml'), 'utf8'),
    pkg: readFileSync(join(repo.dir, 'dashboard/package.json'), 'utf8'),
    untracked: repo.git('ls-files', '--others', '--exclude-standard'),
  };
}

const withRemote = (repo: TestRepo, hook?: string) => {
  const remote = TestRepo.bare();
  if (hook) {
    writeFileSync(join(remote.dir, 'hooks/pre-receive'), hook);
    chmodSync(join(remote.dir, 'hooks/pre-receive'), 0o755);
  }
  repo.git('remote', 'add', 'origin', remote.dir);
  return remote;
};

const DATE = '2026-03-01';
afterEach(() => clearSecrets());

describe('applyRelease stable', () => {
  it('writes manifests, CHANGELOG and notes, commits with the configured identity, tags last', async () => {
    const repo = product();
    const r = await applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', date: DATE, env: {} });
    expect(r.plan.version).toBe('1.1.0');
    expect(r.files).toEqual([
      'agent/Cargo.toml',
      'dashboard/package.json',
      'dashboard/package-lock.json',
      'agent/Cargo.lock',
      'CHANGELOG.md',
      '.signet/notes/1.1.0.md',
    ]);
    expect(readFileSync(join(repo.dir, 'agent/Cargo.toml'), 'utf8')).toBe(
      CARGO.replace('"1.0.0"', '"1.1.0"'),
    );
    expect(readFileSync(join(repo.dir, 'dashboard/package.json'), 'utf8')).toBe(
      PKG.replace('1.0.0', '1.1.0'),
    );
    expect(
      JSON.parse(readFileSync(join(repo.dir, 'dashboard/package-lock.json'), 'utf8')).packages[''].version,
    ).toBe('1.1.0');
    const changelog = readFileSync(join(repo.dir, 'CHANGELOG.md'), 'utf8');
    expect(changelog).toMatch(
      /^# Changelog\n\n## 1\.1\.0 \(2026-03-01\)\n\n### Features\n\n\* \*\*agent:\*\* remote shell/,
    );
    expect(repo.git('log', '-1', '--format=%s|%an|%ae|%cn')).toBe(
      'chore(release): v1.1.0 [skip ci]|Release Bot|bot@acme.invalid|Release Bot',
    );
    expect(repo.git('cat-file', '-t', 'v1.1.0')).toBe('tag');
    expect(repo.rev('v1.1.0')).toBe(r.commit);
    const tagMessage = repo.git('tag', '-l', '--format=%(contents)', 'v1.1.0');
    expect(tagMessage).toContain('### Features');
    expect(repo.git('tag', '-l', '--format=%(taggername)', 'v1.1.0')).toBe('Release Bot');
    expect(repo.status()).toBe('');
    // the release commit is now a guard
    const again = await applyRelease({
      cwd: repo.dir,
      config: config(),
      channel: 'stable',
      date: DATE,
      env: {},
    });
    expect(again.plan).toMatchObject({ released: false, reason: 'release commit at HEAD' });
    // the next release sees v1.1.0 and leaves every earlier byte of CHANGELOG.md
    repo.commit('fix: after', { 'x.txt': 'x' });
    await applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', date: DATE, env: {} });
    const next = readFileSync(join(repo.dir, 'CHANGELOG.md'), 'utf8');
    expect(next).toMatch(/^# Changelog\n\n## 1\.1\.1 /);
    expect(next.endsWith(changelog.slice('# Changelog\n\n'.length))).toBe(true);
  });

  it('a notes directory ignored by git is written but not committed', async () => {
    const repo = product();
    repo.commit('chore: ignore notes', { '.gitignore': '.signet/\n' });
    const r = await applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', date: DATE, env: {} });
    expect(r.files).toContain('.signet/notes/1.1.0.md');
    expect(readFileSync(join(repo.dir, '.signet/notes/1.1.0.md'), 'utf8')).toContain('remote shell');
    expect(repo.git('show', '--name-only', '--format=', 'HEAD').split('\n')).not.toContain(
      '.signet/notes/1.1.0.md',
    );
    expect(repo.git('show', '--name-only', '--format=', 'HEAD').split('\n')).toContain('CHANGELOG.md');
    expect(repo.status()).toBe('');
  });

  it('after `changelog --write`: the already written files are committed; with nothing to commit, HEAD is tagged', async () => {
    const repo = TestRepo.create({ files: { VERSION: '0.9.0\n' } });
    repo.commit('feat: first feature', { 'a.txt': 'a' });
    const cfg = parseConfig({}, 'test');
    const { notes } = await notesFromRepo({ cwd: repo.dir, config: cfg, date: DATE, env: {} });
    expect(writeChangelog(repo.dir, cfg.changelog, notes).map((c) => c.path)).toEqual([
      'CHANGELOG.md',
      '.signet/notes/0.9.0.md',
    ]);
    const r = await applyRelease({ cwd: repo.dir, config: cfg, channel: 'stable', date: DATE, env: {} });
    expect(r.files).toEqual([]);
    expect(r.commit).toBeDefined();
    expect(repo.git('show', '--name-only', '--format=', 'HEAD').split('\n').sort()).toEqual([
      '.signet/notes/0.9.0.md',
      'CHANGELOG.md',
    ]);
    expect(repo.status()).toBe('');

    // a first release whose changelog is already committed, with no manifest change: tag HEAD
    const again = TestRepo.create({ files: { VERSION: '0.9.0\n' } });
    again.commit('feat: first feature', { 'a.txt': 'a' });
    const n2 = await notesFromRepo({ cwd: again.dir, config: cfg, date: DATE, env: {} });
    writeChangelog(again.dir, cfg.changelog, n2.notes);
    again.git('add', '-A');
    again.git('commit', '-q', '-m', 'docs: changelog');
    const head = again.head();
    const t = await applyRelease({ cwd: again.dir, config: cfg, channel: 'stable', date: DATE, env: {} });
    expect(t.commit).toBeUndefined();
    expect(again.head()).toBe(head);
    expect(again.rev('v0.9.0')).toBe(head);
  });

  it('--dry-run prints the plan and the diff and touches nothing', async () => {
    const repo = product();
    const before = snapshot(repo);
    const r = await applyRelease({
      cwd: repo.dir,
      config: config(),
      channel: 'stable',
      dryRun: true,
      date: DATE,
      env: {},
    });
    expect(snapshot(repo)).toEqual(before);
    expect(r.dryRun).toBe(true);
    expect(r.commit).toBeUndefined();
    expect(r.diff).toContain('--- a/agent/Cargo.toml\n+++ b/agent/Cargo.toml');
    expect(r.diff).toContain('-version = "1.0.0" # product version\n+version = "1.1.0" # product version');
    expect(r.diff).toContain('--- /dev/null\n+++ b/CHANGELOG.md');
    expect(r.diff).toContain('+++ b/.signet/notes/1.1.0.md');
  });

  it('refuses a dirty tree, an existing target tag, and a detached HEAD push, changing nothing', async () => {
    const repo = product();
    repo.write('agent/Cargo.toml', `${CARGO}# local edit\n`);
    await expect(
      applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', env: {} }),
    ).rejects.toMatchObject({
      code: 'E_DIRTY_TREE',
    });
    repo.git('checkout', '--', 'agent/Cargo.toml');

    repo.branch('side', 'v1.0.0');
    repo.commit('fix: side');
    repo.tag('v1.1.0'); // the target name, on a branch HEAD does not reach
    repo.checkout('main');
    const before = snapshot(repo);
    await expect(
      applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', env: {} }),
    ).rejects.toMatchObject({
      code: 'E_TAG_EXISTS',
    });
    expect(snapshot(repo)).toEqual(before);
    repo.git('tag', '-d', 'v1.1.0');
    repo.git('branch', '-D', 'side');

    const beforePush = snapshot(repo);
    const noRemote = await applyRelease({
      cwd: repo.dir,
      config: config(),
      channel: 'stable',
      push: true,
      env: {},
    }).catch((e) => e);
    expect(noRemote).toMatchObject({
      code: 'E_INPUT_INVALID',
      message: expect.stringMatching(/remote "origin"/),
    });
    expect(snapshot(repo)).toEqual(beforePush);

    repo.checkout(repo.head());
    withRemote(repo);
    await expect(
      applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', push: true, env: {} }),
    ).rejects.toMatchObject({ code: 'E_DETACHED_HEAD' });
  });

  it('--push sends commit and tag to the remote atomically', async () => {
    const repo = product();
    const remote = withRemote(repo);
    repo.git('push', '-q', 'origin', 'main', 'v1.0.0');
    const r = await applyRelease({
      cwd: repo.dir,
      config: config(),
      channel: 'stable',
      push: true,
      date: DATE,
      env: {},
    });
    expect(r.pushed).toBe(true);
    expect(remote.rev('refs/heads/main')).toBe(r.commit);
    expect(remote.rev('refs/tags/v1.1.0')).toBe(r.commit);
  });

  it('a remote that rejects the push: local commit and tag rolled back, files restored, remote unchanged', async () => {
    const repo = product();
    const remote = withRemote(repo, '#!/bin/sh\necho "protected branch: releases need review" >&2\nexit 1\n');
    const remoteBefore = remote.git('for-each-ref');
    const before = snapshot(repo);
    const err = await applyRelease({
      cwd: repo.dir,
      config: config(),
      channel: 'stable',
      push: true,
      env: {},
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_PUSH_REJECTED' });
    expect((err as Error).message).toMatch(/protected branch/);
    expect(snapshot(repo)).toEqual(before);
    expect(remote.git('for-each-ref')).toBe(remoteBefore);
  });

  it('a failure after the commit (tag cannot be created) rolls the commit back', async () => {
    const repo = product();
    repo.git('update-ref', 'refs/tags/v1.1.0/blocker', 'HEAD'); // refs/tags/v1.1.0 cannot exist now
    const before = snapshot(repo);
    const err = await applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', env: {} }).catch(
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'E_RELEASE_ROLLED_BACK' });
    expect(snapshot(repo)).toEqual(before);
  });
});

describe('applyRelease beta', () => {
  it('tags HEAD only; the same run number again moves nothing; another commit needs --force', async () => {
    const repo = product();
    const remote = withRemote(repo);
    repo.git('push', '-q', 'origin', 'main');
    const before = snapshot(repo);
    const r = await applyRelease({
      cwd: repo.dir,
      config: config(),
      channel: 'beta',
      runNumber: 12,
      push: true,
      env: {},
    });
    expect(r).toMatchObject({ tag: 'v1.1.0-beta.12', files: [], pushed: true });
    expect(repo.rev('v1.1.0-beta.12')).toBe(before.head);
    expect({ ...snapshot(repo), tags: before.tags }).toEqual(before);
    expect(remote.rev('refs/tags/v1.1.0-beta.12')).toBe(before.head);
    expect(remote.rev('refs/heads/main')).toBe(before.head);

    const rerun = await applyRelease({
      cwd: repo.dir,
      config: config(),
      channel: 'beta',
      runNumber: 12,
      env: {},
    });
    expect(rerun.unchanged).toBe(true);

    repo.commit('fix: one more', { 'y.txt': 'y' });
    await expect(
      applyRelease({ cwd: repo.dir, config: config(), channel: 'beta', runNumber: 12, env: {} }),
    ).rejects.toMatchObject({ code: 'E_TAG_EXISTS' });
    const forced = await applyRelease({
      cwd: repo.dir,
      config: config(),
      channel: 'beta',
      runNumber: 12,
      force: true,
      push: true,
      env: {},
    });
    expect(forced.pushed).toBe(true);
    expect(repo.rev('v1.1.0-beta.12')).toBe(repo.head());
    expect(remote.rev('refs/tags/v1.1.0-beta.12')).toBe(repo.head());
  });

  it('a rejected beta push deletes the new tag', async () => {
    const repo = product();
    withRemote(repo, '#!/bin/sh\nexit 1\n');
    await expect(
      applyRelease({ cwd: repo.dir, config: config(), channel: 'beta', runNumber: 3, push: true, env: {} }),
    ).rejects.toMatchObject({ code: 'E_PUSH_REJECTED' });
    expect(repo.tags()).toEqual(['v1.0.0']);
  });
});

describe('push authentication', () => {
  it('builds argv without the token and only for http(s) remotes', () => {
    const env = { SIGNET_GIT_TOKEN: 'ghs_canaryTOKEN123456' };
    const a = pushAuth('https://github.com/acme/agent.git', 'SIGNET_GIT_TOKEN', env);
    expect(a.token).toBe(true);
    expect(JSON.stringify(a.configArgs)).not.toContain('canary');
    expect(a.configArgs.join(' ')).toContain('$SIGNET_GIT_TOKEN');
    expect(pushAuth('git@github.com:acme/agent.git', 'SIGNET_GIT_TOKEN', env).token).toBe(false);
    expect(() => pushAuth('https://x', 'BAD NAME', env)).toThrow(/git.tokenEnv/);
    expect(pushArgs('origin', ['HEAD:refs/heads/main', 'refs/tags/v1.0.0'])).toEqual([
      'push',
      '--atomic',
      '--porcelain',
      'origin',
      'HEAD:refs/heads/main',
      'refs/tags/v1.0.0',
    ]);
  });

  it('git receives the token from the credential helper; it is never printed', async () => {
    const canary = 'ghs_CANARY_d9f8a7c6b5e4';
    const seen: string[] = [];
    const server = createServer((req, res) => {
      const auth = req.headers.authorization;
      if (auth) seen.push(Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString());
      if (!auth) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' });
        return res.end('auth');
      }
      res.writeHead(403);
      res.end(`denied for ${auth}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const repo = product();
    repo.git('remote', 'add', 'origin', `http://127.0.0.1:${port}/acme/agent.git`);
    const lines: string[] = [];
    const sink = logger.sink;
    const level = logger.level;
    logger.sink = { write: (l) => lines.push(l) };
    logger.level = 'debug';
    const before = snapshot(repo);
    let err: unknown;
    try {
      err = await applyRelease({
        cwd: repo.dir,
        config: config(),
        channel: 'stable',
        push: true,
        env: { ...process.env, SIGNET_GIT_TOKEN: canary },
      }).catch((e) => e);
    } finally {
      logger.sink = sink;
      logger.level = level;
      server.close();
    }
    expect(seen).toContain(`x-access-token:${canary}`);
    expect(err).toMatchObject({ code: 'E_PUSH_REJECTED' });
    const everything = [JSON.stringify(err), String((err as Error).message), lines.join('\n')].join('\n');
    expect(everything).not.toContain(canary);
    expect(everything).not.toContain(Buffer.from(`x-access-token:${canary}`).toString('base64'));
    expect(lines.join('\n')).toContain('$ git');
    expect(snapshot(repo)).toEqual(before);
    // the remote URL was not changed to carry credentials
    expect(repo.git('remote', 'get-url', 'origin')).toBe(`http://127.0.0.1:${port}/acme/agent.git`);
  });
});

describe('planFromRepo after a release', () => {
  it('the next beta previews the release after it', async () => {
    const repo = product();
    await applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', env: {} });
    repo.commit('feat: next', { 'z.txt': 'z' });
    const { plan } = await planFromRepo({
      cwd: repo.dir,
      config: config().version,
      channel: 'beta',
      runNumber: 1,
      env: {},
    });
    expect(plan).toMatchObject({ previousTag: 'v1.1.0', version: '1.2.0-beta.1' });
  });
});
