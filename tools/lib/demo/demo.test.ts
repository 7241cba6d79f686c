/**
 * The quick start's main job, end to end with the real tools: the same code `signet demo` runs.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { defaultRunner } from '../exec/runner.ts';
import { logger } from '../log.ts';
import { type DemoResult, runDemo } from './run.ts';

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === '.git' ? [] : walk(join(dir, e.name))) : [join(dir, e.name)],
  );
}

describe('signet demo', () => {
  let result: DemoResult;
  let out: string;
  const lines: string[] = [];

  beforeAll(async () => {
    out = join(tempDir('signet-demo-'), 'out');
    const sink = logger.sink;
    logger.sink = { write: (l) => lines.push(l) };
    try {
      result = await runDemo({ out, onLine: (l) => lines.push(l) });
    } finally {
      logger.sink = sink;
    }
  }, 180_000);

  it('plans a beta that sorts between the last stable and its target, and a stable release', () => {
    expect(result.ok).toBe(true);
    expect(result.betaPlan).toMatchObject({
      channel: 'beta',
      previousTag: 'v0.3.0',
      version: '0.4.0-beta.7',
      prerelease: true,
    });
    expect(result.stablePlan).toMatchObject({
      channel: 'stable',
      previousTag: 'v0.3.0',
      version: '0.4.0',
      bump: 'minor',
      released: true,
    });
  });

  it('writes the changelog, commits and tags the release in the demo repository', async () => {
    expect(result.changelog).toMatch(/^# Changelog\n\n## \[0\.4\.0\]/);
    expect(result.changelog).toContain('### Features');
    expect(result.changelog).toContain('## 0.3.0\n\n- First public release.');
    const tag = await defaultRunner.run('git', ['describe', '--exact-match', 'HEAD'], {
      cwd: join(out, 'repo'),
    });
    expect(tag.stdout.trim()).toBe('v0.4.0');
    expect(readFileSync(join(out, 'repo', 'agent', 'Cargo.toml'), 'utf8')).toContain(
      'version = "0.4.0" # bumped by signet',
    );
  });

  it('signs and timestamps the agent with the dev certificate, and it verifies', async () => {
    expect(result.agent?.subject).toContain('NOT FOR RELEASE');
    expect(result.agent?.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    const verify = await defaultRunner.run(
      'osslsigncode',
      [
        'verify',
        '-CAfile',
        join(out, 'dev-pki', 'ca.pem'),
        '-TSA-CAfile',
        join(out, 'dev-pki', 'ca.pem'),
        '-in',
        result.agent!.path,
      ],
      { allowFailure: true },
    );
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
  });

  it('publishes the signed agent — never the sites’ installers — to the local release folder with correct checksums', () => {
    const folder = join(out, 'release', 'v0.4.0');
    const sums = readFileSync(join(folder, 'SHA256SUMS'), 'utf8').trim().split('\n');
    const names = sums.map((l) => l.split(/\s+\*?/)[1]);
    expect(names).toEqual(['agent.exe']);
    expect(readdirSync(folder).filter((f) => /\.(exe|msi)$/.test(f))).toEqual(['agent.exe']);
    for (const line of sums) {
      const [sha, name] = line.split(/\s+\*?/);
      expect(
        createHash('sha256')
          .update(readFileSync(join(folder, name!)))
          .digest('hex'),
      ).toBe(sha);
    }
  });

  it('never writes an enrollment key outside the installers’ own payload', () => {
    const keys = new Set<string>();
    for (const f of walk(join(out, 'installers'))) {
      if (f.endsWith('.manifest.json')) expect(readFileSync(f, 'utf8')).not.toMatch(/demo-enroll-/);
    }
    const everything = [...walk(out).filter((f) => !/\.(exe|msi)$/.test(f)), ...lines];
    for (const item of everything) {
      const text =
        item.startsWith('/') && statSync(item, { throwIfNoEntry: false })?.isFile()
          ? readFileSync(item, 'latin1')
          : item;
      const m = text.match(/demo-enroll-[0-9a-f]{24}/g);
      if (m) for (const k of m) keys.add(`${relative(out, item)}: ${k}`);
    }
    expect([...keys]).toEqual([]);
  });
});
