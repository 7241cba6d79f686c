/**
 * Outputs that must not destroy or leak: `demo --out` never deletes a folder it did not make,
 * `unseal --out` never overwrites, a failed `sign --out new/deep/x.exe` leaves no folders, and
 * TSA URL credentials are refused (never printed).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MARKER, prepareDemoOut } from '../../tools/lib/demo/out-dir.ts';
import { buildPe } from '../helpers/pe.ts';
import { tempDir } from '../helpers/tmp.ts';
import { errorCode, signet } from './cli.ts';

describe('demo --out', () => {
  it('refuses a non-empty folder it did not make (a repository) and deletes nothing', async () => {
    const dir = tempDir('signet-demo-out-');
    mkdirSync(join(dir, 'mine', '.git'), { recursive: true });
    writeFileSync(join(dir, 'mine', 'precious.txt'), 'keep me\n');
    const r = await signet(dir, ['demo', '--out', 'mine', '--no-installers']);
    expect(errorCode(r), r.stderr).toBe('E_DIR_NOT_EMPTY');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--force');
    expect(readFileSync(join(dir, 'mine', 'precious.txt'), 'utf8')).toBe('keep me\n');
    expect(existsSync(join(dir, 'mine', '.git'))).toBe(true);
  });

  it('refuses the current directory, even with --force', async () => {
    const dir = tempDir('signet-demo-out-');
    writeFileSync(join(dir, 'precious.txt'), 'keep me\n');
    const r = await signet(dir, ['demo', '--out', '.', '--force', '--no-installers']);
    expect(errorCode(r), r.stderr).toBe('E_INPUT_INVALID');
    expect(readFileSync(join(dir, 'precious.txt'), 'utf8')).toBe('keep me\n');
  });

  it('replaces its own folder (marker or an older demo layout), an empty one, or any with force', () => {
    const dir = tempDir('signet-demo-out-');
    const cwd = tempDir('signet-demo-cwd-');
    const own = join(dir, 'own');
    prepareDemoOut(own, { cwd });
    writeFileSync(join(own, 'stale'), 'x');
    prepareDemoOut(own, { cwd });
    expect(readdirSync(own)).toEqual([DEMO_MARKER]);
    const legacy = join(dir, 'legacy');
    for (const d of ['repo', 'dev-pki', 'release']) mkdirSync(join(legacy, d), { recursive: true });
    prepareDemoOut(legacy, { cwd });
    expect(readdirSync(legacy)).toEqual([DEMO_MARKER]);
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'f'), 'x');
    expect(() => prepareDemoOut(other, { cwd })).toThrow(/not empty/);
    prepareDemoOut(other, { cwd, force: true });
    expect(readdirSync(other)).toEqual([DEMO_MARKER]);
  });
});

describe('unseal --out', () => {
  it('refuses an existing file (here: the private key it was given) with E_FILE_EXISTS', async () => {
    const dir = tempDir('signet-unseal-');
    const kg = await signet(dir, ['seal', '--keygen', '--private-key-out', 'seal.key', '--json']);
    expect(kg.code, kg.stderr).toBe(0);
    const { publicKey } = JSON.parse(kg.stdout) as { publicKey: string };
    const sealed = await signet(dir, ['seal', '--public-key', publicKey, '--value', 'env:V', '--json'], {
      V: 'secret-value-canary-81',
    });
    expect(sealed.code, sealed.stderr).toBe(0);
    const box = (JSON.parse(sealed.stdout) as { sealed: string }).sealed;
    const key = readFileSync(join(dir, 'seal.key'), 'utf8');
    const r = await signet(dir, [
      'unseal',
      '--private-key',
      'file:seal.key',
      '--sealed',
      box,
      '--out',
      'seal.key',
    ]);
    expect(errorCode(r), r.stderr).toBe('E_FILE_EXISTS');
    expect(r.code).toBe(2);
    expect(readFileSync(join(dir, 'seal.key'), 'utf8')).toBe(key);
    const ok = await signet(dir, [
      'unseal',
      '--private-key',
      'file:seal.key',
      '--sealed',
      box,
      '--out',
      'v.txt',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(dir, 'v.txt'), 'utf8')).toBe('secret-value-canary-81');
  });
});

describe('sign: failures leave nothing; TSA credentials are refused', () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir('signet-sign-faults-');
    const dc = await signet(dir, ['dev-cert', '--out', 'pki', '--json']);
    expect(dc.code, dc.stderr).toBe(0);
    const made = JSON.parse(dc.stdout) as { profile: unknown };
    writeFileSync(
      join(dir, 'signet.config.yaml'),
      `signing:\n  defaultProfile: dev\n  profiles:\n    dev: ${JSON.stringify(made.profile)}\n`,
    );
    await buildPe(join(dir, 'a.exe'));
  });

  it('a failed sign --out new/deep/x.exe creates no folders', async () => {
    // every timestamp attempt fails (nothing listens on port 1)
    const r = await signet(dir, [
      'sign',
      'a.exe',
      '--out',
      'new/deep/x.exe',
      '--tsa-url',
      'http://127.0.0.1:1/',
    ]);
    expect(r.code).not.toBe(0);
    expect(errorCode(r), r.stderr).toBe('E_TIMESTAMP_FAILED');
    expect(existsSync(join(dir, 'new'))).toBe(false);
  });

  it('--tsa-url with user:password@ is refused and the password is printed nowhere', async () => {
    const PASS = 'tsaPassCanary93';
    for (const json of [false, true]) {
      const r = await signet(dir, [
        'sign',
        'a.exe',
        '--out',
        'b.exe',
        '--tsa-url',
        `http://user:${PASS}@127.0.0.1:1/`,
        ...(json ? ['--json'] : []),
      ]);
      expect(errorCode(r), r.stdout + r.stderr).toBe('E_SECRET_ON_ARGV');
      expect(r.stdout + r.stderr).not.toContain(PASS);
      expect(existsSync(join(dir, 'b.exe'))).toBe(false);
    }
  });

  it('a TSA URL with credentials in the config is refused, naming the field', async () => {
    const PASS = 'cfgTsaPassCanary44';
    const cfg = join(dir, 'creds.yaml');
    const profile = readFileSync(join(dir, 'signet.config.yaml'), 'utf8');
    writeFileSync(
      cfg,
      profile.replace(/"timestamp":false/, `"timestamp":{"urls":["http://user:${PASS}@127.0.0.1:1/"]}`),
    );
    expect(readFileSync(cfg, 'utf8')).toContain(PASS);
    const r = await signet(dir, ['sign', 'a.exe', '--out', 'c.exe', '--config', cfg, '--json']);
    expect(errorCode(r), r.stdout + r.stderr).toBe('E_CONFIG_INVALID');
    expect(r.stdout + r.stderr).toMatch(/timestamp/);
    expect(r.stdout + r.stderr).not.toContain(PASS);
  });
});
