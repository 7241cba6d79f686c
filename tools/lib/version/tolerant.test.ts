/**
 * Planning on the histories real repositories have: manifests without a version or with a
 * placeholder, stale lock files, mixed `v`/bare tags, `[skip ci]` in a squash body, huge numbers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { parseConfig } from '../config/load.ts';
import { applyRelease } from '../release/apply.ts';
import { notesFromRepo } from '../release/notes.ts';
import { planFromRepo } from './repo.ts';

const plan = async (repo: TestRepo, over: Partial<Parameters<typeof planFromRepo>[0]> = {}) =>
  (await planFromRepo({ cwd: repo.dir, channel: 'stable', env: {}, ...over })).plan;
const lock = (v: string) =>
  `${JSON.stringify({ name: 'a', version: v, lockfileVersion: 3, packages: { '': { name: 'a', version: v } } }, null, 2)}\n`;
const config = (version: Record<string, unknown> = {}) => parseConfig({ version }, 'test');

describe('manifest problems with a stable tag are warnings', () => {
  it('package.json without a version: planned from the tag; a stable release writes the version', async () => {
    const repo = TestRepo.create({ files: { 'package.json': '{\n  "name": "a",\n  "private": true\n}\n' } });
    repo.tag('v2.3.0');
    repo.commit('feat: x');
    const p = await plan(repo);
    expect(p).toMatchObject({ version: '2.4.0', tag: 'v2.4.0', released: true });
    expect(p.warnings).toEqual(['package.json: no version field']);
    expect(p.manifestUpdates).toEqual([{ path: 'package.json', type: 'npm', from: null, to: '2.4.0' }]);
    await applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', date: '2026-01-01', env: {} });
    expect(readFileSync(join(repo.dir, 'package.json'), 'utf8')).toBe(
      '{\n  "name": "a",\n  "version": "2.4.0",\n  "private": true\n}\n',
    );
  });
  it('a placeholder and a stale lock: planned from the tag; the release sets every file', async () => {
    const repo = TestRepo.create({
      files: {
        'package.json': '{\n  "name": "a",\n  "version": "0.0.0-development"\n}\n',
        'package-lock.json': lock('1.0.0'),
      },
    });
    repo.tag('v1.4.0');
    repo.commit('fix: y');
    const p = await plan(repo);
    expect(p.version).toBe('1.4.1');
    expect(p.warnings[0]).toMatch(/disagree.*package.json=0.0.0-development.*package-lock.json=1.0.0/);
    await applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', date: '2026-01-01', env: {} });
    const l = JSON.parse(readFileSync(join(repo.dir, 'package-lock.json'), 'utf8'));
    expect([l.version, l.packages[''].version]).toEqual(['1.4.1', '1.4.1']);
  });
  it('a Cargo workspace: only the members that inherit its version move in Cargo.lock', async () => {
    const repo = TestRepo.create({
      files: {
        'Cargo.toml':
          '[workspace]\nmembers = ["agent", "helper"]\n\n[workspace.package]\nversion = "0.3.0"\n',
        'agent/Cargo.toml': '[package]\nname = "agent"\nversion.workspace = true\n',
        'helper/Cargo.toml': '[package]\nname = "helper"\nversion = "0.3.0"\n',
        'Cargo.lock':
          'version = 4\n\n[[package]]\nname = "agent"\nversion = "0.2.0"\n\n[[package]]\nname = "helper"\nversion = "0.3.0"\n',
      },
    });
    repo.tag('v0.3.0');
    repo.commit('feat: z');
    await applyRelease({ cwd: repo.dir, config: config(), channel: 'stable', date: '2026-01-01', env: {} });
    expect(readFileSync(join(repo.dir, 'Cargo.lock'), 'utf8')).toBe(
      'version = 4\n\n[[package]]\nname = "agent"\nversion = "0.4.0"\n\n[[package]]\nname = "helper"\nversion = "0.3.0"\n',
    );
  });
  it('without a tag: a placeholder or no version is a first release at 1.0.0 or version.initialVersion', async () => {
    const repo = TestRepo.create({
      files: { 'package.json': '{\n  "name": "a",\n  "version": "0.0.0-development"\n}\n' },
    });
    repo.commit('feat: first');
    expect(await plan(repo)).toMatchObject({ version: '1.0.0', tag: 'v1.0.0', released: true });
    expect((await plan(repo, { config: { initialVersion: '0.1.0' } })).version).toBe('0.1.0');
    repo.write('package.json', '{"name": "a"}\n');
    repo.commit('chore: drop version');
    const p = await plan(repo);
    expect(p.version).toBe('1.0.0');
    expect(p.reason).toContain('package.json has no version: initial version 1.0.0');
    expect(() => config({ initialVersion: '1.0' })).toThrow(/version.initialVersion/);
  });
  it('without a tag an unreadable primary manifest still stops the plan', async () => {
    const repo = TestRepo.create({ files: { 'package.json': '{"name": "a", "version": "latest"}\n' } });
    await expect(plan(repo)).rejects.toMatchObject({ code: 'E_MANIFEST_UNPARSABLE' });
  });
});

describe('mixed tag forms', () => {
  it('with the default prefix bare X.Y.Z tags count; the new tag follows the last one', async () => {
    const repo = TestRepo.create({ files: { VERSION: '8.0.0\n' } });
    repo.tag('v8.0.0');
    repo.commit('fix: a');
    repo.tag('8.0.1');
    repo.commit('fix: b');
    const p = await plan(repo);
    expect(p).toMatchObject({ previousTag: '8.0.1', version: '8.0.2', tag: '8.0.2' });
    repo.tag('v8.0.2');
    repo.commit('feat: c');
    expect(await plan(repo)).toMatchObject({ previousTag: 'v8.0.2', tag: 'v8.1.0' });
    const beta = await plan(repo, { channel: 'beta', runNumber: 3 });
    expect(beta.tag).toBe('v8.1.0-beta.3');
  });
  it('an explicit prefix and component prefixes stay strict', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.commit('fix: a');
    repo.tag('1.0.1');
    repo.commit('fix: b');
    expect(await plan(repo, { tagPrefix: 'v' })).toMatchObject({ previousTag: 'v1.0.0', tag: 'v1.0.1' });
    const comp = { components: [{ name: 'agent', paths: ['.'], manifests: [], tagPrefix: 'v' }] };
    expect(await plan(repo, { config: comp, component: 'agent' })).toMatchObject({ previousTag: 'v1.0.0' });
  });
  it('`version.tagPrefix: v` set in the config is strict; left unset, bare tags count', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.2.2\n' } });
    repo.tag('v1.2.2');
    repo.commit('fix: a');
    repo.tag('1.2.3');
    repo.commit('fix: b');
    const explicit = config({ tagPrefix: 'v' });
    expect(explicit.version.tagPrefix).toBe('v');
    expect(await plan(repo, { config: explicit.version })).toMatchObject({
      previousTag: 'v1.2.2',
      version: '1.2.3',
      tag: 'v1.2.3',
    });
    const unset = config();
    expect(unset.version.tagPrefix).toBeUndefined();
    expect(await plan(repo, { config: unset.version })).toMatchObject({
      previousTag: '1.2.3',
      version: '1.2.4',
      tag: '1.2.4',
    });
  });
  it('release notes for a version: the default prefix finds a bare tag, an explicit one does not', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.2.2\n' } });
    repo.tag('v1.2.2');
    repo.commit('fix: bare one');
    repo.tag('1.2.3');
    const notes = await notesFromRepo({ cwd: repo.dir, config: config(), version: '1.2.3', env: {} });
    expect(notes.range).toBe('v1.2.2..1.2.3');
    await expect(
      notesFromRepo({ cwd: repo.dir, config: config({ tagPrefix: 'v' }), version: '1.2.3', env: {} }),
    ).rejects.toMatchObject({ code: 'E_INPUT_INVALID' });
  });
});

describe('the release-commit guard', () => {
  it('[skip ci] in the body of a squash merge does not cancel the release; in the subject it does', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.commit('feat: squash (#12)\n\n* feat: a\n* docs: typo [skip ci]\n');
    expect(await plan(repo)).toMatchObject({ released: true, version: '1.1.0' });
    repo.commit('fix: b [skip release]');
    expect(await plan(repo)).toMatchObject({ released: false, reason: 'release commit at HEAD' });
  });
  it('with a configured git.commitMessage its subject is the release commit; chore(release) no longer is', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.commit('feat: a');
    const commitMessage = 'Release {tag}\n\nPrepared by Signet';
    repo.commit('Release v1.1.0\n\nPrepared by Signet');
    const custom = { commitMessage, lean: true };
    expect(await plan(repo, custom)).toMatchObject({ released: false, reason: 'release commit at HEAD' });
    expect(await plan(repo)).toMatchObject({ released: true, version: '1.1.0' });
    repo.commit('chore(release): v1.1.0');
    expect(await plan(repo)).toMatchObject({ released: false, reason: 'release commit at HEAD' });
    expect(await plan(repo, custom)).toMatchObject({ released: true, version: '1.1.0' });
  });
  it('the release a custom commitMessage made is recognised by the next run', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.commit('feat: a');
    const cfg = parseConfig({ git: { commitMessage: 'build: release {version}' } }, 'test');
    const r = await applyRelease({
      cwd: repo.dir,
      config: cfg,
      channel: 'stable',
      date: '2026-01-01',
      env: {},
    });
    expect(r.plan.tag).toBe('v1.1.0');
    expect(repo.git('log', '-1', '--format=%s').trim()).toBe('build: release 1.1.0');
    const again = await plan(repo, { commitMessage: cfg.git.commitMessage });
    expect(again).toMatchObject({ released: false, reason: 'release commit at HEAD' });
  });
});

describe('version numbers at or above 2^53', () => {
  it('such a tag is ignored with a reason; a bump past 2^53-1 is a coded error, never null', async () => {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.tag('v9007199254740992.0.0');
    repo.tag('v9007199254740993.0.0-beta.1');
    repo.commit('feat: a');
    const p = await plan(repo);
    expect(p).toMatchObject({ previousTag: 'v1.0.0', version: '1.1.0' });
    expect(p.ignoredTags).toContainEqual({
      name: 'v9007199254740992.0.0',
      reason: 'version number above 2^53-1',
    });
    expect((await plan(repo, { channel: 'beta', runNumber: 1 })).tag).toBe('v1.1.0-beta.1');
    repo.tag('v9007199254740991.0.0');
    repo.commit('feat!: b');
    await expect(plan(repo, { config: { breakingInZeroMajor: 'major' } })).rejects.toMatchObject({
      code: 'E_VERSION_OVERFLOW',
    });
    await expect(plan(repo, { channel: 'beta', runNumber: 1 })).rejects.toMatchObject({
      code: 'E_VERSION_OVERFLOW',
    });
  });
});
