import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';

const BIN = join(import.meta.dirname, '../bin.ts');

function signet(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, '--cwd', cwd, ...args], {
    encoding: 'utf8',
    env: { ...process.env, GITHUB_RUN_NUMBER: '', NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function repo(): TestRepo {
  const r = TestRepo.create({ files: { 'package.json': '{\n  "name": "a",\n  "version": "0.3.0"\n}\n' } });
  r.tag('v0.3.0');
  r.tag('v0.4.0-beta.1');
  r.commit('feat(agent): remote shell', { 'a.txt': 'a' });
  r.commit('fix: crash on wake', { 'b.txt': 'b' });
  r.git('remote', 'add', 'origin', 'git@github.com:acme/agent.git');
  return r;
}

describe('signet version / changelog / release (CLI)', () => {
  it('version --json prints the plan in the documented shape; the human form lists ignored tags with --verbose', () => {
    const r = repo();
    const out = signet(r.dir, 'version', '--json');
    expect(out.code).toBe(0);
    const plan = JSON.parse(out.stdout);
    expect(Object.keys(plan)).toEqual([
      'channel',
      'previousTag',
      'previousVersion',
      'version',
      'tag',
      'bump',
      'released',
      'prerelease',
      'reason',
      'commits',
      'components',
      'manifestUpdates',
      'ignoredTags',
      'warnings',
    ]);
    expect(plan).toMatchObject({ version: '0.4.0', tag: 'v0.4.0', commits: { total: 2, releasable: 2 } });
    const beta = signet(r.dir, 'version', '--channel', 'beta', '--run-number', '31', '--verbose');
    expect(beta.code).toBe(0);
    expect(beta.stdout).toContain('beta: v0.3.0 → v0.4.0-beta.31 (minor)');
    expect(beta.stdout).toContain('v0.4.0-beta.1  (prerelease)');
    expect(signet(r.dir, 'version', '--tag-prefix', '', '--json').stdout).toContain('"previousTag": null');
  });

  it('release --dry-run shows the diff and changes nothing; release writes; changelog --version re-renders', () => {
    const r = repo();
    const head = r.head();
    const dry = signet(r.dir, 'release', '--dry-run', '--date', '2026-04-01');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('+++ b/CHANGELOG.md');
    expect(dry.stdout).toContain('-  "version": "0.3.0"\n+  "version": "0.4.0"');
    expect(r.head()).toBe(head);
    expect(r.status()).toBe('');
    const done = signet(r.dir, 'release', '--json', '--date', '2026-04-01');
    expect(done.code).toBe(0);
    const result = JSON.parse(done.stdout);
    expect(result).toMatchObject({ tag: 'v0.4.0', pushed: false, dryRun: false });
    expect(r.rev('v0.4.0')).toBe(result.commit);
    const notes = signet(r.dir, 'changelog', '--version', '0.4.0', '--date', '2026-04-01');
    expect(notes.code).toBe(0);
    expect(notes.stdout).toBe(
      readFileSync(join(r.dir, 'CHANGELOG.md'), 'utf8').replace(/^# Changelog\n\n/, ''),
    );
    const all = signet(r.dir, 'changelog', '--all', '--json');
    expect(JSON.parse(all.stdout)).toMatchObject({ version: 'Unreleased', commits: 4 });
  });

  it('exit codes: usage errors are 2, environment problems 4, with the coded error on stdout for --json', () => {
    const r = repo();
    const bad = signet(r.dir, 'version', '--run-number', 'seven', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error.code).toBe('E_INPUT_INVALID');
    writeFileSync(
      join(r.dir, 'signet.config.yaml'),
      'version:\n  tagPrefx: v\n  breakingInZeroMajor: huge\n',
    );
    const cfg = signet(r.dir, 'version');
    expect(cfg.code).toBe(2);
    expect(cfg.stderr).toContain('E_CONFIG_INVALID');
    expect(cfg.stderr).toContain('version.breakingInZeroMajor');
    expect(cfg.stderr).toContain('tagPrefx');
    const notRepo = signet(join(r.dir, '..'), 'version', '--json');
    expect(notRepo.code).toBe(2);
    expect(JSON.parse(notRepo.stdout).error.code).toBe('E_NOT_A_GIT_REPO');
    const force = signet(r.dir, 'release', '--force', '--config', '/dev/null');
    expect(force.code).toBe(2);
    const shallow = join(tempDir(), 'shallow');
    spawnSync('git', ['clone', '-q', '--depth', '1', '--no-tags', `file://${r.dir}`, shallow]);
    const sh = signet(shallow, 'version', '--json');
    expect(sh.code).toBe(4);
    expect(JSON.parse(sh.stdout).error).toMatchObject({ code: 'E_SHALLOW_CLONE' });
    expect(JSON.parse(sh.stdout).error.hint).toContain('fetch-depth: 0');
  });
});
