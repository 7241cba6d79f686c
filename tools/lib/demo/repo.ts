/**
 * The demo repository the quick start plans and releases: a small RMM-style monorepo (agent in
 * Rust, dashboard in JS) with a stable tag, beta tags and conventional commits since, built with
 * real git in a folder of the caller's choosing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defaultRunner } from '../exec/runner.ts';

const IDENTITY = {
  GIT_AUTHOR_NAME: 'Demo Developer',
  GIT_AUTHOR_EMAIL: 'dev@example.invalid',
  GIT_COMMITTER_NAME: 'Demo Developer',
  GIT_COMMITTER_EMAIL: 'dev@example.invalid',
};

export const DEMO_CONFIG = `# signet.config.yaml of the demo repository
version:
  tagPrefix: v
  manifests: [agent/Cargo.toml, dashboard/package.json]
  components:
    - { name: agent, paths: [agent/] }
    - { name: dashboard, paths: [dashboard/] }
changelog:
  repoUrl: https://github.com/example-vendor/rmm-agent
`;

async function git(cwd: string, args: string[], date?: string): Promise<void> {
  const env: Record<string, string> = { ...IDENTITY };
  if (date) {
    env['GIT_AUTHOR_DATE'] = date;
    env['GIT_COMMITTER_DATE'] = date;
  }
  await defaultRunner.run('git', args, { cwd, env, label: 'git' });
}

function write(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

const cargo = (v: string) =>
  `# The Windows agent\n[package]\nname = "rmm-agent"\nversion = "${v}" # bumped by signet\nedition = "2021"\n\n[dependencies]\n`;
const pkg = (v: string) =>
  `${JSON.stringify({ name: 'rmm-dashboard', version: v, private: true }, null, 2)}\n`;

/** Creates the demo repository in `dir` (which must not exist or be empty) and returns it. */
export async function createDemoRepo(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await git(dir, ['init', '-q', '-b', 'main']);
  await git(dir, ['remote', 'add', 'origin', 'git@github.com:example-vendor/rmm-agent.git']);
  let day = 1;
  const commit = async (message: string, files: Record<string, string>) => {
    for (const [p, t] of Object.entries(files)) write(dir, p, t);
    await git(dir, ['add', '-A']);
    await git(dir, ['commit', '-q', '-m', message], `2026-10-${String(day++).padStart(2, '0')}T10:00:00Z`);
  };
  await commit('chore: initial import', {
    'signet.config.yaml': DEMO_CONFIG,
    'agent/Cargo.toml': cargo('0.3.0'),
    'dashboard/package.json': pkg('0.3.0'),
    'agent/src/main.rs': 'fn main() {}\n',
    'CHANGELOG.md': '# Changelog\n\n## 0.3.0\n\n- First public release.\n',
  });
  await git(dir, ['tag', '-a', 'v0.3.0', '-m', 'v0.3.0']);
  await commit('feat(agent): report disk health to the server', {
    'agent/src/disk.rs': 'pub fn health() {}\n',
  });
  await git(dir, ['tag', 'v0.4.0-beta.1']);
  await commit('fix(dashboard): keep the site filter after a refresh', {
    'dashboard/filter.js': 'export {};\n',
  });
  await commit('docs: explain enrollment keys', { 'docs/enrollment.md': '# Enrollment\n' });
  await commit('perf(agent): batch heartbeat uploads\n\nCuts the upload count by 10x on busy endpoints.', {
    'agent/src/heartbeat.rs': 'pub fn beat() {}\n',
  });
  await git(dir, ['tag', 'v0.4.0-beta.2']);
  await commit(
    'feat(agent)!: enroll with versioned site keys\n\nBREAKING CHANGE: agents now need a key version.',
    {
      'agent/src/enroll.rs': 'pub fn enroll() {}\n',
    },
  );
  return dir;
}
