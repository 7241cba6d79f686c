/**
 * Each bundled action run like a runner runs it (INPUT_*, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, a
 * temporary workspace), the committed dist checked against a fresh build, and each action.yml
 * checked against the typed settings its main.ts validates.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { staleDist } from '../scripts/build.ts';
import { FakeForge } from '../test/helpers/fake-forge.ts';
import { runDist } from '../test/helpers/run-dist.ts';
import { tempDir } from '../test/helpers/tmp.ts';
import { SETTINGS } from '../tools/action/settings.ts';

const root = join(import.meta.dirname, '..');
const CANARY = 'canary-forge-token-3c9d2e71b5';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
}

function repo(): string {
  const dir = tempDir('signet-action-repo-');
  git(dir, 'init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'README.md'), 'agent\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'feat: first');
  git(dir, 'tag', 'v0.1.0');
  writeFileSync(join(dir, 'b.txt'), 'b\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'feat: add the b command');
  writeFileSync(join(dir, 'c.txt'), 'c\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'fix: c no longer crashes');
  return dir;
}

describe('action metadata', () => {
  it('the committed dist is what `npm run build` makes from the sources', async () => {
    expect(await staleDist()).toEqual([]);
  });

  for (const [name, schema] of Object.entries(SETTINGS)) {
    it(`${name}: action.yml and the typed settings agree; node24; every input described`, () => {
      const meta = YAML.parse(readFileSync(join(root, 'actions', name, 'action.yml'), 'utf8'));
      expect(meta.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
      expect(Object.keys(meta.inputs).sort()).toEqual(Object.keys(schema.shape).sort());
      for (const [k, v] of Object.entries<{ description?: string }>(meta.inputs))
        expect(v.description, k).toMatch(/\w{3}/);
      for (const [k, v] of Object.entries<{ description?: string }>(meta.outputs))
        expect(v.description, k).toMatch(/\w{3}/);
      expect(existsSync(join(root, 'actions', name, 'dist', 'index.js'))).toBe(true);
    });
  }
});

describe('version and changelog actions', () => {
  it('version (plan only) sets every output and a summary', async () => {
    const ws = repo();
    const r = await runDist('version', { channel: 'stable', apply: 'false' }, { workspace: ws });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.outputs).toMatchObject({
      version: '0.2.0',
      tag: 'v0.2.0',
      released: 'true',
      prerelease: 'false',
      'previous-tag': 'v0.1.0',
      bump: 'minor',
    });
    const meta = YAML.parse(readFileSync(join(root, 'actions', 'version', 'action.yml'), 'utf8'));
    expect(Object.keys(r.outputs).sort()).toEqual(Object.keys(meta.outputs).sort());
    expect(r.summary).toContain('| tag | v0.2.0 |');
    expect(git(ws, 'tag', '--list')).toBe('v0.1.0');
  });

  it('version applies a beta tag with the run number', async () => {
    const ws = repo();
    const r = await runDist('version', { channel: 'beta', push: 'false' }, { workspace: ws });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.outputs['prerelease']).toBe('true');
    expect(r.outputs['version']).toMatch(/^0\.2\.0-beta\.7$/);
    expect(git(ws, 'tag', '--list', 'v0.2.0-*')).toBe(`v${r.outputs['version']}`);
  });

  it('changelog gives the notes as an output and a file', async () => {
    const ws = repo();
    const r = await runDist('changelog', {}, { workspace: ws });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.outputs['notes']).toContain('add the b command');
    expect(r.outputs['notes']).toContain('c no longer crashes');
    expect(readFileSync(r.outputs['notes-file']!, 'utf8')).toBe(r.outputs['notes']);
  });

  it('a bad input fails the step with the input named, exit code 2', async () => {
    const r = await runDist('version', { channel: 'nightly', 'run-number': 'x' }, { workspace: repo() });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(
      /::error::\[E_INPUT_INVALID\].*input channel: expected stable or beta.*input run-number/,
    );
  });
});

describe('publish action', () => {
  let fake: FakeForge;
  beforeAll(async () => {
    fake = await FakeForge.start({ flavor: 'gitea', token: CANARY });
  });
  afterAll(async () => {
    fake.assertClean();
    await fake.close();
  });

  it('publishes to Gitea act_runner (auto-detected), masks the token first, writes outputs and summary', async () => {
    const ws = tempDir('signet-action-ws-');
    writeFileSync(join(ws, 'tool.zip'), 'zip');
    writeFileSync(join(ws, 'NOTES.md'), '- the b command');
    const r = await runDist(
      'publish',
      { tag: 'v0.2.0', files: 'tool.zip', token: CANARY, 'notes-file': 'NOTES.md' },
      { workspace: ws, env: { GITEA_ACTIONS: 'true', GITHUB_SERVER_URL: fake.apiUrl } },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const maskAt = lines.indexOf(`::add-mask::${CANARY}`);
    expect(maskAt).toBe(0); // masked before anything else was printed
    const leaked = [
      ...lines.filter((l) => !l.startsWith('::add-mask::')),
      r.stderr,
      r.summary,
      JSON.stringify(r.outputs),
    ].filter((t) => t.includes(CANARY));
    expect(leaked.map((t) => t.replaceAll(CANARY, '<<CANARY>>'))).toEqual([]);
    const rel = fake.releases().find((x) => x.tag === 'v0.2.0')!;
    expect(rel.draft).toBe(false);
    expect(rel.body).toContain('the b command');
    expect(r.outputs['url']).toContain('/acme/agent/releases/tag/v0.2.0');
    expect(JSON.parse(r.outputs['assets']!).map((a: { name: string }) => a.name)).toEqual([
      'tool.zip',
      'SHA256SUMS',
    ]);
    expect(r.summary).toMatch(/\| SHA256SUMS \| \d+ \| [0-9a-f]{64} \| upload \|/);
  });

  it('publishes to GitHub (Enterprise-style API URL from GITHUB_API_URL) through the bundled Octokit client', async () => {
    const gh = await FakeForge.start({ flavor: 'github', token: CANARY });
    try {
      const ws = tempDir('signet-action-ws-');
      writeFileSync(join(ws, 'tool.zip'), 'zip-for-github');
      const r = await runDist(
        'publish',
        { tag: 'v0.4.0-beta.2', channel: 'beta', files: 'tool.zip', token: CANARY },
        { workspace: ws, env: { GITHUB_API_URL: gh.apiUrl } },
      );
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const rel = gh.releases().find((x) => x.tag === 'v0.4.0-beta.2')!;
      expect(rel).toMatchObject({ draft: false, prerelease: true });
      expect(rel.assets.map((a) => a.name).sort()).toEqual(['SHA256SUMS', 'tool.zip']);
      expect(r.outputs['prerelease']).toBe('true');
      expect(
        r.stdout
          .split('\n')
          .filter((l) => !l.startsWith('::add-mask::'))
          .join('\n'),
      ).not.toContain(CANARY);
      gh.assertClean();
    } finally {
      await gh.close();
    }
  });

  it('a wrong token fails with E_FORGE_AUTH and the scope, without printing the token', async () => {
    const ws = tempDir('signet-action-ws-');
    writeFileSync(join(ws, 'tool.zip'), 'zip');
    const wrong = `${CANARY}-wrong`;
    const r = await runDist(
      'publish',
      { tag: 'v0.3.0', files: 'tool.zip', token: wrong, to: 'gitea', 'api-url': fake.apiUrl },
      { workspace: ws },
    );
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/::error::\[E_FORGE_AUTH\].*write:repository/);
    expect(
      r.stdout
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n'),
    ).not.toContain(CANARY);
  });

  it('attach: "true" adds a file to the published release and touches nothing else (no prune, same body)', async () => {
    const ws = tempDir('signet-action-ws-');
    writeFileSync(join(ws, 'tool.zip'), 'zip-v0.5');
    writeFileSync(join(ws, 'extra.zip'), 'extra');
    const env = { GITEA_ACTIONS: 'true', GITHUB_SERVER_URL: fake.apiUrl };
    const first = await runDist(
      'publish',
      { tag: 'v0.5.0', files: 'tool.zip', token: CANARY },
      { workspace: ws, env },
    );
    expect(first.code, first.stdout).toBe(0);
    const before = fake.releases().find((x) => x.tag === 'v0.5.0')!;
    const r = await runDist(
      'publish',
      { tag: 'v0.5.0', files: 'extra.zip', token: CANARY, attach: 'true' },
      { workspace: ws, env },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const after = fake.releases().find((x) => x.tag === 'v0.5.0')!;
    expect(after.assets.map((a) => a.name).sort()).toEqual(['SHA256SUMS', 'extra.zip', 'tool.zip']);
    expect(after.body).toBe(before.body);
    expect(r.summary).toContain('Attached to v0.5.0');
  });

  it('publishes to dir: and refuses a prerelease tag on the stable channel', async () => {
    const ws = tempDir('signet-action-ws-');
    writeFileSync(join(ws, 'tool.zip'), 'zip');
    const ok = await runDist(
      'publish',
      { tag: 'v1.0.0-beta.1', channel: 'beta', files: '*.zip', to: 'dir:out' },
      { workspace: ws },
    );
    expect(ok.code, ok.stdout).toBe(0);
    expect(
      JSON.parse(readFileSync(join(ws, 'out', 'v1.0.0-beta.1', 'release.json'), 'utf8')).prerelease,
    ).toBe(true);
    const bad = await runDist(
      'publish',
      { tag: 'v1.0.0-beta.1', files: '*.zip', to: 'dir:out' },
      { workspace: ws },
    );
    expect(bad.code).toBe(2);
  });
});
