/** Config discovery through the real CLI: the nearest config up to the git root; --config wins. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestRepo } from '../../test/helpers/git-repo.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { findConfig } from '../lib/config/load.ts';

const BIN = join(import.meta.dirname, 'bin.ts');

function signet(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GITHUB_RUN_NUMBER: '', NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function previousTag(r: { code: number | null; stdout: string; stderr: string }): string {
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { previousTag: string }).previousTag;
}

function repo(): TestRepo {
  const r = TestRepo.create({
    files: {
      'package.json': '{\n  "name": "a",\n  "version": "1.0.0"\n}\n',
      'signet.config.yaml': 'version:\n  tagPrefix: rel-\n',
      'agent/src/main.c': 'int main(void) { return 0; }\n',
      'other.yaml': 'version:\n  tagPrefix: v\n',
    },
  });
  r.tag('rel-1.0.0');
  r.tag('v0.9.0');
  r.commit('feat: more', { 'agent/src/b.c': '/* b */\n' });
  return r;
}

describe('config discovery', () => {
  it('a command run in a subfolder finds the config at the git root (cwd and --cwd)', () => {
    const r = repo();
    const sub = join(r.dir, 'agent', 'src');
    expect(previousTag(signet(sub, 'version', '--json'))).toBe('rel-1.0.0');
    expect(previousTag(signet(tempDir(), '--cwd', sub, 'version', '--json'))).toBe('rel-1.0.0');
  });

  it('--config wins over discovery (relative to --cwd)', () => {
    const r = repo();
    const sub = join(r.dir, 'agent', 'src');
    expect(previousTag(signet(sub, 'version', '--config', '../../other.yaml', '--json'))).toBe('v0.9.0');
    expect(
      previousTag(signet(tempDir(), '--cwd', r.dir, '--config', 'other.yaml', 'version', '--json')),
    ).toBe('v0.9.0');
  });

  it('the nearest config between the folder and the git root wins', () => {
    const r = repo();
    r.tag('agent-2.0.0');
    writeFileSync(join(r.dir, 'agent', 'signet.config.json'), '{"version": {"tagPrefix": "agent-"}}\n');
    expect(previousTag(signet(join(r.dir, 'agent', 'src'), 'version', '--json'))).toBe('agent-2.0.0');
    expect(previousTag(signet(r.dir, 'version', '--json'))).toBe('rel-1.0.0');
  });

  it('never looks above the git root, and outside a repository only in the folder itself', () => {
    const outer = tempDir('signet-discovery-');
    writeFileSync(join(outer, 'signet.config.yaml'), 'version:\n  tagPrefix: outer-\n');
    const inner = TestRepo.create();
    // a repository inside a folder that has a config: the outer config is not the repository's
    const nested = join(outer, 'repo');
    spawnSync('git', ['clone', '-q', inner.dir, nested]);
    mkdirSync(join(nested, 'sub'));
    expect(findConfig(join(nested, 'sub'))).toBeUndefined();
    const plain = join(outer, 'plain', 'deeper');
    mkdirSync(plain, { recursive: true });
    expect(findConfig(plain)).toBeUndefined();
    expect(findConfig(outer)).toBe(join(outer, 'signet.config.yaml'));
  });
});
