/**
 * The shipped workflows, executed job by job the way a runner would (test/helpers/workflow-harness.ts):
 * release.yml on the stable and the beta channel against the fake forge in its GitHub and Gitea
 * flavours, with the code-signing key delivered the way users store it — a base64 PKCS#12 secret —
 * the local TSA, and Signet's actions from their committed dist/. Every secret is a canary that must
 * appear in no step log, summary or output.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../../tools/lib/installers/fingerprint.ts';
import { readNsisOverlay } from '../../tools/lib/installers/nsis-incremental.ts';
import { sealEnrollmentKey } from '../../tools/lib/seal/enrollment.ts';
import { generateSealKeyPair, type SealKeyPair, seal } from '../../tools/lib/seal/index.ts';
import { verifyFile } from '../../tools/lib/sign/verify.ts';
import { makeTls, startCallbackServer } from '../helpers/callback-server.ts';
import { FakeForge } from '../helpers/fake-forge.ts';
import { makeTestPki, PKI_PASSWORD, type TestPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startTestTsa } from '../helpers/tsa.ts';
import { filesUnder, forgeOf, git, makeVendorRepo, type VendorRepo } from '../helpers/vendor-repo.ts';
import { type HarnessOptions, runWorkflow, type WorkflowRun } from '../helpers/workflow-harness.ts';

const root = join(import.meta.dirname, '..', '..');
const TOKEN = 'canary-wf-forge-token-5d2e9a';
const CALLBACK_TOKEN = 'canary-wf-callback-token-77b3c1';
const KEYS = { north: 'enroll-north-wf-3c9e1a7b5d', south: 'enroll-south-wf-8f2d4b6a0c' };
const sha = (p: string | Buffer) =>
  createHash('sha256')
    .update(typeof p === 'string' ? readFileSync(p) : p)
    .digest('hex');

function expectNoLeak(run: WorkflowRun, canaries: string[]): void {
  const text = run.text();
  for (const c of canaries)
    expect(text.includes(c), `a secret appears in the run's logs/outputs`).toBe(false);
}

for (const flavor of ['github', 'gitea'] as const) {
  describe(`release.yml on the ${flavor} flavour, executed job by job`, () => {
    let fake: FakeForge;
    let pki: TestPki;
    let repo: VendorRepo;
    let work: string;
    const options = (channel: 'stable' | 'beta', runNumber: number): HarnessOptions => ({
      workflow: join(root, 'workflows', 'release.yml'),
      event: { name: 'workflow_dispatch', inputs: { channel } },
      origin: repo.origin,
      repository: 'acme/agent',
      secrets: { SIGNET_SIGN_PFX_BASE64: repo.pfxBase64, SIGNET_SIGN_PASSWORD: PKI_PASSWORD },
      forge: forgeOf(fake, TOKEN),
      actionRepos: { 'signet-release/signet': root },
      workDir: join(work, `${channel}-${runNumber}`),
      runNumber,
    });

    beforeAll(async () => {
      fake = await FakeForge.start({ flavor, token: TOKEN });
      pki = await makeTestPki();
      const tsa = await startTestTsa(pki);
      repo = await makeVendorRepo(pki, tsa);
      work = tempDir(`signet-wf-${flavor}-`);
    }, 120_000);
    afterAll(async () => {
      fake.assertClean();
      await fake.close();
    });

    it('beta: a prerelease v0.2.0-beta.N with the signed agent, nothing committed', async () => {
      const run = await runWorkflow(options('beta', 7));
      expect(run.failures()).toBe('');
      expect(Object.fromEntries(Object.values(run.jobs).map((j) => [j.id, j.result]))).toEqual({
        version: 'success',
        build: 'success',
        sign: 'success',
        publish: 'success',
      });
      expect(run.jobs['version']!.outputs).toMatchObject({
        version: '0.2.0-beta.7',
        tag: 'v0.2.0-beta.7',
        prerelease: 'true',
      });
      const rel = fake.releases().find((r) => r.tag === 'v0.2.0-beta.7')!;
      expect(rel).toMatchObject({ draft: false, prerelease: true });
      expect(rel.assets.map((a) => a.name).sort()).toEqual(['SHA256SUMS', 'agent.exe']);
      expect(git(repo.origin, 'tag', '--list', 'v0.2.0-beta.*')).toBe('v0.2.0-beta.7');
      // beta commits nothing: main is where it was
      expect(git(repo.origin, 'log', '-1', '--format=%s', 'main')).toBe('fix: retry enrollment on a 503');
      await expectSignedAgent(rel.assets.find((a) => a.name === 'agent.exe')!.sha256, 'v0.2.0-beta.7');
      expectNoLeak(run, [repo.pfxBase64, PKI_PASSWORD, TOKEN]);
    }, 240_000);

    it('stable: changelog, release commit (notes under .signet/notes included), tag, a release', async () => {
      const run = await runWorkflow(options('stable', 8));
      expect(run.failures()).toBe('');
      expect(run.jobs['publish']!.result).toBe('success');
      expect(run.jobs['version']!.outputs).toMatchObject({
        version: '0.2.0',
        tag: 'v0.2.0',
        prerelease: 'false',
      });
      expect(run.jobs['version']!.outputs['notes']).toContain('the agent reports its site');
      const rel = fake.releases().find((r) => r.tag === 'v0.2.0')!;
      expect(rel).toMatchObject({ draft: false, prerelease: false });
      expect(rel.body).toContain('the agent reports its site');
      expect(rel.assets.map((a) => a.name).sort()).toEqual(['SHA256SUMS', 'agent.exe']);
      // the release commit holds the manifest, the changelog and the notes file, and is on main
      const files = git(repo.origin, 'show', '--name-only', '--format=', 'v0.2.0^{commit}')
        .split('\n')
        .sort();
      expect(files).toEqual(['.signet/notes/0.2.0.md', 'CHANGELOG.md', 'package.json']);
      expect(git(repo.origin, 'rev-parse', 'main')).toBe(git(repo.origin, 'rev-parse', 'v0.2.0^{commit}'));
      expect(rel.target).toBe(git(repo.origin, 'rev-parse', 'v0.2.0^{commit}'));
      await expectSignedAgent(rel.assets.find((a) => a.name === 'agent.exe')!.sha256, 'v0.2.0');
      // the summary of each Signet step is there, and no secret is in any log, summary or output
      expect(run.jobs['sign']!.steps.find((s) => s.id === 'sign')!.summary).toContain(pki.leafSha256);
      expectNoLeak(run, [repo.pfxBase64, PKI_PASSWORD, TOKEN]);
      // the decoded key material did not outlive the sign job
      const leftovers = filesUnder(join(options('stable', 8).workDir, 'jobs', 'sign')).filter((f) => {
        const b = readFileSync(f);
        return (
          b.length > 0 && (b.includes(readFileSync(pki.pkcs12)) || f.endsWith('.p12') || f.endsWith('.pfx'))
        );
      });
      expect(leftovers).toEqual([]);
    }, 240_000);

    const siteOptions = (
      requestId: string,
      inputs: Record<string, string>,
      pair: SealKeyPair,
      caFile: string,
    ): HarnessOptions => ({
      workflow: join(root, 'workflows', 'site-installers.yml'),
      event: {
        name: 'workflow_dispatch',
        inputs: { 'request-id': requestId, 'release-tag': 'v0.2.0', ...inputs },
      },
      origin: repo.origin,
      repository: 'acme/agent',
      secrets: {
        SIGNET_SIGN_PFX_BASE64: repo.pfxBase64,
        SIGNET_SIGN_PASSWORD: PKI_PASSWORD,
        SIGNET_SEAL_PRIVATE_KEY: pair.privateKey,
      },
      forge: forgeOf(fake, TOKEN),
      actionRepos: { 'signet-release/signet': root },
      workDir: join(work, `sites-${requestId}`),
      // a runner that trusts the vendor's private CA (a public certificate needs nothing)
      runnerEnv: { NODE_EXTRA_CA_CERTS: caFile },
    });
    const sitesFor = async (pair: SealKeyPair) =>
      JSON.stringify([
        {
          siteCode: 'north',
          serverUrl: 'https://rmm.example.com',
          company: 'Nörth & Co "quoted"',
          keyVersion: 1,
          sealedEnrollmentKey: await sealEnrollmentKey(
            { siteCode: 'north', keyVersion: 1, key: KEYS.north },
            pair.publicKey,
          ),
        },
        {
          siteCode: 'south',
          serverUrl: 'https://rmm.example.com',
          company: 'South $(id)',
          keyVersion: 3,
          sealedEnrollmentKey: await sealEnrollmentKey(
            { siteCode: 'south', keyVersion: 3, key: KEYS.south },
            pair.publicKey,
          ),
        },
      ]);

    it("site-installers.yml: each site's installers reach only the vendor's callback, with the request id", async () => {
      const pair = await generateSealKeyPair();
      const tls = await makeTls();
      const cb = await startCallbackServer({ token: CALLBACK_TOKEN, requestId: 'req-1001' });
      const assetsBefore = fake.releases().map((r) => `${r.tag}:${r.assets.map((a) => a.name).join(',')}`);
      const run = await runWorkflow(
        siteOptions(
          'req-1001',
          {
            sites: await sitesFor(pair),
            'callback-url': cb.url,
            'sealed-callback-token': await seal(CALLBACK_TOKEN, pair.publicKey),
          },
          pair,
          tls.caFile,
        ),
      );
      await cb.close();
      expect(run.failures()).toBe('');
      const names = [...cb.files.keys()].sort();
      const n = fingerprint(KEYS.north, 1).slug;
      const so = fingerprint(KEYS.south, 3).slug;
      expect(names.filter((x) => /\.(exe|msi)$/.test(x))).toEqual([
        `Agent-north-${n}.exe`,
        `Agent-north-${n}.msi`,
        `Agent-south-${so}.exe`,
        `Agent-south-${so}.msi`,
      ]);
      expect(cb.notices).toHaveLength(1);
      expect(cb.notices[0]).toMatchObject({ requestId: 'req-1001', status: 'success' });
      // nothing reached a release or an artifact
      expect(fake.releases().map((r) => `${r.tag}:${r.assets.map((a) => a.name).join(',')}`)).toEqual(
        assetsBefore,
      );
      expect(readdirSync(run.artifacts.dir)).toEqual([]);
      // each installer is signed, carries the released agent byte for byte and its own site's key
      const agent = fake.assetContent('agent.exe', 'v0.2.0');
      for (const name of names.filter((n) => /\.(exe|msi)$/.test(n))) {
        const dir = tempDir('signet-wf-delivered-');
        const file = join(dir, name);
        writeFileSync(file, cb.files.get(name)!);
        await verifyFile(
          file,
          { caFile: pki.caCert, tsaCaFile: pki.caCert, leafSha256: [pki.leafSha256] },
          { requireTimestamp: true },
        );
        const out = join(dir, 'x');
        if (name.endsWith('.exe')) execFileSync('7z', ['x', '-y', `-o${out}`, file], { stdio: 'ignore' });
        else execFileSync('msiextract', ['-C', out, file], { stdio: 'ignore' });
        const found = filesUnder(out);
        // an incrementally built exe carries site.json as its overlay record (read as the installer reads it)
        const siteJson =
          (name.endsWith('.exe') ? readNsisOverlay(file)?.toString('utf8') : undefined) ??
          readFileSync(found.find((f) => f.endsWith('site.json'))!, 'utf8');
        const key = name.includes('north') ? KEYS.north : KEYS.south;
        expect(siteJson).toContain(key);
        expect(found.some((f) => f.endsWith('.exe') && sha(f) === sha(agent))).toBe(true);
      }
      expectNoLeak(run, [
        repo.pfxBase64,
        PKI_PASSWORD,
        TOKEN,
        CALLBACK_TOKEN,
        pair.privateKey,
        KEYS.north,
        KEYS.south,
      ]);
      // the request files and installers are gone from the runner's temp folder
      const temp = join(siteOptions('req-1001', {}, pair, '').workDir, 'jobs', 'build', 'temp');
      expect(existsSync(join(temp, 'installers')) || existsSync(join(temp, 'sites.json'))).toBe(false);
    }, 240_000);

    it('site-installers.yml: a failed build sends a failure notice with the request id and delivers nothing', async () => {
      const pair = await generateSealKeyPair();
      const other = await generateSealKeyPair();
      const tls = await makeTls();
      const cb = await startCallbackServer({ token: CALLBACK_TOKEN, requestId: 'req-1002' });
      const run = await runWorkflow(
        siteOptions(
          'req-1002',
          {
            // sealed to another repository's key: it cannot be opened here
            sites: await sitesFor(other),
            'callback-url': cb.url,
            'sealed-callback-token': await seal(CALLBACK_TOKEN, pair.publicKey),
          },
          pair,
          tls.caFile,
        ),
      );
      await cb.close();
      expect(run.jobs['build']!.result).toBe('failure');
      expect(run.jobs['build']!.steps.find((s) => s.id === 'build')!.outcome).toBe('failure');
      expect([...cb.files.keys()]).toEqual([]);
      expect(cb.notices).toHaveLength(1);
      expect(cb.notices[0]).toMatchObject({ requestId: 'req-1002', status: 'failure' });
      expectNoLeak(run, [repo.pfxBase64, PKI_PASSWORD, TOKEN, CALLBACK_TOKEN, pair.privateKey]);
    }, 240_000);

    it('site-installers.yml: artifact delivery keeps 1 day and warns that repository readers can download it', async () => {
      const pair = await generateSealKeyPair();
      const run = await runWorkflow(
        siteOptions('req-1003', { sites: await sitesFor(pair), delivery: 'artifact' }, pair, ''),
      );
      expect(run.failures()).toBe('');
      expect([...run.artifacts.retention.entries()]).toEqual([['site-installers-req-1003', 1]]);
      const summary = run.jobs['build']!.steps.map((s) => s.summary).join('');
      expect(summary).toMatch(/anyone who can read this repository's Actions can download it/);
      expectNoLeak(run, [repo.pfxBase64, PKI_PASSWORD, TOKEN, pair.privateKey, KEYS.north, KEYS.south]);
    }, 240_000);

    async function expectSignedAgent(assetSha: string, tag: string): Promise<void> {
      const dir = tempDir('signet-wf-asset-');
      const file = join(dir, 'agent.exe');
      writeFileSync(file, fake.assetContent('agent.exe', tag));
      expect(sha(file)).toBe(assetSha);
      // verified (chain to the test CA, pinned signer, timestamp) or verifyFile throws
      const signed = await verifyFile(
        file,
        { caFile: pki.caCert, tsaCaFile: pki.caCert, leafSha256: [pki.leafSha256] },
        { requireTimestamp: true },
      );
      expect(signed.signature.leafSha256).toBe(pki.leafSha256);
      expect(signed.signature.timestamp).toBeTruthy();
    }
  });
}
