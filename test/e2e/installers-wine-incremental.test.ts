/**
 * End to end on Wine, incremental NSIS: one stub per release (makensis once), each site a copy of
 * it with the site's data appended as an overlay, then signed. Installed silently into a fresh
 * 64-bit prefix: a damaged overlay (re-signed, so its signature is valid), a stub without one and
 * a record hidden after the certificate table are all refused with exit code 9 before anything is
 * written, and a changed byte in NSIS's own data block fails NSIS's CRC check; then install (site.json byte-equal to the input, service RUNNING, registry values from
 * the overlay), upgrade in place, same-version key rotation, uninstall.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedArtifact } from '../../tools/lib/artifact.ts';
import { parseConfig } from '../../tools/lib/config/load.ts';
import type { SignetConfig } from '../../tools/lib/config/schema.ts';
import { fingerprint } from '../../tools/lib/installers/fingerprint.ts';
import {
  assembleNsisSite,
  buildNsisStub,
  checkNsisSite,
  encodeOverlay,
  type NsisStub,
  OVERLAY_EXIT_CODE,
  readNsisOverlay,
  readNsisOverlayRecord,
} from '../../tools/lib/installers/nsis-incremental.ts';
import { serializeSiteJson, siteJson } from '../../tools/lib/installers/payload.ts';
import { type SignServer, startSignServer } from '../../tools/lib/installers/sign-server.ts';
import { validateSites } from '../../tools/lib/installers/site.ts';
import { BUILTIN_TEMPLATES, loadTemplate } from '../../tools/lib/installers/template.ts';
import { makeDevCert } from '../../tools/lib/sign/devcert.ts';
import { createSigner } from '../../tools/lib/sign/index.ts';
import type { Signer } from '../../tools/lib/sign/types.ts';
import { buildTestAgent } from '../helpers/agent.ts';
import { tempDir } from '../helpers/tmp.ts';
import { makeWinePrefix, type WinePrefix, wineAvailable } from '../helpers/wine.ts';

const SERVICE = 'SignetTestAgent';
const INSTALL_DIR = 'C:\\Program Files\\Example Vendor\\Agent';
const CONFIG_DIR = 'C:\\ProgramData\\Example Vendor\\Agent';
const CONFIG = `${CONFIG_DIR}\\site.json`;
const UNINST_KEY = 'HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Example Vendor Agent';
const KEY1 = 'canary-e2e-incr-key-one-0123456789';
const KEY2 = 'canary-e2e-incr-key-two-9876543210';

const site = {
  siteCode: 'E2E-INC',
  serverUrl: 'https://rmm.example.com',
  company: `Q "uote" $PROGRAMFILES \${VENDOR} %SystemRoot% <x>&]]> \\ \n\u202E🦄 SIGNETSJ`,
  siteName: 'Ω'.repeat(10_000),
  department: '!include evil.nsh',
  deviceType: 'server',
  tags: ['a', 'b;c', '$\\n'],
  enrollmentKey: KEY1,
  keyVersion: 1,
};

let dir: string;
let config: SignetConfig;
let signer: Signer;
let signServer: SignServer;
let wine: WinePrefix;
const agents: Record<string, SignedArtifact> = {};
const stubs: Record<string, NsisStub> = {};
/** label → the signed installer and the site.json it carries */
const built: Record<string, { exe: string; siteJson: Buffer }> = {};

async function makeStub(version: string): Promise<NsisStub> {
  const work = join(dir, `stub-${version}`);
  mkdirSync(work);
  const stub = await buildNsisStub({
    shared: {
      agent: agents[version]!,
      version,
      product: config.installers.product,
      installers: config.installers,
      nsis: loadTemplate(BUILTIN_TEMPLATES.nsis),
      signServer,
    },
    work,
  });
  return stub!;
}

async function assemble(label: string, version: string, entry: Record<string, unknown>) {
  const s = validateSites([entry]).sites[0]!;
  const bytes = serializeSiteJson(siteJson(s, config.installers.product, version, true));
  const unsigned = join(dir, `${label}-unsigned.exe`);
  await assembleNsisSite(stubs[version]!, bytes, unsigned);
  const exe = await signer.sign(unsigned, { out: join(dir, `${label}.exe`) });
  await checkNsisSite(stubs[version]!, exe.path, bytes);
  built[label] = { exe: exe.path, siteJson: bytes };
}

function installedAgentSha(): string {
  const p = wine.hostPath(`${INSTALL_DIR}\\agent.exe`);
  return existsSync(p) ? createHash('sha256').update(readFileSync(p)).digest('hex') : '';
}

function installedSiteJson(): Buffer | undefined {
  const p = wine.hostPath(CONFIG);
  return existsSync(p) ? readFileSync(p) : undefined;
}

async function registry(name: string): Promise<string | undefined> {
  const r = await wine.run('reg', ['query', UNINST_KEY, '/v', name]);
  return new RegExp(`${name}\\s+REG_SZ\\s+(.*?)\\s*$`, 'm').exec(r.stdout)?.[1];
}

async function expectNothingWritten(what: string) {
  expect(existsSync(wine.hostPath(`${INSTALL_DIR}\\agent.exe`)), what).toBe(false);
  expect(existsSync(wine.hostPath(CONFIG_DIR)), what).toBe(false);
  expect(await wine.serviceState(SERVICE), what).toBeUndefined();
}

describe.skipIf(!wineAvailable())('incremental NSIS installers on Wine (fresh 64-bit prefix)', () => {
  beforeAll(async () => {
    dir = tempDir('signet-e2e-incr-');
    const prefix = makeWinePrefix(dir); // ~8 s, in parallel with the builds
    prefix.catch(() => undefined);
    const dc = await makeDevCert(join(dir, 'pki'));
    config = parseConfig(
      {
        signing: { defaultProfile: 'dev', profiles: { dev: dc.profile } },
        installers: {
          product: { vendor: 'Example Vendor', product: 'Agent', serviceName: SERVICE },
          cacheDir: join(dir, 'cache'),
        },
      },
      'e2e-incr',
    );
    signer = createSigner(config);
    signServer = await startSignServer(signer);
    for (const v of ['1.2.3', '1.3.0']) {
      copyFileSync(
        await buildTestAgent({ version: v, serviceName: SERVICE }),
        join(dir, `agent-${v}-unsigned.exe`),
      );
      agents[v] = await signer.sign(join(dir, `agent-${v}-unsigned.exe`), {
        out: join(dir, `agent-${v}.exe`),
      });
      stubs[v] = await makeStub(v);
    }
    await assemble('v1', '1.2.3', site);
    await assemble('v2', '1.3.0', site);
    await assemble('v2-rotated', '1.3.0', { ...site, enrollmentKey: KEY2, keyVersion: 2 });

    // a damaged overlay under a valid signature: flip a byte of site.json, strip, re-sign
    const rec = readNsisOverlayRecord(built['v1']!.exe)!;
    const flipped = readFileSync(built['v1']!.exe);
    flipped[rec.start + 10]! ^= 0x01;
    writeFileSync(join(dir, 'tampered-signed.exe'), flipped);
    const strip = spawnSync('osslsigncode', [
      'remove-signature',
      '-in',
      join(dir, 'tampered-signed.exe'),
      '-out',
      join(dir, 'tampered-unsigned.exe'),
    ]);
    expect(strip.status, String(strip.stderr)).toBe(0);
    await signer.sign(join(dir, 'tampered-unsigned.exe'), { out: join(dir, 'tampered.exe') }); // verifies
    expect(readNsisOverlay(join(dir, 'tampered.exe'))).toBeUndefined();

    // a changed byte inside NSIS's own data block (the compressed agent), re-signed: NSIS's CRC
    const inBlock = readFileSync(join(dir, 'v1-unsigned.exe'));
    inBlock[Math.floor(stubs['1.2.3']!.size / 2)]! ^= 0x01;
    writeFileSync(join(dir, 'crc-unsigned.exe'), inBlock);
    await signer.sign(join(dir, 'crc-unsigned.exe'), { out: join(dir, 'crc.exe') });
    expect(readNsisOverlay(join(dir, 'crc.exe'))).toEqual(built['v1']!.siteJson); // the overlay is fine

    // the stub itself, signed: no overlay at all
    await signer.sign(stubs['1.2.3']!.path, { out: join(dir, 'bare.exe') });
    // a valid record, but after the certificate table: never read
    copyFileSync(join(dir, 'bare.exe'), join(dir, 'after-table.exe'));
    appendFileSync(
      join(dir, 'after-table.exe'),
      encodeOverlay(built['v1']!.siteJson, { siteCode: site.siteCode, fingerprint: 'v1 (0000)' }, 0),
    );
    wine = await prefix;
  }, 240_000);
  afterAll(async () => {
    await wine?.stop();
    await signServer?.close();
  });

  it(`refuses a damaged, missing or misplaced overlay with exit code ${OVERLAY_EXIT_CODE}, writing nothing`, async () => {
    for (const [file, what] of [
      ['tampered.exe', 'a changed byte in site.json (re-signed: the signature is valid; the CRC is not)'],
      ['bare.exe', 'the stub without an overlay'],
      ['after-table.exe', 'a record after the certificate table'],
    ] as const) {
      const r = await wine.run(join(dir, file), ['/S']);
      expect(r.exitCode, what).toBe(OVERLAY_EXIT_CODE);
      await expectNothingWritten(what);
    }
  });

  it("NSIS's own CRC check stays on: a changed byte in its data block fails, the overlay does not disturb it", async () => {
    const r = await wine.run(join(dir, 'crc.exe'), ['/S']);
    expect(r.exitCode).not.toBe(0);
    expect(r.exitCode).not.toBe(OVERLAY_EXIT_CODE);
    await expectNothingWritten('a changed byte in the NSIS data block');
  });

  it('installs, upgrades in place, rotates the key at the same version, uninstalls', async () => {
    let r = await wine.run(built['v1']!.exe, ['/S']);
    expect(r.exitCode).toBe(0);
    expect(installedAgentSha()).toBe(agents['1.2.3']!.sha256);
    expect(installedSiteJson()).toEqual(built['v1']!.siteJson);
    expect(await wine.serviceState(SERVICE)).toBe('RUNNING');
    expect(await registry('SiteCode')).toBe(site.siteCode);
    expect(await registry('EnrollmentKeyFingerprint')).toBe(fingerprint(KEY1, 1).text);
    // the uninstaller written on the endpoint is the one signed when the stub was built
    const uninst = wine.hostPath(`${INSTALL_DIR}\\uninst.exe`);
    expect((await signer.verify(uninst)).sha256).toBe(stubs['1.2.3']!.uninstaller.sha256);

    r = await wine.run(built['v2']!.exe, ['/S']);
    expect(r.exitCode).toBe(0);
    expect(installedAgentSha()).toBe(agents['1.3.0']!.sha256);
    expect(installedSiteJson()).toEqual(built['v2']!.siteJson);
    expect(await wine.serviceState(SERVICE)).toBe('RUNNING');

    r = await wine.run(built['v2-rotated']!.exe, ['/S']);
    expect(r.exitCode).toBe(0);
    expect(installedSiteJson()).toEqual(built['v2-rotated']!.siteJson);
    expect(JSON.parse(installedSiteJson()!.toString('utf8')).enrollment.key).toBe(KEY2);
    expect(await registry('EnrollmentKeyFingerprint')).toBe(fingerprint(KEY2, 2).text);
    expect(await wine.serviceState(SERVICE)).toBe('RUNNING');

    r = await wine.run(`${INSTALL_DIR}\\uninst.exe`, ['/S', `_?=${INSTALL_DIR}`]);
    expect(r.exitCode).toBe(0);
    expect(await wine.serviceState(SERVICE)).toBeUndefined();
    expect(existsSync(wine.hostPath(`${INSTALL_DIR}\\agent.exe`))).toBe(false);
    expect(installedSiteJson()).toBeUndefined();
  });
});
