import { describe, expect, it } from 'vitest';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { parseConfig } from '../config/load.ts';
import { notesFromRepo } from './notes.ts';

describe('notesFromRepo', () => {
  const config = parseConfig({ changelog: { repoUrl: 'https://github.com/acme/agent' } }, 'test');
  const DATE = '2026-07-01';
  function history(): TestRepo {
    const repo = TestRepo.create({ files: { VERSION: '1.0.0\n' } });
    repo.tag('v1.0.0');
    repo.commit('feat: one');
    repo.tag('v1.1.0', { annotated: true });
    repo.commit('fix: two');
    repo.tag('v1.2.0-beta.1');
    repo.commit('perf: three');
    repo.tag('v1.2.0');
    repo.commit('feat: four');
    return repo;
  }

  it('notes of a released version cover the range from the stable tag before it', async () => {
    const repo = history();
    const r = await notesFromRepo({ cwd: repo.dir, config, version: '1.2.0', date: DATE, env: {} });
    expect(r.range).toBe('v1.1.0..v1.2.0');
    expect(r.commits).toBe(2);
    expect(r.notes.heading).toBe(
      '## [1.2.0](https://github.com/acme/agent/compare/v1.1.0...v1.2.0) (2026-07-01)',
    );
    expect(r.notes.body).toMatch(/### Bug fixes\n\n\* two .*\n\n### Performance\n\n\* three /);
    const first = await notesFromRepo({ cwd: repo.dir, config, version: 'v1.0.0', date: DATE, env: {} });
    expect(first.notes.body).toBe('Initial release.\n');
    await expect(notesFromRepo({ cwd: repo.dir, config, version: '1.3.0', env: {} })).rejects.toThrow(
      /there is no tag v1\.3\.0/,
    );
  });

  it('the planned version by default, a range, or the whole history', async () => {
    const repo = history();
    const planned = await notesFromRepo({ cwd: repo.dir, config, date: DATE, env: {} });
    expect(planned.plan?.version).toBe('1.3.0');
    expect(planned.notes.version).toBe('1.3.0');
    expect(planned.notes.body).toContain('four');
    const range = await notesFromRepo({
      cwd: repo.dir,
      config,
      from: 'v1.0.0',
      to: 'v1.2.0',
      date: DATE,
      env: {},
    });
    expect(range).toMatchObject({ commits: 3, range: 'v1.0.0..v1.2.0' });
    expect(range.notes.version).toBe('Unreleased');
    const all = await notesFromRepo({ cwd: repo.dir, config, all: true, date: DATE, env: {} });
    expect(all.commits).toBe(5);
  });
});
