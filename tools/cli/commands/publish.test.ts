import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTestSite } from '../../../test/helpers/site-installers.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';

const bin = join(import.meta.dirname, '..', 'bin.ts');
const run = (cwd: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });

describe('signet publish / seal / unseal (CLI)', () => {
  it('dry run prints the plan as JSON and writes nothing', () => {
    const dir = tempDir('signet-cli-pub-');
    writeFileSync(join(dir, 'a.zip'), 'a');
    const r = run(dir, ['publish', 'a.zip', '--to', 'dir:./rel', '--tag', 'v1.0.0', '--dry-run', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.dryRun).toBe(true);
    expect(out.plan.release).toEqual({ action: 'create' });
    expect(out.plan.actions.map((a: { kind: string; name: string }) => `${a.kind}:${a.name}`)).toEqual([
      'upload:a.zip',
      'upload:SHA256SUMS',
    ]);
    expect(spawnSync('ls', [join(dir, 'rel')]).status).not.toBe(0);
  });

  it('refuses a literal token and a channel/tag mismatch with usage errors', () => {
    const dir = tempDir('signet-cli-pub-');
    writeFileSync(join(dir, 'a.zip'), 'a');
    const lit = run(dir, [
      'publish',
      'a.zip',
      '--to',
      'github',
      '--repo',
      'a/b',
      '--tag',
      'v1.0.0',
      '--token',
      'ghp_literal_value',
      '--json',
    ]);
    expect(lit.status).toBe(2);
    expect(JSON.parse(lit.stdout).error.code).toBe('E_SECRET_ON_ARGV');
    expect(lit.stdout + lit.stderr).not.toContain('ghp_literal_value');
    const beta = run(dir, ['publish', 'a.zip', '--to', 'dir:x', '--tag', 'v1.0.0', '--channel', 'beta']);
    expect(beta.status).toBe(2);
    expect(beta.stderr).toMatch(/stable tag/);
  });

  it('refuses site installers by content (exit 3, renamed too, nothing written); --allow-site-installers publishes them', async () => {
    const dir = tempDir('signet-cli-pub-site-');
    const site = await buildTestSite(dir);
    writeFileSync(
      join(dir, 'signet.config.json'),
      JSON.stringify({ signing: { defaultProfile: 'dev', profiles: { dev: site.pki.profile } } }),
    );
    copyFileSync(site.exe, join(dir, 'tool.bin'));
    const base = ['--to', 'dir:./rel', '--tag', 'v1.0.0', '--json'];
    for (const files of [
      [site.agent.path, site.exe, site.msi],
      [site.agent.path, 'tool.bin'],
    ]) {
      const r = run(dir, ['publish', ...files, ...base]);
      expect(r.status, r.stderr).toBe(3);
      const err = JSON.parse(r.stdout).error;
      expect(err.code).toBe('E_PUBLISH_SITE_INSTALLER');
      expect(err.hint).toContain('--allow-site-installers');
      expect(err.details.files.map((f: { name: string }) => f.name)).toEqual(
        files.slice(1).map((f) => f.split('/').pop()),
      );
      expect(existsSync(join(dir, 'rel'))).toBe(false);
    }
    const ok = run(dir, ['publish', site.agent.path, site.exe, site.msi, ...base, '--allow-site-installers']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/--allow-site-installers: publishing 2 file\(s\)/);
    expect(readdirSync(join(dir, 'rel', 'v1.0.0'))).toContain(site.msi.split('/').pop());
    const agentOnly = run(dir, [
      'publish',
      site.agent.path,
      '--to',
      'dir:./rel2',
      '--tag',
      'v1.0.0',
      '--json',
    ]);
    expect(agentOnly.status, agentOnly.stderr).toBe(0);
    expect(agentOnly.stdout + agentOnly.stderr).not.toContain(site.key);
  });

  it('seal → unseal round trip through files and env, private key never printed', () => {
    const dir = tempDir('signet-cli-seal-');
    const keygen = JSON.parse(run(dir, ['seal', '--keygen', '--private-key-out', 'k', '--json']).stdout);
    const priv = readFileSync(join(dir, 'k'), 'utf8').trim();
    expect(JSON.stringify(keygen)).not.toContain(priv);
    expect(run(dir, ['seal', '--keygen', '--private-key-out', 'k']).status).toBe(2); // never overwrites a key
    const sealed = execFileSync(
      process.execPath,
      [bin, 'seal', '--public-key', keygen.publicKey, '--value', 'env:V'],
      {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, V: 'site-key-123456' },
      },
    ).trim();
    const opened = run(dir, ['unseal', '--private-key', 'env:K', '--sealed', sealed, '--out', 'plain'], {
      K: priv,
    });
    expect(opened.status, opened.stderr).toBe(0);
    expect(readFileSync(join(dir, 'plain'), 'utf8')).toBe('site-key-123456');
    const wrong = run(dir, ['unseal', '--private-key', 'env:K', '--sealed', sealed], { K: keygen.publicKey });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/E_SEAL_FAILED/);
  });
});
