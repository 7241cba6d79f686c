/**
 * End to end, the way CI runs it: a temporary repository → the version action (stable: changelog,
 * release commit, tag) → a mingw-built agent signed by the sign action with the dev PKI →
 * installers for two sites whose enrollment keys arrive sealed → the publish action to a fake
 * Gitea (auto-detected as act_runner would present it) → the same release to dir: with the CLI.
 * The installers carry their sites' enrollment keys: publishing them is refused (action and CLI)
 * before anything is created, and the release carries the signed agent only.
 * Canaries (PKCS#12 password, forge token, seal private key) are scanned for in every output and
 * every file produced.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { buildTestAgent } from '../test/helpers/agent.ts';
import { FakeForge } from '../test/helpers/fake-forge.ts';
import { makeTestPki, PKI_PASSWORD, type TestPki } from '../test/helpers/pki.ts';
import { type DistRun, runDist } from '../test/helpers/run-dist.ts';
import { tempDir } from '../test/helpers/tmp.ts';
import { filesUnder } from '../test/helpers/vendor-repo.ts';
import { sealEnrollmentKey } from '../tools/lib/seal/enrollment.ts';

const root = join(import.meta.dirname, '..');
const TOKEN = 'canary-e2e-forge-token-91af0c';
const KEYS = { north: 'enroll-north-4b1d9f2a7c3e8d60', south: 'enroll-south-0e7c5a3b9d1f2468' };
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

describe('end to end: version → sign → site installers → publish', () => {
  let fake: FakeForge;
  let pki: TestPki;
  let ws: string;
  let sealPrivate: string;
  const runs: DistRun[] = [];
  const env = () => ({
    SIGNET_SIGN_PASSWORD: PKI_PASSWORD,
    GITEA_ACTIONS: 'true',
    GITHUB_SERVER_URL: fake.apiUrl,
  });

  beforeAll(async () => {
    fake = await FakeForge.start({ flavor: 'gitea', token: TOKEN });
    pki = await makeTestPki();
    ws = tempDir('signet-e2e-');
    const { cert: _c, key: _k, ...profile } = pki.profile;
    const config = {
      signing: {
        defaultProfile: 'dev',
        profiles: { dev: { ...profile, pkcs12: pki.pkcs12, password: 'env:SIGNET_SIGN_PASSWORD' } },
      },
      installers: { product: { vendor: 'Acme', product: 'Agent', serviceName: 'AcmeAgent' } },
    };
    writeFileSync(join(ws, 'signet.config.yaml'), YAML.stringify(config));
    writeFileSync(join(ws, '.gitignore'), 'dist/\ninstallers/\nrelease/\n.signet-cache/\n');
    git(ws, 'init', '-q', '-b', 'main');
    git(ws, 'add', '.');
    git(ws, 'commit', '-qm', 'chore: initial');
    git(ws, 'tag', 'v0.1.0');
    writeFileSync(join(ws, 'service.txt'), 'service\n');
    git(ws, 'add', '.');
    git(ws, 'commit', '-qm', 'feat: the agent reports its site');
  }, 180_000);

  afterAll(async () => {
    fake.assertClean();
    await fake.close();
  });

  it('runs the whole pipeline and publishes the same release to the fake Gitea and to dir:', async () => {
    // 1. version (stable): changelog, release commit and tag
    const version = await runDist(
      'version',
      { channel: 'stable', push: 'false' },
      { workspace: ws, env: env() },
    );
    runs.push(version);
    expect(version.code, version.stdout).toBe(0);
    expect(version.outputs).toMatchObject({
      version: '0.2.0',
      tag: 'v0.2.0',
      released: 'true',
      prerelease: 'false',
    });
    expect(git(ws, 'describe', '--tags', '--exact-match')).toBe('v0.2.0');
    const notesFile = version.outputs['notes-file']!;
    expect(readFileSync(notesFile, 'utf8')).toContain('the agent reports its site');

    // 2. build (mingw) and sign with the dev PKI
    mkdirSync(join(ws, 'dist'));
    copyFileSync(await buildTestAgent({ version: '0.2.0' }), join(ws, 'dist', 'agent.exe'));
    const signed = await runDist(
      'sign',
      { files: 'dist/agent.exe', profile: 'dev', release: 'false' },
      { workspace: ws, env: env() },
    );
    runs.push(signed);
    expect(signed.code, signed.stdout).toBe(0);
    const signedFiles = JSON.parse(signed.outputs['files']!);
    expect(signedFiles).toHaveLength(1);
    expect(signedFiles[0].leafSha256).toBe(pki.leafSha256);
    expect(signed.summary).toContain(pki.leafSha256);

    // 3. installers for two sites; keys sealed as the vendor's server would send them
    const keyDir = tempDir('signet-e2e-seal-');
    const keygen = execFileSync(
      process.execPath,
      [
        join(root, 'tools/cli/bin.ts'),
        'seal',
        '--keygen',
        '--private-key-out',
        join(keyDir, 'seal.key'),
        '--json',
      ],
      { encoding: 'utf8' },
    );
    const publicKey = JSON.parse(keygen).publicKey as string;
    expect(publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    sealPrivate = readFileSync(join(keyDir, 'seal.key'), 'utf8').trim();
    // the server seals one key with the CLI (value from its environment) and one with the library
    const sealedNorth = execFileSync(
      process.execPath,
      [
        join(root, 'tools/cli/bin.ts'),
        'seal',
        '--public-key',
        publicKey,
        '--value',
        'env:SITE_KEY',
        '--site-code',
        'north',
        '--key-version',
        '1',
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, SITE_KEY: KEYS.north },
      },
    ).trim();
    expect(sealedNorth).not.toContain(KEYS.north);
    const sites = [
      {
        siteCode: 'north',
        serverUrl: 'https://rmm.example.com',
        company: 'Nörth & Co "quoted"',
        siteName: 'HQ',
        keyVersion: 1,
        sealedEnrollmentKey: sealedNorth,
      },
      {
        siteCode: 'south',
        serverUrl: 'https://rmm.example.com',
        company: 'South; DROP',
        siteName: 'Depot',
        keyVersion: 3,
        sealedEnrollmentKey: await sealEnrollmentKey(
          { siteCode: 'south', keyVersion: 3, key: KEYS.south },
          publicKey,
        ),
      },
    ];
    const built = await runDist(
      'site-installers',
      {
        agent: 'dist/agent.exe',
        sites: JSON.stringify(sites),
        'seal-private-key': sealPrivate,
        profile: 'dev',
        'out-dir': 'installers',
      },
      { workspace: ws, env: env() },
    );
    runs.push(built);
    expect(built.code, built.stdout + built.stderr).toBe(0);
    expect(built.outputs['built']).toBe('2');
    const installers = JSON.parse(built.outputs['files']!) as string[];
    expect(installers.map((f) => f.slice(-4)).sort()).toEqual(['.exe', '.exe', '.msi', '.msi']);

    // 4. publish to the fake Gitea, detected from act_runner's environment. The site installers
    // are refused (they carry the sites' enrollment keys) before anything is created on the forge.
    const withInstallers = await runDist(
      'publish',
      {
        tag: 'v0.2.0',
        channel: 'stable',
        files: ['dist/agent.exe', 'installers/*.exe', 'installers/*.msi'].join('\n'),
        'notes-file': notesFile,
        token: TOKEN,
        profile: 'dev',
        'allow-dev-signatures': 'true',
      },
      { workspace: ws, env: env() },
    );
    runs.push(withInstallers);
    expect(withInstallers.code, withInstallers.stdout + withInstallers.stderr).toBe(3);
    expect(withInstallers.stdout + withInstallers.stderr).toContain('E_PUBLISH_SITE_INSTALLER');
    expect(fake.releases()).toEqual([]);
    expect(fake.requests.filter((r) => r.op === 'create-release' || r.op === 'upload')).toEqual([]);
    const files = 'dist/agent.exe';
    const pub = await runDist(
      'publish',
      {
        tag: 'v0.2.0',
        channel: 'stable',
        files,
        'notes-file': notesFile,
        token: TOKEN,
        profile: 'dev',
        'allow-dev-signatures': 'true',
      },
      { workspace: ws, env: env() },
    );
    runs.push(pub);
    expect(pub.code, pub.stdout + pub.stderr).toBe(0);
    const rels = fake.releases();
    expect(rels).toHaveLength(1);
    const rel = rels[0]!;
    expect(rel).toMatchObject({ tag: 'v0.2.0', draft: false, prerelease: false });
    expect(rel.target).toBe(git(ws, 'rev-parse', 'v0.2.0^{commit}')); // the tag's commit, not a branch head
    const expected = ['SHA256SUMS', 'agent.exe'];
    expect(rel.assets.map((a) => a.name).sort()).toEqual(expected);
    expect(rel.assets.find((a) => a.name === 'agent.exe')!.sha256).toBe(sha(join(ws, 'dist', 'agent.exe')));
    expect(rel.body).toContain('the agent reports its site');
    expect(rel.body).toContain(`\`${sha(join(ws, 'dist', 'agent.exe'))}\``);
    expect(rel.body).toMatch(/development certificate/);
    const sums = fake.assetContent('SHA256SUMS').toString();
    expect(sums).toContain(`${sha(join(ws, 'dist', 'agent.exe'))}  agent.exe`);

    // a re-run converges: nothing uploaded
    const uploadsBefore = fake.requests.filter((r) => r.op === 'upload').length;
    const again = await runDist(
      'publish',
      {
        tag: 'v0.2.0',
        files,
        'notes-file': notesFile,
        token: TOKEN,
        profile: 'dev',
        'allow-dev-signatures': 'true',
      },
      { workspace: ws, env: env() },
    );
    runs.push(again);
    expect(again.code).toBe(0);
    expect(fake.requests.filter((r) => r.op === 'upload').length).toBe(uploadsBefore);

    // without --allow-dev-signatures a stable release signed with the dev certificate is refused
    const refused = await runDist(
      'publish',
      { tag: 'v0.2.0', files, token: TOKEN, profile: 'dev' },
      { workspace: ws, env: env() },
    );
    runs.push(refused);
    expect(refused.code).toBe(3);

    // 5. the same release to dir: with the CLI (installers refused there too, nothing written)
    const refusedCli = spawnSync(
      process.execPath,
      [
        join(root, 'tools/cli/bin.ts'),
        'publish',
        'dist/agent.exe',
        'installers/*.exe',
        'installers/*.msi',
        '--to',
        'dir:./release',
        '--tag',
        'v0.2.0',
        '--profile',
        'dev',
        '--json',
      ],
      { cwd: ws, encoding: 'utf8', env: { ...process.env, SIGNET_SIGN_PASSWORD: PKI_PASSWORD } },
    );
    runs.push({
      code: refusedCli.status ?? 1,
      stdout: refusedCli.stdout,
      stderr: refusedCli.stderr,
      outputs: {},
      summary: '',
    });
    expect(refusedCli.status).toBe(3);
    expect(JSON.parse(refusedCli.stdout).error.details.files).toHaveLength(4);
    expect(readdirSync(ws)).not.toContain('release');
    const cli = execFileSync(
      process.execPath,
      [
        join(root, 'tools/cli/bin.ts'),
        'publish',
        'dist/agent.exe',
        '--to',
        'dir:./release',
        '--tag',
        'v0.2.0',
        '--notes-file',
        notesFile,
        '--profile',
        'dev',
        '--json',
      ],
      {
        cwd: ws,
        encoding: 'utf8',
        env: { ...process.env, SIGNET_SIGN_PASSWORD: PKI_PASSWORD },
      },
    );
    const dirResult = JSON.parse(cli).result;
    expect(dirResult.draft).toBe(false);
    const out = join(ws, 'release', 'v0.2.0');
    expect(readdirSync(out).sort()).toEqual([...expected, 'NOTES.md', 'release.json'].sort());
    expect(readFileSync(join(out, 'SHA256SUMS'), 'utf8')).toBe(sums);
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' })).not.toMatch(
      /FAILED/,
    );
    const meta = JSON.parse(readFileSync(join(out, 'release.json'), 'utf8'));
    expect(meta).toMatchObject({ tag: 'v0.2.0', draft: false, prerelease: false });
    runs.push({ code: 0, stdout: cli, stderr: '', outputs: {}, summary: '' });

    // 6. canaries: nowhere in any output, summary, or produced file
    const canaries = [PKI_PASSWORD, TOKEN, sealPrivate];
    const texts = runs.flatMap((r) => [
      r.stdout
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n'),
      r.stderr,
      r.summary,
      JSON.stringify(r.outputs),
    ]);
    for (const c of canaries) expect(texts.filter((t) => t.includes(c)).length, 'canary in output').toBe(0);
    for (const k of Object.values(KEYS))
      expect(texts.filter((t) => t.includes(k)).length, 'enrollment key in output').toBe(0);
    for (const f of [...filesUnder(join(ws, 'release')), ...filesUnder(fake.storage)]) {
      const bytes = readFileSync(f);
      for (const c of canaries) expect(bytes.includes(c), `${c} in ${f}`).toBe(false);
    }
  }, 300_000);
});
