/**
 * End to end on Wine: build real per-site installers around a real (mingw) service agent, then
 * install them silently into one fresh 64-bit prefix: placement, site.json, service RUNNING,
 * upgrade in place, key rotation, downgrade refused, uninstall removes the service and files —
 * once on installers assembled from the release's shared parts, once on full rebuilds.
 * (Wine's icacls is a no-op and Wine accepts MSIs Windows would reject: ACLs and MSI validity are
 * checked on the tables and the script in tools/lib/installers/*.test.ts.)
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedArtifact } from '../../tools/lib/artifact.ts';
import { parseConfig } from '../../tools/lib/config/load.ts';
import type { SignetConfig } from '../../tools/lib/config/schema.ts';
import { buildSiteInstallers, ReleaseCache } from '../../tools/lib/installers/build.ts';
import { fingerprint } from '../../tools/lib/installers/fingerprint.ts';
import { validateSites } from '../../tools/lib/installers/site.ts';
import { makeDevCert } from '../../tools/lib/sign/devcert.ts';
import { createSigner } from '../../tools/lib/sign/index.ts';
import { templateSigningStats } from '../../tools/lib/sign/template-signer.ts';
import type { Signer } from '../../tools/lib/sign/types.ts';
import { buildTestAgent } from '../helpers/agent.ts';
import { tempDir } from '../helpers/tmp.ts';
import { makeWinePrefix, type WinePrefix, wineAvailable } from '../helpers/wine.ts';

const SERVICE = 'SignetTestAgent';
const INSTALL_DIR = 'C:\\Program Files\\Example Vendor\\Agent';
const CONFIG = 'C:\\ProgramData\\Example Vendor\\Agent\\site.json';
const KEY1 = 'canary-e2e-key-one-0123456789';
const KEY2 = 'canary-e2e-key-two-9876543210';

const site = {
  siteCode: 'E2E-1',
  serverUrl: 'https://rmm.example.com',
  company: `Q "uote" $PROGRAMFILES \${VENDOR} %SystemRoot% <x>&]]> \\ \n\u202E🦄`,
  siteName: 'Ω'.repeat(10_000),
  department: 'ops',
  deviceType: 'server',
  tags: ['a', 'b;c', '$\\n'],
  enrollmentKey: KEY1,
  keyVersion: 1,
};

let dir: string;
let config: SignetConfig;
let signer: Signer;
const agents: Record<string, SignedArtifact> = {};
const built: Record<string, { exe: string; msi: string }> = {};
let wine: WinePrefix;

let mode: 'incremental' | 'full';

async function build(label: string, version: string, entry: Record<string, unknown>, c = config) {
  const r = await buildSiteInstallers({
    agent: agents[version]!,
    sites: validateSites([entry]).sites,
    config: c,
    signer,
    outDir: join(dir, `out-${label}`),
    incremental: mode === 'full' ? false : new ReleaseCache(),
  });
  expect(r.ok, JSON.stringify(r.results)).toBe(true);
  // the outputs under test are built the way this run says
  expect(r.results[0]!.build?.msi.mode).toBe(mode);
  built[label] = { exe: r.results[0]!.exe!, msi: r.results[0]!.msi! };
}

const winPath = (p: string) => `Z:${p.replace(/\//g, '\\')}`;

function expectSiteJson(expected: { key: string; keyVersion: number; version: string }) {
  const text = wine.readText(CONFIG);
  expect(text, 'site.json on the endpoint').toBeDefined();
  const doc = JSON.parse(text!);
  expect(doc).toMatchObject({
    siteCode: site.siteCode,
    serverUrl: site.serverUrl,
    company: site.company,
    siteName: site.siteName,
    department: site.department,
    deviceType: site.deviceType,
    tags: site.tags,
    version: expected.version,
    enrollment: {
      key: expected.key,
      keyVersion: expected.keyVersion,
      fingerprint: fingerprint(expected.key, expected.keyVersion).text,
    },
  });
}

function installedAgentSha(): string {
  const p = wine.hostPath(`${INSTALL_DIR}\\agent.exe`);
  return existsSync(p) ? createHash('sha256').update(readFileSync(p)).digest('hex') : '';
}

// every case runs on incrementally assembled installers (the normal path) and on full rebuilds
for (const m of ['incremental', 'full'] as const)
  describe.skipIf(!wineAvailable())(`installers on Wine (${m} builds, fresh 64-bit prefix)`, () => {
    beforeAll(async () => {
      mode = m;
      dir = tempDir('signet-e2e-');
      const prefix = makeWinePrefix(dir); // ~8 s, in parallel with the builds
      prefix.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
      const dc = await makeDevCert(join(dir, 'pki'));
      config = parseConfig(
        {
          signing: { defaultProfile: 'dev', profiles: { dev: dc.profile } },
          installers: {
            product: { vendor: 'Example Vendor', product: 'Agent', serviceName: SERVICE },
            cacheDir: join(dir, 'cache'),
          },
        },
        'e2e',
      );
      signer = createSigner(config);
      for (const v of ['1.2.3', '1.3.0']) {
        copyFileSync(
          await buildTestAgent({ version: v, serviceName: SERVICE }),
          join(dir, `agent-${v}-unsigned.exe`),
        );
        agents[v] = await signer.sign(join(dir, `agent-${v}-unsigned.exe`), {
          out: join(dir, `agent-${v}.exe`),
        });
      }
      const templated = templateSigningStats.files;
      await build('v1', '1.2.3', site);
      await build('v2', '1.3.0', site);
      await build('v2-rotated', '1.3.0', { ...site, enrollmentKey: KEY2, keyVersion: 2 });
      // osslsigncode signed the first PE and MSI of this signer; the upgrade and rotation outputs
      // were signed from its template (MSIs with the signature streams added in place)
      expect(templateSigningStats.files - templated).toBeGreaterThanOrEqual(5);
      // an agent whose install command fails (unknown command → exit 1)
      const failing = parseConfig(
        {
          ...structuredClone(config),
          installers: {
            ...config.installers,
            product: { ...config.installers.product, installArgs: ['bogus'] },
          },
        },
        'e2e-failing',
      );
      await build('failing', '1.2.3', { ...site, siteCode: 'E2E-FAIL' }, failing);
      wine = await prefix;
    }, 240_000);
    afterAll(async () => {
      await wine?.stop();
    });

    it('NSIS: silent install, upgrade in place, uninstall', async () => {
      let r = await wine.run(built['v1']!.exe, ['/S']);
      expect(r.exitCode).toBe(0);
      expect(installedAgentSha()).toBe(agents['1.2.3']!.sha256);
      expectSiteJson({ key: KEY1, keyVersion: 1, version: '1.2.3' });
      expect(await wine.serviceState(SERVICE)).toBe('RUNNING');
      // the uninstaller written on the endpoint is signed
      const uninst = wine.hostPath(`${INSTALL_DIR}\\uninst.exe`);
      expect((await signer.verify(uninst)).signature.dev).toBe(true);

      r = await wine.run(built['v2']!.exe, ['/S']);
      expect(r.exitCode).toBe(0);
      expect(installedAgentSha()).toBe(agents['1.3.0']!.sha256);
      expectSiteJson({ key: KEY1, keyVersion: 1, version: '1.3.0' });
      expect(await wine.serviceState(SERVICE)).toBe('RUNNING');

      // _?= keeps the uninstaller in place so the call waits for it
      r = await wine.run(`${INSTALL_DIR}\\uninst.exe`, ['/S', `_?=${INSTALL_DIR}`]);
      expect(r.exitCode).toBe(0);
      expect(await wine.serviceState(SERVICE)).toBeUndefined();
      expect(existsSync(wine.hostPath(`${INSTALL_DIR}\\agent.exe`))).toBe(false);
      expect(wine.readText(CONFIG)).toBeUndefined();
    });

    it('a failing agent install command gives meaningful exit codes and leaves no service', async () => {
      const nsis = await wine.run(built['failing']!.exe, ['/S']);
      expect(nsis.exitCode).toBe(4); // documented: the agent's install command failed
      expect(await wine.serviceState(SERVICE)).toBeUndefined();
      await wine.run(`${INSTALL_DIR}\\uninst.exe`, ['/S', `_?=${INSTALL_DIR}`]);
      const msi = await wine.run('msiexec', ['/i', winPath(built['failing']!.msi), '/qn']);
      // Windows: 1603; Wine reports a failed custom action as 1627 — both truncated to 8 bits
      expect([1603 & 0xff, 1627 & 0xff]).toContain(msi.exitCode);
      expect(await wine.serviceState(SERVICE)).toBeUndefined();
      expect(existsSync(wine.hostPath(`${INSTALL_DIR}\\agent.exe`))).toBe(false); // rolled back
    });

    it('MSI: silent install, upgrade in place, key rotation, downgrade refused, uninstall', async () => {
      let r = await wine.run('msiexec', ['/i', winPath(built['v1']!.msi), '/qn']);
      expect(r.exitCode).toBe(0);
      expect(installedAgentSha()).toBe(agents['1.2.3']!.sha256);
      expectSiteJson({ key: KEY1, keyVersion: 1, version: '1.2.3' });
      expect(await wine.serviceState(SERVICE)).toBe('RUNNING');

      r = await wine.run('msiexec', ['/i', winPath(built['v2']!.msi), '/qn']);
      expect(r.exitCode).toBe(0);
      expect(installedAgentSha()).toBe(agents['1.3.0']!.sha256);
      expect(await wine.serviceState(SERVICE)).toBe('RUNNING');

      // same version, rotated key: a fresh ProductCode replaces the config
      r = await wine.run('msiexec', ['/i', winPath(built['v2-rotated']!.msi), '/qn']);
      expect(r.exitCode).toBe(0);
      expectSiteJson({ key: KEY2, keyVersion: 2, version: '1.3.0' });
      expect(await wine.serviceState(SERVICE)).toBe('RUNNING');

      // an older build is refused (1603, truncated by Wine to 8 bits)
      r = await wine.run('msiexec', ['/i', winPath(built['v1']!.msi), '/qn']);
      expect(r.exitCode).not.toBe(0);
      expect(installedAgentSha()).toBe(agents['1.3.0']!.sha256);

      r = await wine.run('msiexec', ['/x', winPath(built['v2-rotated']!.msi), '/qn']);
      expect(r.exitCode).toBe(0);
      expect(await wine.serviceState(SERVICE)).toBeUndefined();
      expect(existsSync(wine.hostPath(`${INSTALL_DIR}\\agent.exe`))).toBe(false);
      expect(wine.readText(CONFIG)).toBeUndefined();
    });

    it('NSIS refuses a ProgramData folder that is a link (exit 8) before it writes anything; the MSI still installs', async () => {
      // Wine shows a host symbolic link as a reparse point: what a junction made by a standard user
      // looks like on Windows. (Owners cannot be shown: Wine owns everything by the one user, and its
      // icacls is a no-op; the owner checks are asserted on the script and the tables.)
      const vendorDir = wine.hostPath('C:\\ProgramData\\Example Vendor');
      const elsewhere = join(dir, 'attacker-owned');
      mkdirSync(elsewhere, { recursive: true });
      for (const [link, what] of [
        [join(vendorDir, 'Agent'), 'the configuration folder'],
        [vendorDir, 'the vendor folder'],
      ] as const) {
        rmSync(vendorDir, { recursive: true, force: true });
        mkdirSync(dirname(link), { recursive: true });
        symlinkSync(elsewhere, link);
        const r = await wine.run(built['v1']!.exe, ['/S']);
        expect(r.exitCode, what).toBe(8);
        expect(readdirSync(elsewhere), what).toEqual([]); // no site.json (nor a folder) through the link
        expect(existsSync(wine.hostPath(`${INSTALL_DIR}\\agent.exe`)), what).toBe(false);
        expect(await wine.serviceState(SERVICE), what).toBeUndefined();
      }
      rmSync(vendorDir, { recursive: true, force: true });
      // the MSI's check (PowerShell, which Wine only stubs with exit 0) lets a clean install through
      const r = await wine.run('msiexec', ['/i', winPath(built['v1']!.msi), '/qn']);
      expect(r.exitCode).toBe(0);
      expectSiteJson({ key: KEY1, keyVersion: 1, version: '1.2.3' });
      expect(await wine.serviceState(SERVICE)).toBe('RUNNING');
      expect((await wine.run('msiexec', ['/x', winPath(built['v1']!.msi), '/qn'])).exitCode).toBe(0);
    });
  });
