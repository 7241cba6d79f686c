/** `signet init` through the real CLI: starter config + workflows at the git root, never clobbering. */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { buildTestAgent } from '../../../test/helpers/agent.ts';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { loadConfig, parseConfig } from '../../lib/config/load.ts';
import { packagePath } from '../../lib/paths.ts';

const BIN = join(import.meta.dirname, '..', 'bin.ts');

function signet(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const packaged = (name: string) => readFileSync(packagePath('workflows', name), 'utf8');

/** Uncomments the example `release:` profile of the starter config. */
function withReleaseProfile(text: string): string {
  const lines = text.split('\n');
  const start = lines.indexOf('    # release:');
  expect(start).toBeGreaterThan(0);
  let i = start;
  for (; i < lines.length && /^ {4}# (release:| {2})/.test(lines[i]!); i++)
    lines[i] = lines[i]!.replace(/^ {4}# /, '    ');
  expect(i - start).toBeGreaterThan(4);
  return lines.join('\n');
}

describe('signet init', () => {
  it('writes a valid, commented config at the git root and the two packaged workflows (from a subfolder)', () => {
    const repo = TestRepo.create();
    const sub = join(repo.dir, 'agent', 'src');
    mkdirSync(sub, { recursive: true });
    const r = signet(sub, 'init', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.root).toBe(repo.dir);
    expect(j.files).toEqual([
      { path: 'signet.config.yaml', kind: 'config', replaced: false },
      { path: '.github/workflows/release.yml', kind: 'workflow', replaced: false },
      { path: '.github/workflows/site-installers.yml', kind: 'workflow', replaced: false },
    ]);
    expect(readdirSync(join(repo.dir, '.github', 'workflows')).sort()).toEqual([
      'release.yml',
      'site-installers.yml',
    ]);
    for (const name of ['release.yml', 'site-installers.yml'])
      expect(readFileSync(join(repo.dir, '.github', 'workflows', name), 'utf8')).toBe(packaged(name));
    expect(existsSync(join(sub, 'signet.config.yaml'))).toBe(false);

    // the editor line points at the packaged schema
    const text = readFileSync(join(repo.dir, 'signet.config.yaml'), 'utf8');
    const schema = /^# yaml-language-server: \$schema=(.+)$/m.exec(text)?.[1];
    expect(schema).toBe(j.schema);
    expect(resolve(repo.dir, schema!)).toBe(packagePath('schema', 'signet.config.schema.json'));

    // every key is valid for the real loader, and so is the commented release profile
    const { config, path } = loadConfig(sub);
    expect(path).toBe(join(repo.dir, 'signet.config.yaml'));
    expect(config.signing.defaultProfile).toBe('dev');
    expect(config.signing.profiles['dev']).toMatchObject({ backend: 'osslsigncode', dev: true });
    expect(config.installers.product.vendor).toBe('ExampleVendor');
    const release = parseConfig(YAML.parse(withReleaseProfile(text)), 'uncommented');
    expect(release.signing.profiles['release']).toMatchObject({
      backend: 'osslsigncode',
      pkcs12: 'env:SIGNET_SIGN_PFX_BASE64',
      password: 'env:SIGNET_SIGN_PASSWORD',
    });
  });

  it('refuses to overwrite anything, naming the files, and then writes nothing at all; --force replaces', () => {
    const repo = TestRepo.create();
    mkdirSync(join(repo.dir, '.github', 'workflows'), { recursive: true });
    writeFileSync(join(repo.dir, '.github', 'workflows', 'release.yml'), 'mine\n');
    const r = signet(repo.dir, 'init', '--json');
    expect(r.code).toBe(2);
    const e = JSON.parse(r.stdout).error;
    expect(e.code).toBe('E_FILE_EXISTS');
    expect(e.message).toContain('.github/workflows/release.yml');
    expect(e.hint).toContain('--force');
    expect(e.details.existing).toEqual(['.github/workflows/release.yml']);
    // checked before the first write: neither the config nor the other workflow appeared
    expect(existsSync(join(repo.dir, 'signet.config.yaml'))).toBe(false);
    expect(existsSync(join(repo.dir, '.github', 'workflows', 'site-installers.yml'))).toBe(false);
    expect(readFileSync(join(repo.dir, '.github', 'workflows', 'release.yml'), 'utf8')).toBe('mine\n');

    // a config in another form counts as the config
    const other = TestRepo.create();
    writeFileSync(join(other.dir, 'signet.config.json'), '{}\n');
    const json = signet(other.dir, 'init');
    expect(json.code).toBe(2);
    expect(json.stderr).toContain('signet.config.json');
    expect(readdirSync(other.dir).sort()).toEqual(['.git', 'README.md', 'signet.config.json']);

    const forced = signet(repo.dir, 'init', '--force', '--json');
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout).files[1]).toEqual({
      path: '.github/workflows/release.yml',
      kind: 'workflow',
      replaced: true,
    });
    expect(readFileSync(join(repo.dir, '.github', 'workflows', 'release.yml'), 'utf8')).toBe(
      packaged('release.yml'),
    );
  });

  it('--forge gitea writes .gitea/workflows; outside a repository it is E_NOT_A_GIT_REPO', () => {
    const repo = TestRepo.create();
    const r = signet(repo.dir, 'init', '--forge', 'gitea');
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(repo.dir, '.gitea', 'workflows')).sort()).toEqual([
      'release.yml',
      'site-installers.yml',
    ]);
    expect(existsSync(join(repo.dir, '.github'))).toBe(false);
    expect(r.stdout).toContain('.gitea/workflows/release.yml');

    const plain = tempDir('signet-init-plain-');
    const no = signet(plain, 'init', '--json');
    expect(no.code).toBe(2);
    expect(JSON.parse(no.stdout).error.code).toBe('E_NOT_A_GIT_REPO');
    expect(readdirSync(plain)).toEqual([]);
  });

  it('first use end to end: init, dev-cert, check passes, and the dev profile signs', async () => {
    const repo = TestRepo.create();
    expect(signet(repo.dir, 'init').code).toBe(0);
    const before = signet(repo.dir, 'check', '--json');
    expect(before.code).toBe(4); // the dev PKI is not there yet
    expect(JSON.parse(before.stdout).error.hint).toContain('signet dev-cert');
    expect(signet(repo.dir, 'dev-cert').code).toBe(0);
    const check = signet(repo.dir, 'check');
    expect(check.code, check.stdout + check.stderr).toBe(0);
    copyFileSync(await buildTestAgent({ version: '1.0.0' }), join(repo.dir, 'agent.exe'));
    const signed = signet(join(repo.dir), 'sign', 'agent.exe', '--json');
    expect(signed.code, signed.stderr).toBe(0);
    expect(signet(repo.dir, 'verify', 'agent.exe').code).toBe(0);
  });
  it('--actions points every Signet action at a fork or a Gitea mirror; a malformed value writes nothing', () => {
    const repo = TestRepo.create();
    const r = signet(
      repo.dir,
      'init',
      '--forge',
      'gitea',
      '--actions',
      'https://gitea.example.com/mirrors/signet@v1.4.2',
    );
    expect(r.code, r.stderr).toBe(0);
    for (const name of ['release.yml', 'site-installers.yml']) {
      const text = readFileSync(join(repo.dir, '.gitea', 'workflows', name), 'utf8');
      const own = text
        .split('\n')
        .filter((l) => /uses: .*\/actions\/[\w-]+@/.test(l) && !/uses: actions\//.test(l));
      expect(own.length).toBeGreaterThan(0);
      for (const l of own)
        expect(l).toMatch(/uses: https:\/\/gitea\.example\.com\/mirrors\/signet\/actions\/[\w-]+@v1\.4\.2$/);
      expect(text).not.toContain('signet-release/signet/actions/');
      // everything else is the packaged file
      expect(
        text.replace(
          /https:\/\/gitea\.example\.com\/mirrors\/signet(\/actions\/[\w-]+)@v1\.4\.2/g,
          'signet-release/signet$1@v1',
        ),
      ).toBe(packaged(name));
    }
    const other = TestRepo.create();
    const bad = signet(other.dir, 'init', '--actions', 'not a repo', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error.code).toBe('E_USAGE');
    expect(existsSync(join(other.dir, 'signet.config.yaml')) || existsSync(join(other.dir, '.github'))).toBe(
      false,
    );
  });
});
