import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RawCommit } from '../git/log.ts';
import { parseCommit } from '../version/conventional.ts';
import { resolveRepoLink, webUrlOfRemote } from './links.ts';
import { notesLean, renderNotes } from './render.ts';
import { hasVersionSection, updateChangelog } from './update.ts';

const FIXTURES = join(import.meta.dirname, '../../../test/fixtures/changelog');

/** Compares with a golden file; UPDATE_GOLDEN=1 rewrites it. */
function golden(name: string, actual: string): void {
  const path = join(FIXTURES, name);
  if (process.env['UPDATE_GOLDEN'] || !existsSync(path)) writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

let n = 0;
const RAW: RawCommit[] = [];
const c = (message: string, parents = 1) => {
  n++;
  const sha = `${n.toString(16).padStart(2, '0')}${'5a17e0'.repeat(7)}`.slice(0, 40);
  const raw = { sha, parents: Array.from({ length: parents }, () => 'f'.repeat(40)), message };
  RAW.push(raw);
  return parseCommit(raw);
};

// newest first, as git log gives them
const reverted = c('feat(updater): staged rollout');
const COMMITS = [
  c('docs: explain sites'),
  c(`Revert "feat(updater): staged rollout"\n\nThis reverts commit ${reverted.sha}.`),
  c('Merge pull request #9 from acme/topic\n\nfeat: merged subject is not a bullet', 2),
  c('fix(tray): icon <b>flicker</b> on HiDPI, closes #41'),
  c('perf: cache the site manifest'),
  c(
    'feat(installer)!: per-site MSI\n\nBREAKING CHANGE: the site code moves from the file name\nto the MSI property SITECODE.',
  ),
  c('feat: enrollment via QR code (#12)'),
  c('fix: retry enrollment'),
  reverted,
  c('chore(deps): bump openssl'),
  c('refactor(core): split transport'),
];
const PLAN = { version: '1.2.0', tag: 'v1.2.0', previousTag: 'v1.1.0' };

describe('renderNotes (golden)', () => {
  it('GitHub links from an ssh remote', () => {
    const repo = resolveRepoLink({}, 'git@github.com:acme/agent.git');
    golden('notes-github.golden.md', renderNotes(PLAN, COMMITS, { repo, date: '2026-02-01' }).markdown);
  });
  it('Gitea links from an https remote with a port, and release rules that add a section', () => {
    const repo = resolveRepoLink({}, 'https://git.example.com:3000/acme/agent.git');
    expect(repo?.kind).toBe('gitea');
    const notes = renderNotes(PLAN, COMMITS, {
      repo,
      date: '2026-02-01',
      releaseRules: [{ type: 'refactor', bump: 'patch' }],
    });
    golden('notes-gitea.golden.md', notes.markdown);
  });
  it('no remote: no links; a first release links the tag', () => {
    golden('notes-plain.golden.md', renderNotes(PLAN, COMMITS, { date: '2026-02-01' }).markdown);
    const repo = resolveRepoLink({ repoUrl: 'https://github.com/acme/agent' }, undefined);
    const first = renderNotes({ version: '0.1.0', tag: 'v0.1.0', previousTag: null }, [c('chore: init')], {
      repo,
      date: '2026-02-01',
    });
    expect(first.markdown).toBe(
      '## [0.1.0](https://github.com/acme/agent/releases/tag/v0.1.0) (2026-02-01)\n\nInitial release.\n',
    );
  });
});

describe('notesLean', () => {
  it('strips only commits the notes never show: same notes, fewer kept texts', () => {
    const rules = [{ type: 'refactor', bump: 'patch' as const }];
    const byRaw = new Map(RAW.map((r) => [r.sha, r]));
    const raws = COMMITS.map((x) => byRaw.get(x.sha)!);
    for (const releaseRules of [[], rules]) {
      const lean = raws.map((r) => parseCommit(r, { lean: notesLean({ releaseRules }) }));
      const opts = {
        date: '2026-02-01',
        releaseRules,
        repo: resolveRepoLink({}, 'https://github.com/acme/agent'),
      };
      expect(renderNotes(PLAN, lean, opts).markdown).toBe(renderNotes(PLAN, COMMITS, opts).markdown);
      expect(lean.filter((x) => x.subject === '').map((x) => x.type)).toEqual(
        releaseRules.length ? ['docs', null, 'chore'] : ['docs', null, 'chore', 'refactor'],
      );
    }
  });
});

describe('updateChangelog (golden)', () => {
  const section = renderNotes(PLAN, COMMITS, {
    repo: resolveRepoLink({}, 'https://github.com/acme/agent'),
    date: '2026-02-01',
  }).markdown;
  // Inline, not a fixture file: a formatter must not normalise the bytes this test protects.
  const existing = [
    '# Changelog',
    '',
    'All notable changes to the agent are documented here.',
    'Hand-written lines   with odd   spacing stay as they are.',
    '',
    '## [1.1.0](https://github.com/acme/agent/compare/v1.0.0...v1.1.0) (2026-01-10)',
    '',
    '### Features',
    '',
    '* **tray:** show the session owner ([aaaaaaa](https://github.com/acme/agent/commit/aaaaaaa))',
    '',
    '## 1.0.0 (2025-12-01)',
    '',
    'Initial release.',
    '',
  ].join('\n');

  it('inserts at the top, under the heading and introduction, leaving every other byte', () => {
    const out = updateChangelog(existing, section, '1.2.0');
    expect(out.changed).toBe(true);
    golden('existing-updated.golden.md', out.text);
    const at = out.text.indexOf(section);
    expect(out.text.slice(0, at) + out.text.slice(at + section.length + 1)).toBe(existing);
  });
  it('is idempotent', () => {
    const once = updateChangelog(existing, section, '1.2.0').text;
    expect(updateChangelog(once, section, '1.2.0')).toEqual({ text: once, changed: false });
    expect(hasVersionSection(existing, '1.0.0')).toBe(true);
    expect(hasVersionSection(existing, '1.0.0-beta.1')).toBe(false);
    expect(hasVersionSection(existing, '1.1')).toBe(false);
  });
  it('creates the file, appends under a lone heading, keeps CRLF', () => {
    expect(updateChangelog(null, '## 1.0.0 (d)\n\nx\n', '1.0.0').text).toBe(
      '# Changelog\n\n## 1.0.0 (d)\n\nx\n',
    );
    expect(updateChangelog('# History\n', '## 1.0.0 (d)\n\nx\n', '1.0.0').text).toBe(
      '# History\n\n## 1.0.0 (d)\n\nx\n',
    );
    const crlf = '# Changelog\r\n\r\n## 0.9.0\r\n\r\nold\r\n';
    expect(updateChangelog(crlf, '## 1.0.0 (d)\n\nx\n', '1.0.0').text).toBe(
      '# Changelog\r\n\r\n## 1.0.0 (d)\r\n\r\nx\r\n\r\n## 0.9.0\r\n\r\nold\r\n',
    );
  });
});

describe('remote URLs', () => {
  it.each([
    ['https://github.com/acme/agent.git', 'https://github.com/acme/agent', 'github'],
    [
      'https://x-access-token:ghs_secret@github.com/acme/agent.git',
      'https://github.com/acme/agent',
      'github',
    ],
    ['git@github.com:acme/agent.git', 'https://github.com/acme/agent', 'github'],
    ['ssh://git@github.com/acme/agent.git', 'https://github.com/acme/agent', 'github'],
    ['ssh://git@gitea.example.com:2222/acme/agent.git', 'https://gitea.example.com/acme/agent', 'gitea'],
    ['https://gitea.example.com/sub/acme/agent', 'https://gitea.example.com/sub/acme/agent', 'gitea'],
    ['gitea@git.example.com:acme/agent.git', 'https://git.example.com/acme/agent', 'gitea'],
  ])('%s → %s (%s)', (remote, url, kind) => {
    const r = resolveRepoLink({}, remote);
    expect(r?.url).toBe(url);
    expect(r?.kind).toBe(kind);
  });
  it('local paths have no web URL; config wins over the remote', () => {
    expect(webUrlOfRemote('/srv/git/agent.git')).toBeUndefined();
    expect(webUrlOfRemote('file:///srv/git/agent.git')).toBeUndefined();
    expect(webUrlOfRemote('C:/git/agent')).toBeUndefined();
    expect(
      resolveRepoLink(
        { repoUrl: 'https://code.acme.io/acme/agent/', host: 'gitea' },
        'git@github.com:a/b.git',
      ),
    ).toEqual({
      url: 'https://code.acme.io/acme/agent',
      host: 'code.acme.io',
      kind: 'gitea',
    });
  });
});
