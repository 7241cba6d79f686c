/**
 * The npm package as a vendor gets it: `npm pack` (prepack builds dist/ with tsc), then
 * `npm install --omit=dev` of the tarball into an empty prefix, then the installed `signet` bin
 * and the library's entry points, run from there — no checkout, no dev dependencies, no type
 * stripping (Node refuses it under node_modules).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestRepo } from '../helpers/git-repo.ts';
import { tempDir } from '../helpers/tmp.ts';

const root = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd: string, timeout = 120_000): Run {
  const r = spawnSync(file, args, { cwd, encoding: 'utf8', timeout, maxBuffer: 1 << 26 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function must(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r;
}

describe('the installed npm package', () => {
  const tmp = tempDir('signet-pack-');
  const prefix = join(tmp, 'prefix');
  const installed = join(prefix, 'node_modules', pkg.name);
  const signet = join(prefix, 'node_modules', '.bin', 'signet');
  let tarball: string;
  let entries: string[];
  const timings: Record<string, number> = {};

  beforeAll(() => {
    const time = <T>(name: string, f: () => T): T => {
      const s = performance.now();
      try {
        return f();
      } finally {
        timings[name] = Math.round(performance.now() - s);
      }
    };
    // --json keeps stdout for the result; the prepack build logs to stderr.
    const packed = time('pack (prepack build included)', () =>
      must(run('npm', ['pack', '--json', '--pack-destination', tmp], root), 'npm pack'),
    );
    const [info] = JSON.parse(packed.stdout) as [{ filename: string }];
    tarball = join(tmp, info.filename);
    entries = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((e) => e.replace(/^package\//, ''));
    time('install --omit=dev', () =>
      must(
        run(
          'npm',
          [
            'install',
            '--omit=dev',
            '--prefer-offline',
            '--no-audit',
            '--no-fund',
            '--prefix',
            prefix,
            tarball,
          ],
          tmp,
          240_000,
        ),
        'npm install',
      ),
    );
  }, 300_000);
  afterAll(() => {
    if (!tarball) return;
    const size = statSync(tarball).size;
    console.log(`tarball: ${entries.length} files, ${size} bytes; timings (ms): ${JSON.stringify(timings)}`);
  });

  it('ships the built JS, its types and the runtime files, and nothing of the tests or benches', () => {
    expect(entries.filter((e) => /\.test\.|(^|\/)(test|bench|coverage)\//.test(e))).toEqual([]);
    expect(entries.filter((e) => e.startsWith('actions/') || e.startsWith('scripts/'))).toEqual([]);
    // Only declarations may end in .ts: Node will not run TypeScript from node_modules.
    expect(entries.filter((e) => e.endsWith('.ts') && !e.endsWith('.d.ts'))).toEqual([]);
    for (const f of [
      'package.json',
      'README.md',
      'CHANGELOG.md',
      'schema/signet.config.schema.json',
      'templates/nsis/site-installer.nsi',
      'templates/wix/site-installer.wxs',
      'templates/notes/stable.md',
      'templates/notes/beta.md',
      'templates/demo-agent/agent.c',
      'workflows/release.yml',
      'workflows/site-installers.yml',
      'dist/lib/installers/sign-client.js',
      'dist/lib/exec/spawn-helper.js',
      pkg.bin['signet']!.replace(/^\.\//, ''),
    ])
      expect(entries, f).toContain(f);
    for (const [key, target] of Object.entries(pkg.exports)) {
      const paths = typeof target === 'string' ? [target] : [target.types, target.default];
      for (const p of paths) expect(entries, `exports["${key}"]`).toContain(p.replace(/^\.\//, ''));
    }
    const bin = readFileSync(join(installed, pkg.bin['signet']!), 'utf8');
    expect(bin.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(bin).toContain("import('./main.js')");
  });

  it('installs without dev dependencies', () => {
    const deps = readdirSync(join(prefix, 'node_modules'));
    for (const dev of ['typescript', 'vitest', 'esbuild', '@biomejs', 'fast-check'])
      expect(deps).not.toContain(dev);
    expect(deps).toContain('yargs');
  });

  it('`signet --version` prints the package version', () => {
    const r = run(signet, ['--version'], tmp);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split(/\s+/)).toContain(pkg.version);
  });

  it('`signet --help` lists the commands', () => {
    const r = must(run(signet, ['--help'], tmp), 'signet --help');
    for (const command of ['version', 'sign', 'site-installers', 'publish', 'demo'])
      expect(r.stdout).toContain(`signet ${command}`);
  });

  describe('from the installed package', () => {
    const out = join(tmp, 'demo');
    let demo: Run;
    beforeAll(() => {
      const s = performance.now();
      demo = run(signet, ['demo', '--out', out], tmp, 240_000);
      timings['demo'] = Math.round(performance.now() - s);
    }, 300_000);

    it('`signet demo` runs the whole pipeline and publishes the release folder', () => {
      expect(demo.code, demo.stderr).toBe(0);
      const release = readdirSync(join(out, 'release', 'v0.4.0'));
      expect(release).toEqual(
        expect.arrayContaining(['agent.exe', 'SHA256SUMS', 'release.json', 'NOTES.md']),
      );
      // Two demo sites, an NSIS .exe and an MSI each. makensis signed each uninstaller through the
      // built sign-client.js (the build fails without it: there is no .ts to fall back on).
      const installers = readdirSync(join(out, 'installers'));
      expect(installers.filter((f) => f.endsWith('.exe'))).toHaveLength(2);
      expect(installers.filter((f) => f.endsWith('.msi'))).toHaveLength(2);
      expect(existsSync(join(installed, 'dist/lib/installers/sign-client.ts'))).toBe(false);
    });

    const repo = TestRepo.create();
    repo.tag('v1.0.0');
    repo.commit('feat: a feature after 1.0.0', { 'src/a.txt': 'a\n' });

    it('a plain .mjs imports the library and every subpath export', () => {
      const script = join(prefix, 'check.mjs');
      writeFileSync(
        script,
        `
import * as core from 'signet-release';
import { planFromRepo } from 'signet-release/version';
import { verifyFile } from 'signet-release/sign';
import { fingerprint, validateSites } from 'signet-release/installers';
import { openForge, resolveForgeTarget } from 'signet-release/publish';
import { SIGN_CLIENT } from '${join(installed, 'dist/lib/installers/sign-server.js')}';
import { SpawnRunner, spawnHelperPid, useSpawnHelper } from '${join(installed, 'dist/lib/exec/runner.js')}';
const [repo, out] = process.argv.slice(2);
const result = {};
result.version = core.packageVersion();
result.error = new core.SignetError('E_USAGE', 'x').exitCode;
result.config = core.parseConfig({ version: { tagPrefix: 'v' } }, 'check').version.tagPrefix;
result.plan = (await planFromRepo({ cwd: repo, channel: 'stable', env: {} })).plan.version;
const agent = await verifyFile(out + '/build/agent.exe', { caFile: out + '/dev-pki/ca.pem' }, { requireTimestamp: true });
result.signer = agent.signature.subject;
result.fingerprint = fingerprint('an-enrollment-key', 3).text;
const site = { siteCode: 'ACME-HQ', serverUrl: 'https://rmm.example.com', company: 'ACME', keyVersion: 1, enrollmentKeyRef: 'env:K' };
result.sites = validateSites([site], { env: { K: 'an-enrollment-key' } }).sites.map((s) => s.siteCode);
result.problems = validateSites([site], { env: {} }).problems.map((p) => p.path);
const forge = openForge(await resolveForgeTarget({ to: 'dir:' + out + '/release', cwd: out }));
result.releases = (await forge.findReleases('v0.4.0')).map((r) => r.tag);
result.signClient = SIGN_CLIENT;
// the built spawn helper runs programs for a batch (from the package's own .js: no .ts to fall back on)
const releaseHelper = useSpawnHelper();
const parent = await new SpawnRunner().run('sh', ['-c', 'cut -d" " -f4 /proc/$$/stat']);
result.viaHelper = spawnHelperPid() !== undefined && Number(parent.stdout.trim()) === spawnHelperPid();
releaseHelper();
console.log(JSON.stringify(result));
`,
      );
      const r = must(run(process.execPath, [script, repo.dir, out], prefix), 'check.mjs');
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(result).toMatchObject({
        version: pkg.version,
        error: 2,
        config: 'v',
        plan: '1.1.0',
        signer: expect.stringContaining('Signet DEV code signing'),
        fingerprint: expect.stringMatching(/^v3 \([0-9A-F]{4}\)$/),
        sites: ['ACME-HQ'],
        problems: ['sites[0].enrollmentKeyRef'],
        releases: ['v0.4.0'],
        signClient: join(installed, 'dist/lib/installers/sign-client.js'),
        viaHelper: true,
      });
    });

    it('its type declarations serve a TypeScript consumer through the exports map', () => {
      const dir = join(prefix, 'ts-consumer');
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, 'consumer.ts'),
        `import { loadConfig, SignetError, type SignetConfig } from 'signet-release';
import { planRelease, type ReleasePlan } from 'signet-release/version';
import { createSigner, type Signer } from 'signet-release/sign';
import { buildSiteInstallers, fingerprint } from 'signet-release/installers';
import { type Forge, publishRelease } from 'signet-release/publish';
export const config: SignetConfig = loadConfig('.').config;
export const error: number = new SignetError('E_USAGE', 'x').exitCode;
export const used = [planRelease, createSigner, buildSiteInstallers, publishRelease] as const;
export type Used = [ReleasePlan, Signer, Forge];
// @ts-expect-error the fingerprint's text is a string (fails as unused if the types were any)
export const wrong: number = fingerprint('k', 3).text;
`,
      );
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            moduleResolution: 'nodenext',
            target: 'es2024',
            strict: true,
            noEmit: true,
            types: ['node'],
            typeRoots: [join(root, 'node_modules', '@types')],
          },
          files: ['consumer.ts'],
        }),
      );
      const r = run(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.json')], dir);
      expect(r.stdout + r.stderr).toBe('');
      expect(r.code).toBe(0);
    });
  });
});
