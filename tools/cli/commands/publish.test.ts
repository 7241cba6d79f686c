import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
