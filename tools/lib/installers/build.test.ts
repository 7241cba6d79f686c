/**
 * Builds real installers (makensis, wixl, msibuild, osslsigncode, 7z, msiextract) around a real
 * mingw-built agent signed with a dev certificate, and checks what they carry. Canary keys are
 * planted in every site; everything produced is scanned except the site.json payload itself.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryScanner, RecordingRunner } from '../../../test/helpers/canary.ts';
import { LONG, NASTY } from '../../../test/helpers/hostile-labels.ts';
import { signedTestAgent } from '../../../test/helpers/site-installers.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import type { SignedArtifact } from '../artifact.ts';
import { describeArtifact } from '../artifact.ts';
import { parseConfig } from '../config/load.ts';
import type { SignetConfig } from '../config/schema.ts';
import { defaultRunner, type Runner, type RunOptions } from '../exec/runner.ts';
import { type DevCert, makeDevCert } from '../sign/devcert.ts';
import { createSigner } from '../sign/index.ts';
import type { Signer } from '../sign/types.ts';
import { buildSiteInstallers, preflightTools, ReleaseCache, type SiteManifest } from './build.ts';
import { listFiles } from './checks.ts';
import { fingerprint } from './fingerprint.ts';
import { loadNsisIncremental } from './nsis-slot.ts';
import { type SiteConfig, validateSites } from './site.ts';

const KEY_A = 'canary-enroll-A-1f2e3d4c5b6a7988';
const KEY_B = 'canary-enroll-B-8899aabbccddeeff';
const KEY_B2 = 'canary-enroll-B-rotated-00112233';

function sitesOf(entries: Record<string, unknown>[], dev = false): SiteConfig[] {
  const r = validateSites(entries, { dev });
  expect(r.problems).toEqual([]);
  return r.sites;
}

const siteA = {
  siteCode: 'ACME-HQ',
  serverUrl: 'https://rmm.example.com/enroll?x=1&y=2',
  company: NASTY.join(' | '),
  siteName: LONG,
  department: NASTY[3],
  deviceType: NASTY[4],
  tags: [...NASTY, LONG, ''],
  enrollmentKey: KEY_A,
  keyVersion: 3,
};
const siteB = {
  siteCode: 'b2',
  serverUrl: 'https://rmm.example.com',
  company: 'Bee',
  enrollmentKey: KEY_B,
  keyVersion: 1,
};

let dir: string;
let dc: DevCert;
let config: SignetConfig;
let signer: Signer;
let agent: SignedArtifact;
let scanner: CanaryScanner;

beforeAll(async () => {
  dir = tempDir('signet-inst-');
  scanner = new CanaryScanner([KEY_A, KEY_B, KEY_B2]);
  ({ pki: dc, config, signer, agent } = await signedTestAgent(dir));
});
afterAll(() => scanner.restore());

function manifestOf(out: string, siteCode: string): SiteManifest {
  return JSON.parse(readFileSync(join(out, `${siteCode}.manifest.json`), 'utf8')) as SiteManifest;
}

describe('buildSiteInstallers', () => {
  const runner = new RecordingRunner();
  let out: string;

  it('builds signed exe + msi per site that carry the signed agent and the exact site.json', async () => {
    out = join(dir, 'out');
    const events: string[] = [];
    const r = await buildSiteInstallers({
      agent,
      sites: sitesOf([siteA, siteB]),
      config,
      signer,
      outDir: out,
      runner,
      onProgress: (e) => events.push(`${e.type}:${e.siteCode}`),
    });
    scanner.seen(r, events);
    expect(r.failed).toBe(0);
    expect(r.built).toBe(2);
    expect(r.version).toBe('1.2.3'); // from the agent's version resource
    expect(events.filter((e) => e.startsWith('done'))).toHaveLength(2);
    const fpA = fingerprint(KEY_A, 3);
    expect(r.results[0]).toMatchObject({ ok: true, cached: false, fingerprint: fpA.text });
    expect(readdirSync(out).sort()).toEqual(
      [
        `Agent-ACME-HQ-v3-${fpA.hex}.exe`,
        `Agent-ACME-HQ-v3-${fpA.hex}.msi`,
        `Agent-b2-v1-${fingerprint(KEY_B, 1).hex}.exe`,
        `Agent-b2-v1-${fingerprint(KEY_B, 1).hex}.msi`,
        'ACME-HQ.manifest.json',
        'b2.manifest.json',
        'site-installers.result.json',
      ].sort(),
    );

    for (const [i, input] of [siteA, siteB].entries()) {
      const res = r.results[i]!;
      // both installers verify with the profile
      const exe = await signer.verify(res.exe!);
      const msi = await signer.verify(res.msi!);
      expect(exe.signature.leafSha256).toBe(dc.leafSha256);
      expect(msi.signature.leafSha256).toBe(dc.leafSha256);
      // independent extraction: the agent byte for byte, site.json equal to the input, uninstaller signed
      const xe = join(dir, `x-${input.siteCode}-exe`);
      const xm = join(dir, `x-${input.siteCode}-msi`);
      await defaultRunner.run('7z', ['x', '-y', `-o${xe}`, res.exe!]);
      await defaultRunner.run('msiextract', ['-C', xm, res.msi!]);
      for (const x of [xe, xm]) {
        const files = listFiles(x);
        const agentCopy = files.find((f) => f.endsWith('/agent.exe'))!;
        expect((await describeArtifact(agentCopy)).sha256).toBe(agent.sha256);
        // an exe assembled from the release's stub carries site.json as its signed overlay
        const inArchive = files.find((f) => f.endsWith('/site.json'));
        const overlay =
          x === xe && !inArchive ? (await loadNsisIncremental())?.readNsisOverlay(res.exe!) : undefined;
        const sj = JSON.parse(overlay ? overlay.toString('utf8') : readFileSync(inArchive!, 'utf8'));
        expect(sj).toMatchObject({
          siteCode: input.siteCode,
          serverUrl: input.serverUrl,
          company: input.company,
          siteName: (input as { siteName?: string }).siteName ?? '',
          tags: (input as { tags?: string[] }).tags ?? [],
          enrollment: {
            key: input.enrollmentKey,
            keyVersion: input.keyVersion,
            fingerprint: fingerprint(input.enrollmentKey, input.keyVersion).text,
          },
          version: '1.2.3',
          dev: true,
        });
      }
      const uninst = listFiles(xe).find((f) => f.endsWith('/uninst.exe'))!;
      expect((await signer.verify(uninst)).signature.leafSha256).toBe(dc.leafSha256);

      const m = manifestOf(out, input.siteCode);
      // the normal path: the MSI assembled from the release's base, and the manifest says so
      expect(res.build?.msi).toEqual({ mode: 'incremental' });
      expect(m.build).toEqual(res.build);
      expect(m.site.fingerprint).toBe(res.fingerprint);
      expect(m.inputs.agent.sha256).toBe(agent.sha256);
      expect(m.outputs.map((o) => o.sha256)).toEqual([exe.sha256, msi.sha256]);
      expect(m.outputs.map((o) => o.size)).toEqual([exe.size, msi.size]);
      expect(m.uninstaller.signature.leafSha256).toBe(dc.leafSha256);
      expect(m.product.productCode).toMatch(/^\{[0-9A-F-]{36}\}$/);
      expect(m.signer).toMatchObject({ profile: 'dev', dev: true, leafSha256: dc.leafSha256 });
    }
    // fresh ProductCode per build, one UpgradeCode per product
    expect(manifestOf(out, 'ACME-HQ').product.productCode).not.toBe(
      manifestOf(out, 'b2').product.productCode,
    );
    expect(manifestOf(out, 'ACME-HQ').product.upgradeCode).toBe(manifestOf(out, 'b2').product.upgradeCode);
    // nothing left behind
    expect(existsSync(join(dir, 'cache', 'work'))).toBe(false);
    // hostile labels never reached makensis/wixl argv
    for (const c of runner.calls) for (const a of c.args) expect(a).not.toMatch(/[<>$"]|pwned/);
    expect(existsSync('/tmp/pwned')).toBe(false);
  });

  it('skips unchanged sites, and a key rotation rebuilds only that site (removing its old installers)', async () => {
    const before = runner.calls.length;
    const again = await buildSiteInstallers({
      agent,
      sites: sitesOf([siteA, siteB]),
      config,
      signer,
      outDir: out,
      runner,
    });
    expect(again).toMatchObject({ built: 0, cached: 2, failed: 0 });
    expect(runner.calls.slice(before).some((c) => c.file === 'makensis' || c.file === 'wixl')).toBe(false);

    const oldB = manifestOf(out, 'b2').outputs.map((o) => o.name);
    const manifestA = readFileSync(join(out, 'ACME-HQ.manifest.json'), 'utf8');
    const rotated = await buildSiteInstallers({
      agent,
      sites: sitesOf([siteA, { ...siteB, enrollmentKey: KEY_B2, keyVersion: 2 }]),
      config,
      signer,
      outDir: out,
      runner,
    });
    scanner.seen(rotated);
    expect(rotated).toMatchObject({ built: 1, cached: 1, failed: 0 });
    expect(rotated.results[1]).toMatchObject({ cached: false, fingerprint: fingerprint(KEY_B2, 2).text });
    expect(readFileSync(join(out, 'ACME-HQ.manifest.json'), 'utf8')).toBe(manifestA);
    for (const n of oldB) expect(existsSync(join(out, n))).toBe(false);
    expect(readdirSync(out).filter((f) => f.includes('-b2-v2-'))).toHaveLength(2);

    // a prerelease keeps its full version in site.json and the manifest; MSI gets x.y.z
    const pre = await buildSiteInstallers({
      agent,
      sites: sitesOf([siteB]),
      config,
      signer,
      outDir: join(dir, 'o-pre'),
      version: '1.2.4-beta.2',
    });
    expect(pre).toMatchObject({ ok: true, version: '1.2.4-beta.2' });
    expect(manifestOf(join(dir, 'o-pre'), 'b2').product).toMatchObject({
      version: '1.2.4-beta.2',
      msiVersion: '1.2.4',
    });
    await expect(
      buildSiteInstallers({
        agent,
        sites: sitesOf([siteB]),
        config,
        signer,
        outDir: join(dir, 'o-pre2'),
        version: '256.0.0',
      }),
    ).rejects.toMatchObject({ code: 'E_INPUT_INVALID' });

    // a different product version (same agent) rebuilds everything
    const v = await buildSiteInstallers({
      agent,
      sites: sitesOf([siteA]),
      config,
      signer,
      outDir: out,
      runner,
      version: '1.2.4',
    });
    expect(v).toMatchObject({ built: 1, cached: 0 });
  });

  it('never leaks an enrollment key outside the site.json payload', () => {
    const dirs = [out];
    // installers carry site.json (compressed): scan what they unpack to, except site.json itself
    const extracted = readdirSync(dir)
      .filter((d) => d.startsWith('x-'))
      .map((d) => join(dir, d));
    for (const x of extracted)
      for (const f of listFiles(x)) if (f.endsWith('/site.json')) writeFileSync(f, '');
    const files = listFiles(out).filter((f) => !/\.(exe|msi)$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    scanner.assertClean(runner, [...extracted]);
    for (const f of files)
      for (const k of [KEY_A, KEY_B, KEY_B2]) expect(readFileSync(f).includes(k), f).toBe(false);
    for (const name of readdirSync(out))
      for (const k of [KEY_A, KEY_B, KEY_B2]) expect(name).not.toContain(k);
    void dirs;
  });
});

describe('preflight', () => {
  it('names every missing tool before any work', () => {
    expect(() => preflightTools({ PATH: '/nonexistent' })).toThrow(
      /missing on PATH: makensis, wixl, msibuild, msiextract, 7z/,
    );
    expect(() => preflightTools()).not.toThrow();
  });
});

describe('options', () => {
  it('icon, lzma compression, ServiceInstall mode and a kept config all build and pass the checks', async () => {
    // a minimal 16×16 32-bit icon
    const bmp = Buffer.alloc(40 + 16 * 16 * 4 + 64);
    bmp.writeUInt32LE(40, 0);
    bmp.writeInt32LE(16, 4);
    bmp.writeInt32LE(32, 8);
    bmp.writeUInt16LE(1, 12);
    bmp.writeUInt16LE(32, 14);
    const head = Buffer.alloc(22);
    head.writeUInt16LE(1, 2);
    head.writeUInt16LE(1, 4);
    head.writeUInt8(16, 6);
    head.writeUInt8(16, 7);
    head.writeUInt16LE(1, 10);
    head.writeUInt16LE(32, 12);
    head.writeUInt32LE(bmp.length, 14);
    head.writeUInt32LE(22, 18);
    writeFileSync(join(dir, 'agent.ico'), Buffer.concat([head, bmp]));
    const c = parseConfig(
      {
        ...structuredClone(config),
        installers: {
          ...config.installers,
          compression: 'lzma',
          product: {
            ...config.installers.product,
            icon: join(dir, 'agent.ico'),
            msiService: 'serviceInstall',
            removeConfigOnUninstall: false,
          },
        },
      },
      't',
    );
    const out = join(dir, 'o-options');
    const r = await buildSiteInstallers({ agent, sites: sitesOf([siteB]), config: c, signer, outDir: out });
    expect(r.ok, JSON.stringify(r.results)).toBe(true);
    const msi = r.results[0]!.msi!;
    // msiinfo writes binary columns as files into its working folder
    const icon = await defaultRunner.run('msiinfo', ['export', msi, 'Icon'], { cwd: dir });
    expect(icon.stdout).toContain('product.ico');
    const svc = await defaultRunner.run('msiinfo', ['export', msi, 'ServiceInstall'], { cwd: dir });
    expect(svc.stdout).toContain('SignetTestAgent');
    const comps = await defaultRunner.run('msiinfo', ['export', msi, 'Component'], { cwd: dir });
    expect(comps.stdout).toMatch(/SiteConfigComponent\t\{[0-9A-F-]+\}\tDATADIR\t272\t/);
    // a different compression is a different build
    const again = await buildSiteInstallers({ agent, sites: sitesOf([siteB]), config, signer, outDir: out });
    expect(again.built).toBe(1);
  });
});

describe('the agent gate', () => {
  it('refuses an agent that changed after it was verified', async () => {
    const p = join(dir, 'agent-altered.exe');
    copyFileSync(agent.path, p);
    const altered = { ...agent, path: p };
    const bytes = readFileSync(p);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
    writeFileSync(p, bytes);
    const r = buildSiteInstallers({
      agent: altered,
      sites: sitesOf([siteB]),
      config,
      signer,
      outDir: join(dir, 'o-alt'),
    });
    await expect(r).rejects.toMatchObject({ code: 'E_AGENT_UNSIGNED', exitCode: 3 });
    expect(existsSync(join(dir, 'o-alt', 'b2.manifest.json'))).toBe(false);
  });

  it('refuses an agent signed by another certificate', async () => {
    const other = await makeDevCert(join(dir, 'pki-other'), { name: 'Other' });
    const otherSigner = createSigner(
      parseConfig({ signing: { defaultProfile: 'o', profiles: { o: other.profile } } }, 't'),
    );
    const foreign = await otherSigner.sign(join(dir, 'agent-unsigned.exe'), {
      out: join(dir, 'agent-foreign.exe'),
    });
    await expect(
      buildSiteInstallers({
        agent: foreign,
        sites: sitesOf([siteB]),
        config,
        signer,
        outDir: join(dir, 'o-foreign'),
      }),
    ).rejects.toMatchObject({ code: 'E_AGENT_UNSIGNED' });
  });

  it('accepts an unsigned agent only with allowUnsignedAgent and a dev profile, and marks the build dev', async () => {
    const unsigned = {
      unsigned: true as const,
      artifact: await describeArtifact(join(dir, 'agent-unsigned.exe')),
    };
    const releaseConfig = parseConfig(
      { signing: { defaultProfile: 'rel', profiles: { rel: { ...dc.profile, dev: false } } } },
      't',
    );
    const releaseSigner = createSigner(releaseConfig);
    await expect(
      buildSiteInstallers({
        agent: unsigned,
        sites: sitesOf([siteB]),
        config: releaseConfig,
        signer: releaseSigner,
        outDir: join(dir, 'o-u1'),
        allowUnsignedAgent: true,
      }),
    ).rejects.toMatchObject({ code: 'E_AGENT_UNSIGNED' });
    await expect(
      buildSiteInstallers({
        agent: unsigned,
        sites: sitesOf([siteB]),
        config,
        signer,
        outDir: join(dir, 'o-u2'),
      }),
    ).rejects.toMatchObject({ code: 'E_AGENT_UNSIGNED' });
    const r = await buildSiteInstallers({
      agent: unsigned,
      sites: sitesOf([{ ...siteB, serverUrl: 'http://127.0.0.1:8080' }], true),
      config,
      signer,
      outDir: join(dir, 'o-u3'),
      allowUnsignedAgent: true,
    });
    expect(r).toMatchObject({ ok: true, dev: true });
    const m = manifestOf(join(dir, 'o-u3'), 'b2');
    expect(m.dev).toBe(true);
    expect(m.inputs.agent.signed).toBe(false);
  });
});

describe('failures', () => {
  it('a failing site is reported and the others are still built', async () => {
    const failing: Runner = {
      run: (file: string, args: readonly string[], o?: RunOptions) =>
        file === 'wixl' && o?.cwd?.includes('/BAD-')
          ? defaultRunner.run('sh', ['-c', 'echo "wixl: simulated failure" >&2; exit 1'], o)
          : defaultRunner.run(file, args, o),
    };
    const out = join(dir, 'o-partial');
    const r = await buildSiteInstallers({
      agent,
      sites: sitesOf([{ ...siteB, siteCode: 'BAD-1' }, siteB]),
      config,
      signer,
      outDir: out,
      runner: failing,
      incremental: false, // wixl runs per site only in a full build
    });
    scanner.seen(r);
    expect(r).toMatchObject({ ok: false, failed: 1, built: 1 });
    expect(r.results[0]).toMatchObject({
      siteCode: 'BAD-1',
      ok: false,
      error: { code: 'E_INSTALLER_BUILD_FAILED' },
    });
    expect(readdirSync(out).filter((f) => f.includes('BAD-1'))).toEqual([]);
    const summary = JSON.parse(readFileSync(join(out, 'site-installers.result.json'), 'utf8'));
    expect(summary.sites.map((x: { siteCode: string; ok: boolean }) => [x.siteCode, x.ok])).toEqual([
      ['BAD-1', false],
      ['b2', true],
    ]);
    expect(r.results[1]).toMatchObject({ ok: true });
  });

  it('an uninstaller that cannot be signed fails the build (!uninstfinalize … = 0)', async () => {
    const refusing: Signer = {
      profile: signer.profile,
      dev: signer.dev,
      verify: (p) => signer.verify(p),
      sign: (p, o) =>
        p.includes('/signet-sign-') ? Promise.reject(new Error('HSM unavailable')) : signer.sign(p, o),
    };
    const out = join(dir, 'o-uninst');
    const r = await buildSiteInstallers({
      agent,
      sites: sitesOf([siteB]),
      config,
      signer: refusing,
      outDir: out,
      incremental: new ReleaseCache(), // no stub signed by an earlier batch
    });
    expect(r.results[0]).toMatchObject({ ok: false, error: { code: 'E_INSTALLER_BUILD_FAILED' } });
    expect(r.results[0]?.error?.message).toMatch(/uninstfinalize|sign/i);
    expect(readdirSync(out)).toEqual(['site-installers.result.json']);
  });

  it('a custom NSIS template whose uninstaller hook does not sign fails the check; no output is left', async () => {
    const t = readFileSync(join(import.meta.dirname, '../../../templates/nsis/site-installer.nsi'), 'utf8');
    const custom = join(dir, 'custom.nsi');
    writeFileSync(custom, t.replace(/^!uninstfinalize .*$/m, `!uninstfinalize '"/bin/true" "%1"' = 0`));
    const c = parseConfig(
      { ...structuredClone(config), installers: { ...config.installers, nsisTemplate: custom } },
      't',
    );
    const out = join(dir, 'o-nsis-unsigned');
    const r = await buildSiteInstallers({ agent, sites: sitesOf([siteB]), config: c, signer, outDir: out });
    expect(r.results[0]).toMatchObject({ ok: false, error: { code: 'E_INSTALLER_CHECK_FAILED' } });
    expect(r.results[0]?.error?.message).toMatch(/uninstaller .* is not one the signer signed/);
    expect(readdirSync(out)).toEqual(['site-installers.result.json']);
  });

  it('a custom WiX template without RemoveExistingProducts fails the lint; no output is left', async () => {
    const t = readFileSync(join(import.meta.dirname, '../../../templates/wix/site-installer.wxs'), 'utf8');
    const custom = join(dir, 'custom.wxs');
    writeFileSync(custom, t.replace('<RemoveExistingProducts Sequence="1401"/>', ''));
    const c = parseConfig(
      { ...structuredClone(config), installers: { ...config.installers, wixTemplate: custom } },
      't',
    );
    const out = join(dir, 'o-lint');
    const r = await buildSiteInstallers({ agent, sites: sitesOf([siteB]), config: c, signer, outDir: out });
    expect(r.results[0]).toMatchObject({ ok: false, error: { code: 'E_INSTALLER_CHECK_FAILED' } });
    expect(r.results[0]?.error?.message).toContain('RemoveExistingProducts');
    expect(readdirSync(out)).toEqual(['site-installers.result.json']);
  });
});
