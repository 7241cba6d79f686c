/**
 * End to end from the service to the endpoint: the real service behind the real HTTP adapter
 * (test PKI, local TSA, pinned profile) takes a signed mingw service agent and a site, and the
 * per-site `.exe` and `.msi` it answers on GET /v1/sites/{site}/installers/{exe|msi} install
 * silently into one fresh 64-bit Wine prefix: the agent byte for byte, site.json byte for byte
 * what the service writes for that site and key, the agent's Windows service RUNNING; each
 * uninstall removes the service, the agent and site.json.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../../tools/lib/installers/fingerprint.ts';
import { serializeSiteJson, siteJson } from '../../tools/lib/installers/payload.ts';
import { makeServiceFixture, type ServiceFixture } from '../helpers/service-fixture.ts';
import { type HttpService, startHttpService } from '../helpers/service-http.ts';
import { tempDir } from '../helpers/tmp.ts';
import { makeWinePrefix, type WinePrefix, wineAvailable } from '../helpers/wine.ts';

// the demo agent registers this service; the product must say the same
const SERVICE = 'SignetSvcWineAgent';
const VERSION = '1.0.0';
// the fixture's product: vendor Acme, product Agent
const INSTALL_DIR = 'C:\\Program Files\\Acme\\Agent';
const CONFIG = 'C:\\ProgramData\\Acme\\Agent\\site.json';
const SITE_CODE = 'WINE-HQ';
const KEY = 'canary-svc-wine-enroll-key-5e8d1c0b';

const site = {
  serverUrl: 'https://rmm.example.com/enroll?x=1&y=2',
  company: `Q "uote" $PROGRAMFILES \${VENDOR} %SystemRoot% <x>&]]> \\ \n\u202E🦄`,
  siteName: 'Ω∑ Head office',
  department: 'ops',
  deviceType: 'server',
  tags: ['a', 'b;c', '$\\n'],
  keyVersion: 1,
  enrollmentKey: KEY,
};

let dir: string;
let fx: ServiceFixture;
let svc: HttpService;
let wine: WinePrefix;
let agentSha: string;
const downloaded: Record<'exe' | 'msi', string> = { exe: '', msi: '' };

const winPath = (p: string) => `Z:${p.replace(/\//g, '\\')}`;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The bytes the service's build writes as this site's site.json (no dev profile). */
function expectedSiteJson(): Buffer {
  const { enrollmentKey, keyVersion, ...labels } = site;
  return serializeSiteJson(
    siteJson(
      { siteCode: SITE_CODE, ...labels, enrollmentKey, keyVersion },
      fx.config.installers.product,
      VERSION,
      false,
    ),
  );
}

function expectInstalled(): void {
  const agent = wine.hostPath(`${INSTALL_DIR}\\agent.exe`);
  expect(existsSync(agent), 'agent.exe on the endpoint').toBe(true);
  expect(sha256(readFileSync(agent))).toBe(agentSha);
  const conf = wine.hostPath(CONFIG);
  expect(existsSync(conf), 'site.json on the endpoint').toBe(true);
  const bytes = readFileSync(conf);
  expect(bytes.toString('utf8')).toBe(expectedSiteJson().toString('utf8'));
  expect(bytes.equals(expectedSiteJson())).toBe(true);
  // and it says what was registered: the site's fields and the key, with the key's fingerprint
  expect(JSON.parse(bytes.toString('utf8'))).toMatchObject({
    siteCode: SITE_CODE,
    serverUrl: site.serverUrl,
    company: site.company,
    siteName: site.siteName,
    tags: site.tags,
    version: VERSION,
    enrollment: { key: KEY, keyVersion: 1, fingerprint: fingerprint(KEY, 1).text },
  });
}

async function expectRemoved(): Promise<void> {
  expect(await wine.serviceState(SERVICE)).toBeUndefined();
  expect(existsSync(wine.hostPath(`${INSTALL_DIR}\\agent.exe`))).toBe(false);
  expect(wine.readText(CONFIG)).toBeUndefined();
}

describe.skipIf(!wineAvailable())(
  'service installers on Wine (downloaded over HTTP, fresh 64-bit prefix)',
  () => {
    beforeAll(async () => {
      dir = tempDir('signet-svc-wine-');
      const prefix = makeWinePrefix(dir); // ~8 s, in parallel with the service and its builds
      prefix.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
      fx = await makeServiceFixture({ serviceName: SERVICE });
      svc = await startHttpService(fx);
      const agent = await fx.agent(VERSION);
      agentSha = sha256(readFileSync(agent));
      const rel = await svc.http.call({
        method: 'POST',
        path: `/v1/releases?version=${VERSION}&channel=stable`,
        token: svc.tokens['releases:write'],
        body: readFileSync(agent),
      });
      expect(rel.status, rel.text).toBe(201);
      const put = await svc.http.call({
        method: 'PUT',
        path: `/v1/sites/${SITE_CODE}`,
        token: svc.tokens['sites:write'],
        json: site,
      });
      expect(put.status, put.text).toBe(201);
      for (const kind of ['exe', 'msi'] as const) {
        const r = await svc.http.call({
          method: 'GET',
          path: `/v1/sites/${SITE_CODE}/installers/${kind}?channel=stable`,
          token: svc.tokens['installers:read'],
        });
        expect(r.status, r.text).toBe(200);
        expect(r.headers['etag']).toBe(`"${sha256(r.body)}"`);
        expect(r.headers['x-signet-key-version']).toBe('1');
        downloaded[kind] = join(dir, `${SITE_CODE}.${kind}`);
        writeFileSync(downloaded[kind], r.body);
      }
      wine = await prefix;
    }, 240_000);
    afterAll(async () => {
      await wine?.stop();
      await svc?.close();
    });

    it('the .exe installs silently (site.json as the service wrote it, service RUNNING) and uninstalls', async () => {
      let r = await wine.run(downloaded.exe, ['/S']);
      expect(r.exitCode, r.stderr).toBe(0);
      expectInstalled();
      expect(await wine.serviceState(SERVICE)).toBe('RUNNING');

      // _?= keeps the uninstaller in place so the call waits for it
      r = await wine.run(`${INSTALL_DIR}\\uninst.exe`, ['/S', `_?=${INSTALL_DIR}`]);
      expect(r.exitCode, r.stderr).toBe(0);
      await expectRemoved();
    }, 120_000);

    it('the .msi installs silently (site.json as the service wrote it, service RUNNING) and uninstalls', async () => {
      let r = await wine.run('msiexec', ['/i', winPath(downloaded.msi), '/qn']);
      expect(r.exitCode, r.stderr).toBe(0);
      expectInstalled();
      expect(await wine.serviceState(SERVICE)).toBe('RUNNING');

      r = await wine.run('msiexec', ['/x', winPath(downloaded.msi), '/qn']);
      expect(r.exitCode, r.stderr).toBe(0);
      await expectRemoved();
    }, 120_000);
  },
);
