/** `signet check` through the real CLI: config problems exit 2, missing tools or secrets exit 4. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { makeTestPki, PKI_PASSWORD, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';

const BIN = join(import.meta.dirname, '..', 'bin.ts');

function signet(cwd: string, args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', SIGNET_SIGN_PFX_BASE64: '', SIGNET_SIGN_PASSWORD: '', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Row {
  area: string;
  name: string;
  status: string;
  code?: string;
  detail: string;
}

function rowsOf(stdout: string, failed: boolean): Row[] {
  const j = JSON.parse(stdout);
  return (failed ? j.error.details.checks : j.checks) as Row[];
}

let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});

function repoWith(config: string, files: Record<string, string> = {}): TestRepo {
  return TestRepo.create({ files: { 'signet.config.yaml': config, ...files } });
}

const RELEASE = `signing:
  defaultProfile: release
  profiles:
    release:
      backend: osslsigncode
      pkcs12: env:SIGNET_SIGN_PFX_BASE64
      password: env:SIGNET_SIGN_PASSWORD
`;

describe('signet check', () => {
  it('lists every config problem and exits 2 (E_CONFIG_INVALID), in the full error shape', () => {
    const repo = repoWith(
      'version:\n  tagPrefx: v\n  breakingInZeroMajor: huge\npublish:\n  forge: nowhere\n',
    );
    const r = signet(join(repo.dir), ['check', '--json']);
    expect(r.code).toBe(2);
    const e = JSON.parse(r.stdout).error;
    expect(Object.keys(e).sort()).toEqual(['code', 'details', 'hint', 'message']);
    expect(e.code).toBe('E_CONFIG_INVALID');
    const details = rowsOf(r.stdout, true).map((c) => c.detail);
    expect(details).toHaveLength(3);
    expect(details.join('\n')).toMatch(/tagPrefx/);
    expect(details.join('\n')).toMatch(/version\.breakingInZeroMajor/);
    expect(details.join('\n')).toMatch(/publish\.forge/);
    const human = signet(repo.dir, ['check']);
    expect(human.code).toBe(2);
    expect(human.stdout.match(/^FAIL /gm)).toHaveLength(3);
    expect(human.stderr).toContain('[E_CONFIG_INVALID]');
  });

  it('a defaultProfile that is not a profile, and a missing manifest, are configuration problems (2)', () => {
    const repo = repoWith(
      `version:\n  manifests: [agent/Cargo.toml, package.json]\nsigning:\n  defaultProfile: release\n  profiles:\n    other:\n      backend: osslsigncode\n      cert: ${pki.cert}\n      key: ${pki.key}\n`,
      { 'package.json': '{"name": "a", "version": "1.2.3"}\n' },
    );
    const r = signet(repo.dir, ['check', '--json']);
    expect(r.code).toBe(2);
    const rows = rowsOf(r.stdout, true);
    expect(rows.find((c) => c.name === 'defaultProfile')).toMatchObject({
      status: 'fail',
      code: 'E_PROFILE_UNKNOWN',
    });
    expect(rows.find((c) => c.name === 'agent/Cargo.toml')).toMatchObject({
      status: 'fail',
      code: 'E_MANIFEST_MISSING',
    });
    expect(rows.find((c) => c.name === 'package.json')).toMatchObject({ status: 'ok', detail: 'npm 1.2.3' });
    expect(rows.find((c) => c.name === 'profile other')).toMatchObject({ status: 'ok' });
  });

  it('secrets a profile references must be present (4), and are never printed', () => {
    const repo = repoWith(RELEASE);
    const missing = signet(repo.dir, ['check', '--json']);
    expect(missing.code).toBe(4);
    const e = JSON.parse(missing.stdout).error;
    expect(e.code).toBe('E_SECRET_MISSING');
    expect(e.message).toContain('SIGNET_SIGN_PFX_BASE64');

    const pfx = readFileSync(pki.pkcs12).toString('base64');
    const noPassword = signet(repo.dir, ['check', '--json'], { SIGNET_SIGN_PFX_BASE64: pfx });
    expect(noPassword.code).toBe(4);
    expect(JSON.parse(noPassword.stdout).error.message).toContain('SIGNET_SIGN_PASSWORD');

    const all = signet(repo.dir, ['check', '--json'], {
      SIGNET_SIGN_PFX_BASE64: pfx,
      SIGNET_SIGN_PASSWORD: PKI_PASSWORD,
    });
    expect(all.code, all.stdout + all.stderr).toBe(0);
    const report = JSON.parse(all.stdout);
    expect(report.ok).toBe(true);
    expect(report.checks.find((c: Row) => c.name === 'profile release')).toMatchObject({ status: 'ok' });
    for (const out of [missing, noPassword, all]) {
      expect(out.stdout + out.stderr).not.toContain(PKI_PASSWORD);
      expect(out.stdout + out.stderr).not.toContain(pfx.slice(0, 40));
    }
  });

  it('profile files that do not exist are named (4), relative to the config file', () => {
    const repo = repoWith(
      'signing:\n  defaultProfile: p\n  profiles:\n    p:\n      backend: osslsigncode\n      cert: keys/chain.pem\n      key: keys/leaf.key\n      verify: { caFile: keys/ca.pem }\n',
    );
    const r = signet(repo.dir, ['check', '--json']);
    expect(r.code).toBe(4);
    const failed = rowsOf(r.stdout, true).filter((c) => c.status === 'fail');
    expect(failed.map((c) => [c.name, c.code])).toEqual([
      ['profile p: verify.caFile', 'E_SIGN_KEY_MISSING'],
      ['profile p: cert', 'E_SIGN_KEY_MISSING'],
      ['profile p: key', 'E_SIGN_KEY_MISSING'],
    ]);
    expect(failed[1]?.detail).toContain('keys/chain.pem');
  });

  it('the installer tools are required once installers are configured: a missing one exits 4', () => {
    const repo = repoWith(
      `signing:\n  defaultProfile: p\n  profiles:\n    p:\n      backend: osslsigncode\n      cert: ${pki.cert}\n      key: ${pki.key}\ninstallers:\n  product: { vendor: V, product: P, serviceName: S }\n`,
    );
    // a PATH with the signing tools only
    const bin = tempDir('signet-check-bin-');
    for (const tool of ['osslsigncode', 'openssl']) {
      const found = (process.env['PATH'] ?? '')
        .split(delimiter)
        .map((d) => join(d, tool))
        .find((p) => spawnSync('test', ['-x', p]).status === 0);
      symlinkSync(found!, join(bin, tool));
    }
    const r = signet(repo.dir, ['check', '--json'], { PATH: bin });
    expect(r.code).toBe(4);
    const e = JSON.parse(r.stdout).error;
    expect(e.code).toBe('E_TOOL_MISSING');
    const missing = rowsOf(r.stdout, true)
      .filter((c) => c.status === 'fail')
      .map((c) => c.name);
    expect(missing.sort()).toEqual(['7z', 'makensis', 'msibuild', 'msiextract', 'wixl']);
    expect(e.hint).toMatch(/apt-get install/);

    // without an installers section they are not needed
    writeFileSync(
      join(repo.dir, 'signet.config.yaml'),
      readFileSync(join(repo.dir, 'signet.config.yaml'), 'utf8').replace(/installers:[\s\S]*$/, ''),
    );
    expect(signet(repo.dir, ['check'], { PATH: bin }).code).toBe(0);
  });

  it('runs from a subfolder against the config at the git root', () => {
    const repo = repoWith(
      `signing:\n  defaultProfile: p\n  profiles:\n    p:\n      backend: osslsigncode\n      cert: ${pki.cert}\n      key: ${pki.key}\n`,
    );
    const sub = join(repo.dir, 'a', 'b');
    mkdirSync(sub, { recursive: true });
    const r = signet(sub, ['check', '--json']);
    expect(r.code, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: true,
      root: repo.dir,
      config: join(repo.dir, 'signet.config.yaml'),
    });
  });
});
