import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { logger } from '../log.ts';
import { planFromRepo } from './repo.ts';

const PKG = (v: string) => `{\n  "name": "agent",\n  "version": "${v}"\n}\n`;
const plan = async (repo: TestRepo, over: Partial<Parameters<typeof planFromRepo>[0]> = {}) =>
  (await planFromRepo({ cwd: repo.dir, channel: 'stable', env: {}, ...over })).plan;

describe('planFromRepo on real repositories', () => {
  it('stable only: bumps from the last stable tag', async () => {
    const repo = TestRepo.create({ files: { 'package.json': PKG('1.2.0') } });
    repo.tag('v1.2.0', { annotated: true });
    repo.commit('fix(agent): reconnect after sleep');
    repo.commit('docs: readme');
    const p = await plan(repo);
    expect(p).toMatchObject({
      channel: 'stable',
      previousTag: 'v1.2.0',
      version: '1.2.1',
      tag: 'v1.2.1',
      bump: 'patch',
      released: true,
      prerelease: false,
      commits: { total: 2, releasable: 1, byType: { fix: 1, docs: 1 } },
      manifestUpdates: [{ path: 'package.json', type: 'npm', from: '1.2.0', to: '1.2.1' }],
    });
  });

  it('beta after stable: previews the next stable, never the last one', async () => {
    const repo = TestRepo.create({ files: { 'package.json': PKG('0.3.0') } });
    repo.tag('v0.3.0');
    repo.commit('feat: remote shell');
    const p = await plan(repo, { channel: 'beta', runNumber: 7 });
    expect(p).toMatchObject({
      version: '0.4.0-beta.7',
      tag: 'v0.4.0-beta.7',
      prerelease: true,
      manifestUpdates: [],
    });
    const env = await plan(repo, { channel: 'beta', env: { GITHUB_RUN_NUMBER: '42' } });
    expect(env.tag).toBe('v0.4.0-beta.42');
    repo.tag('v0.4.0-beta.1');
    repo.tag('v0.4.0-beta.2', { at: 'HEAD~1' });
    const next = await plan(repo, { channel: 'beta' });
    // beta.2 is on another commit, beta.1 on HEAD: a re-run reuses the beta on HEAD
    expect(next.tag).toBe('v0.4.0-beta.1');
    repo.commit('fix: more');
    expect((await plan(repo, { channel: 'beta' })).tag).toBe('v0.4.0-beta.3');
  });

  it('ignores prerelease tags of many shapes, build metadata and malformed tags, and lists them', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    for (const t of ['v1.1.0-beta.1', 'v1.1.0-rc.1', 'v2.0.0-alpha', 'v1.1.0-next.3', 'v1.5.0+build.7']) {
      repo.commit(`chore: ${t}`);
      repo.tag(t);
    }
    repo.tag('v1.2');
    repo.tag('v01.2.3');
    repo.tag('release-1.0');
    repo.commit('feat: x');
    const p = await plan(repo, { env: {} });
    expect(p.previousTag).toBe('v1.0.0');
    expect(p.version).toBe('1.1.0');
    expect(p.ignoredTags.map((t) => t.name).sort()).toEqual(
      [
        'release-1.0',
        'v01.2.3',
        'v1.1.0-beta.1',
        'v1.1.0-next.3',
        'v1.1.0-rc.1',
        'v1.2',
        'v1.5.0+build.7',
        'v2.0.0-alpha',
      ].sort(),
    );
  });

  it('semver order, not lexical: v1.10.0 beats v1.9.0', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.9.0\n' } });
    repo.tag('v1.9.0');
    repo.commit('fix: a');
    repo.tag('v1.10.0');
    repo.commit('fix: b');
    repo.tag('v1.2.0'); // newer by date, lower by semver
    repo.commit('fix: c');
    expect((await plan(repo)).version).toBe('1.10.1');
  });

  it('tags on unmerged branches do not count', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.branch('hotfix');
    repo.commit('fix: on a branch');
    repo.tag('v1.0.1');
    repo.checkout('main');
    repo.commit('feat: main work');
    const p = await plan(repo);
    expect(p.previousTag).toBe('v1.0.0');
    expect(p.version).toBe('1.1.0');
    expect(p.ignoredTags).toContainEqual({ name: 'v1.0.1', reason: 'not reachable from HEAD' });
  });

  it('merge commits are looked through: the merged commits count, the merge subject does not', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.branch('topic');
    repo.commit('feat: from the branch', { 'a.txt': 'a' });
    repo.checkout('main');
    repo.commit('docs: on main', { 'b.txt': 'b' });
    repo.merge('topic', 'feat!: a merge subject that must not count');
    const p = await plan(repo);
    expect(p.bump).toBe('minor');
    expect(p.commits.total).toBe(2);
  });

  it('monorepo: reports the components changed since the last stable tag and writes one version to all manifests', async () => {
    const repo = TestRepo.create({
      files: {
        'agent/Cargo.toml': '[package]\nname = "agent"\nversion = "2.0.0"\n',
        'server/package.json': PKG('2.0.0'),
        'dashboard/package.json': PKG('2.0.0'),
      },
    });
    repo.tag('v2.0.0');
    repo.commit('fix(agent): x', { 'agent/src/main.rs': 'fn main() {}' });
    repo.commit('docs(dashboard): y', { 'dashboard/README.md': 'y' });
    const config = {
      components: [
        { name: 'agent', paths: ['agent'], manifests: ['agent/Cargo.toml'] },
        { name: 'server', paths: ['server/'], manifests: ['server/package.json'] },
        { name: 'dashboard', paths: ['./dashboard'], manifests: ['dashboard/package.json'] },
      ],
    };
    const p = await plan(repo, { config });
    expect(p.version).toBe('2.0.1');
    expect(p.components.map((c) => [c.name, c.changed])).toEqual([
      ['agent', true],
      ['server', false],
      ['dashboard', true],
    ]);
    expect(p.manifestUpdates.map((u) => u.path)).toEqual([
      'agent/Cargo.toml',
      'server/package.json',
      'dashboard/package.json',
    ]);
    // one component on its own tags and paths
    repo.tag('agent-v1.0.0', { at: 'HEAD~2' });
    const agent = await plan(repo, { config, component: 'agent' });
    expect(agent).toMatchObject({ previousTag: 'agent-v1.0.0', tag: 'agent-v1.0.1', commits: { total: 1 } });
    await expect(plan(repo, { config, component: 'nope' })).rejects.toThrow(/unknown component/);
  });

  it('first release: the version of the primary manifest (Cargo workspace)', async () => {
    const repo = TestRepo.create({
      files: {
        'Cargo.toml':
          '[workspace]\nmembers = ["agent"]\n\n[workspace.package]\nversion = "0.9.0" # product\n',
      },
    });
    repo.commit('feat: a');
    const p = await plan(repo);
    expect(p).toMatchObject({
      previousTag: null,
      version: '0.9.0',
      tag: 'v0.9.0',
      bump: null,
      released: true,
    });
    expect(p.reason).toMatch(/first release/);
    const beta = await plan(repo, { channel: 'beta', runNumber: 3 });
    expect(beta.version).toBe('0.9.0-beta.3');
  });

  it('nothing releasable: released false with the reason', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    expect(await plan(repo)).toMatchObject({
      released: false,
      reason: 'no commits since v1.0.0',
      version: null,
    });
    for (const m of ['docs: a', 'chore: b', 'ci: c', 'test: d', 'style: e']) repo.commit(m);
    const p = await plan(repo);
    expect(p.released).toBe(false);
    expect(p.reason).toMatch(/no releasable commits since v1.0.0 \(/);
    const beta = await plan(repo, { channel: 'beta', runNumber: 5 });
    expect(beta).toMatchObject({ released: true, version: '1.0.1-beta.5' });
    expect(beta.reason).toMatch(/test build of 1\.0\.1/);
  });

  it('breaking changes: 0.x bumps minor (major when configured), >= 1.0 bumps major', async () => {
    const zero = TestRepo.create({ files: { VERSION: '0.5.2\n' } });
    zero.tag('v0.5.2');
    zero.commit('fix: a\n\nBREAKING CHANGE: config file renamed');
    expect((await plan(zero)).version).toBe('0.6.0');
    expect((await plan(zero, { config: { breakingInZeroMajor: 'major' } })).version).toBe('1.0.0');
    const one = TestRepo.create({ files: { VERSION: '1.5.2\n' } });
    one.tag('v1.5.2');
    one.commit('refactor(api)!: drop v1');
    expect((await plan(one)).version).toBe('2.0.0');
  });

  it('release commit or [skip ci] at HEAD is a guard', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.commit('feat: x');
    repo.commit('chore(release): v1.1.0 [skip ci]');
    expect(await plan(repo)).toMatchObject({ released: false, reason: 'release commit at HEAD' });
    repo.commit('fix: y [skip ci]');
    expect((await plan(repo, { channel: 'beta' })).reason).toBe('release commit at HEAD');
  });

  it('reverts of unreleased commits cancel out', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    const feat = repo.commit('feat: risky', { 'x.txt': 'x' });
    repo.commit('fix: small', { 'y.txt': 'y' });
    repo.revert(feat);
    const p = await plan(repo);
    expect(p).toMatchObject({ version: '1.0.1', bump: 'patch', commits: { total: 3, releasable: 1 } });
  });

  it('bare tags with an empty prefix, and custom release rules', async () => {
    const repo = TestRepo.create({ files: { VERSION: '3.1.0\n' } });
    repo.tag('3.1.0');
    repo.tag('v9.9.9');
    repo.commit('build(deps): bump openssl');
    expect((await plan(repo, { tagPrefix: '' })).released).toBe(false);
    const p = await plan(repo, {
      tagPrefix: '',
      config: { releaseRules: [{ type: 'build', scope: 'deps', bump: 'patch' }] },
    });
    expect(p).toMatchObject({ previousTag: '3.1.0', tag: '3.1.1' });
  });

  it('works on a detached HEAD (as in CI)', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.commit('feat: x');
    repo.checkout(repo.head());
    expect((await plan(repo)).version).toBe('1.1.0');
  });

  it('non-UTF-8 and huge commit messages: analysed, with a warning', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.commitRaw(Buffer.concat([Buffer.from('feat: caf'), Buffer.from([0xe9, 0xff]), Buffer.from('\n')]));
    // a message that declares its encoding is re-encoded by git, not reported
    repo.commitRaw(Buffer.from('docs: na\xefve\n', 'latin1'), 'ISO-8859-1');
    repo.commitBytes(
      Buffer.from(`fix: big\n\n${'lorem ipsum\n'.repeat(40_000)}\nBREAKING CHANGE: at the very end\n`),
    );
    const lines: string[] = [];
    const sink = logger.sink;
    logger.sink = { write: (l) => lines.push(l) };
    try {
      const p = await plan(repo);
      expect(p.commits.total).toBe(3);
      expect(p.bump).toBe('major');
      const rp = await planFromRepo({ cwd: repo.dir, channel: 'stable', env: {} });
      expect(rp.commits.map((c) => c.subject)).toContain('naïve');
      expect(rp.commits.map((c) => c.subject)).toContain('caf\ufffd\ufffd');
    } finally {
      logger.sink = sink;
    }
    expect(lines.join('\n')).toMatch(/not valid UTF-8/);
    expect(lines.join('\n')).toMatch(/cut for analysis/);
  });
});

describe('planFromRepo: bad input is a coded error', () => {
  it('not a git repository', async () => {
    await expect(planFromRepo({ cwd: tempDir(), channel: 'stable' })).rejects.toMatchObject({
      code: 'E_NOT_A_GIT_REPO',
    });
  });
  it('a repository without commits', async () => {
    await expect(planFromRepo({ cwd: TestRepo.empty().dir, channel: 'stable' })).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
    });
  });
  it('a shallow clone without tags', async () => {
    const origin = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    origin.tag('v1.0.0');
    origin.commit('feat: a');
    origin.commit('fix: b');
    const dir = join(tempDir(), 'clone');
    execFileSync('git', ['clone', '-q', '--depth', '1', '--no-tags', `file://${origin.dir}`, dir]);
    await expect(planFromRepo({ cwd: dir, channel: 'stable' })).rejects.toMatchObject({
      code: 'E_SHALLOW_CLONE',
    });
  });
  it('a missing manifest, an unparsable version, manifests that disagree', async () => {
    const repo = TestRepo.create({
      files: { 'package.json': PKG('1.0.0'), 'Cargo.toml': '[package]\nversion = "1.0"\n' },
    });
    await expect(plan(repo, { config: { manifests: ['nope/Cargo.toml'] } })).rejects.toMatchObject({
      code: 'E_MANIFEST_MISSING',
    });
    await expect(plan(repo, { config: { manifests: ['Cargo.toml'] } })).rejects.toMatchObject({
      code: 'E_MANIFEST_UNPARSABLE',
    });
    repo.write('VERSION', '1.0.1\n');
    await expect(plan(repo, { config: { manifests: ['package.json', 'VERSION'] } })).rejects.toMatchObject({
      code: 'E_MANIFEST_DISAGREE',
    });
  });
  it('no tag and no manifest', async () => {
    const repo = TestRepo.create();
    await expect(plan(repo)).rejects.toMatchObject({ code: 'E_MANIFEST_MISSING' });
  });
});

describe('version config validation', () => {
  it('names every bad field', async () => {
    const { parseConfig } = await import('../config/load.ts');
    let message = '';
    try {
      parseConfig(
        {
          version: {
            manifests: [
              { path: 'v.h', type: 'regex', pattern: 'no group' },
              { path: 'x.h', type: 'regex' },
            ],
            breakingInZeroMajor: 'huge',
          },
          git: { tokenEnv: 'ghp_literalTokenValue!', commitMessage: 'release' },
        },
        'signet.config.yaml',
      );
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain(
      'version.manifests.0.pattern: must be a valid regular expression with a capture group',
    );
    expect(message).toContain('version.manifests.1.pattern: type regex needs a pattern');
    expect(message).toContain('version.breakingInZeroMajor');
    expect(message).toContain('git.tokenEnv: an environment variable NAME');
    expect(message).toContain('git.commitMessage: must contain {tag} or {version}');
  });
});
