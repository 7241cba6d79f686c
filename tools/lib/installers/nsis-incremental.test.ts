/**
 * Incremental NSIS: the overlay format (synthetic PE files: round trip, every corruption refused,
 * nothing after the certificate table read, fuzz), then the real thing — a stub built once by
 * makensis around a real mingw agent, two sites with hostile labels assembled, signed with the
 * test PKI and verified by osslsigncode, read back, extracted with 7z.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NASTY as BASE_NASTY, LONG } from '../../../test/helpers/hostile-labels.ts';
import { signedTestAgent } from '../../../test/helpers/site-installers.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import type { SignedArtifact } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import { defaultRunner, sha256File } from '../exec/runner.ts';
import type { DevCert } from '../sign/devcert.ts';
import { peKnownPrefix } from '../sign/pe-image.ts';
import type { Signer } from '../sign/types.ts';
import { extractNsis, listFiles, sha256Of } from './checks.ts';
import { fingerprint } from './fingerprint.ts';
import {
  assembleNsisSite,
  buildNsisStub,
  checkNsisSite,
  DEFAULT_MAX_OVERLAY_BYTES,
  encodeOverlay,
  type NsisStub,
  type NsisStubShared,
  OVERLAY_META_BYTES,
  OVERLAY_TRAILER_BYTES,
  overlayMaxOf,
  parseOverlay,
  peLayout,
  readNsisOverlay,
  readNsisOverlayRecord,
  siteMetaOf,
  supportsOverlay,
} from './nsis-incremental.ts';
import { serializeSiteJson, siteJson } from './payload.ts';
import { type SignServer, startSignServer } from './sign-server.ts';
import { validateSites } from './site.ts';
import { BUILTIN_TEMPLATES, type LoadedTemplate, loadTemplate } from './template.ts';

// the hostile labels of build.test.ts
const NASTY = [
  ...BASE_NASTY,
  // what looks like the trailer itself
  'SIGNETSJ\u0001\u0002SIGNETSJ',
];

const siteA = {
  siteCode: 'ACME-HQ',
  serverUrl: 'https://rmm.example.com/enroll?x=1&y=2',
  company: NASTY.join(' | '),
  siteName: LONG,
  department: NASTY[3],
  deviceType: NASTY[4],
  tags: [...NASTY, LONG, ''],
  enrollmentKey: 'canary-incr-A-1f2e3d4c5b6a7988',
  keyVersion: 3,
};
const siteB = {
  siteCode: 'b2',
  serverUrl: 'https://rmm.example.com',
  company: 'Bee',
  enrollmentKey: 'canary-incr-B-8899aabbccddeeff',
  keyVersion: 1,
};

/** A minimal PE32+ (or PE32) head with `body` bytes after it, security directory as given. */
function fakePe(body: number, opts: { pe32?: boolean; cert?: [number, number] } = {}): Buffer {
  const b = Buffer.alloc(1024 + body);
  b.write('MZ', 0, 'latin1');
  b.writeInt32LE(0x80, 0x3c);
  b.writeUInt32LE(0x4550, 0x80);
  const opt = 0x80 + 24;
  b.writeUInt16LE(opts.pe32 ? 224 : 240, 0x80 + 20);
  b.writeUInt16LE(opts.pe32 ? 0x10b : 0x20b, opt);
  b.writeInt32LE(16, opt + (opts.pe32 ? 92 : 108));
  if (opts.cert) {
    b.writeInt32LE(opts.cert[0], opt + (opts.pe32 ? 128 : 144));
    b.writeInt32LE(opts.cert[1], opt + (opts.pe32 ? 132 : 148));
  }
  return b;
}

const META = { siteCode: 'ACME-HQ', fingerprint: 'v3 (7F2A)' };
const SJ = Buffer.from('{"siteCode":"ACME-HQ","x":"SIGNETSJ"}\n');

describe('overlay format', () => {
  it('round-trips in PE32+ and PE32, unsigned (to the end of the file) and signed (to the certificate table)', () => {
    for (const pe32 of [false, true]) {
      const base = fakePe(13, { pe32 });
      const rec = encodeOverlay(SJ, META, base.length);
      expect((base.length + rec.length) % 8).toBe(0); // a signer adds no padding before its table
      const unsigned = Buffer.concat([base, rec]);
      expect(parseOverlay(unsigned)).toMatchObject({ siteJson: SJ, ...META, end: unsigned.length });
      // signed: the security directory points just after the record; the table is never read
      const cert = Buffer.alloc(40, 0xee);
      const signed = Buffer.concat([unsigned, cert]);
      const opt = 0x80 + 24 + (pe32 ? 128 : 144);
      signed.writeInt32LE(unsigned.length, opt);
      signed.writeInt32LE(cert.length, opt + 4);
      expect(parseOverlay(signed)?.siteJson).toEqual(SJ);
    }
  });

  it('never reads past the certificate table, nor a table outside the file', () => {
    const base = fakePe(16);
    const rec = encodeOverlay(SJ, META, base.length);
    // a valid record after the table: invisible
    const file = Buffer.concat([base, Buffer.alloc(40, 0xee), rec]);
    const opt = 0x80 + 24 + 144;
    file.writeInt32LE(base.length, opt);
    file.writeInt32LE(40, opt + 4);
    expect(parseOverlay(file)).toBeUndefined();
    // a table that claims to run past the end of the file: not a PE the script accepts
    const good = Buffer.concat([base, rec, Buffer.alloc(8)]);
    good.writeInt32LE(base.length + rec.length, opt);
    good.writeInt32LE(9, opt + 4);
    expect(parseOverlay(good)).toBeUndefined();
    good.writeInt32LE(8, opt + 4);
    expect(parseOverlay(good)?.siteJson).toEqual(SJ);
  });

  it('refuses every changed byte of the record, a wrong format, an oversize or missing record', () => {
    const base = fakePe(0);
    const rec = encodeOverlay(SJ, META, base.length);
    const file = Buffer.concat([base, rec]);
    const pad = rec.length - SJ.length - OVERLAY_META_BYTES - OVERLAY_TRAILER_BYTES;
    for (let i = base.length + pad; i < file.length; i++) {
      const bad = Buffer.from(file);
      bad[i]! ^= 0x01;
      expect(parseOverlay(bad), `byte ${i - base.length - pad} of the record`).toBeUndefined();
    }
    expect(parseOverlay(base)).toBeUndefined(); // no record
    expect(parseOverlay(file.subarray(0, file.length - 1))).toBeUndefined(); // truncated
    expect(parseOverlay(file, SJ.length - 1)).toBeUndefined(); // over the limit
    expect(parseOverlay(Buffer.concat([file, Buffer.alloc(8)]))).toBeUndefined(); // not at the end
    const notPe = Buffer.from(file);
    notPe.write('ZM', 0, 'latin1');
    expect(parseOverlay(notPe)).toBeUndefined();
  });

  it('never throws on random or randomly damaged input (fuzz)', () => {
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const base = Buffer.concat([fakePe(100), encodeOverlay(SJ, META, 1124)]);
    for (let n = 0; n < 2000; n++) {
      const b = n % 2 ? Buffer.from(base) : Buffer.alloc(rnd() % 3000);
      for (let k = 0; k < 1 + (rnd() % 8); k++) if (b.length) b[rnd() % b.length] = rnd() & 0xff;
      const r = parseOverlay(b);
      if (r) expect(r.siteJson).toEqual(SJ); // whatever survives is the real record
    }
  });

  it('takes site code and fingerprint from site.json, validated', () => {
    expect(siteMetaOf(Buffer.from('{"siteCode":"A-1","enrollment":{"fingerprint":"v12 (00FF)"}}'))).toEqual({
      siteCode: 'A-1',
      fingerprint: 'v12 (00FF)',
    });
    for (const bad of [
      'nope',
      '{"siteCode":"a b","enrollment":{"fingerprint":"v1 (0000)"}}',
      '{"siteCode":"a"}',
    ])
      expect(() => siteMetaOf(Buffer.from(bad))).toThrow(/site.json/);
  });

  it('detects the template marker and its limit', () => {
    const builtin = loadTemplate(BUILTIN_TEMPLATES.nsis).text;
    expect(supportsOverlay(builtin)).toBe(true);
    expect(overlayMaxOf(builtin)).toBe(DEFAULT_MAX_OVERLAY_BYTES);
    expect(supportsOverlay(builtin.replace(/^!define SIGNET_OVERLAY 1$/m, ''))).toBe(false);
    expect(supportsOverlay('; !define SIGNET_OVERLAY 1')).toBe(false);
    expect(overlayMaxOf('!define SIGNET_OVERLAY_MAX 4096')).toBe(4096);
  });
});

let dir: string;
let dc: DevCert;
let config: SignetConfig;
let signer: Signer;
let agent: SignedArtifact;
let signServer: SignServer;
let shared: NsisStubShared;
let stub: NsisStub;

const sites = () => {
  const r = validateSites([siteA, siteB], { dev: true });
  expect(r.problems).toEqual([]);
  return r.sites;
};
const bytesOf = (s: ReturnType<typeof sites>[number]) =>
  serializeSiteJson(siteJson(s, config.installers.product, '1.2.3', true));

function osslVerify(file: string) {
  return spawnSync('osslsigncode', ['verify', '-CAfile', dc.caCert, '-in', file], { encoding: 'utf8' });
}

describe('stub + overlay with the real tools', () => {
  beforeAll(async () => {
    dir = tempDir('signet-incr-');
    ({ pki: dc, config, signer, agent } = await signedTestAgent(dir));
    signServer = await startSignServer(signer);
    shared = {
      agent,
      version: '1.2.3',
      product: config.installers.product,
      installers: config.installers,
      nsis: loadTemplate(BUILTIN_TEMPLATES.nsis),
      signServer,
    };
    mkdirSync(join(dir, 'stub'));
    stub = (await buildNsisStub({ shared, work: join(dir, 'stub') }))!;
  });
  afterAll(async () => {
    await signServer?.close();
  });

  it('builds an unsigned stub with the agent and the signed uninstaller, and no site data', async () => {
    expect(stub).toBeDefined();
    expect(stub.agentSha256).toBe(agent.sha256);
    expect(stub.uninstaller.signature.leafSha256).toBe(dc.leafSha256);
    expect(readNsisOverlay(stub.path)).toBeUndefined();
    expect(peLayout(readFileSync(stub.path).subarray(0, 4096), stub.size)?.certOffset).toBe(0);
    expect(stub.key).toMatch(/^[0-9a-f]{64}$/);
  });

  it('two hostile sites: assembled, signed, verified; the overlay reads back; 7z gives the agent byte for byte', async () => {
    for (const s of sites()) {
      const sj = bytesOf(s);
      const unsigned = join(dir, `${s.siteCode}-unsigned.exe`);
      await assembleNsisSite(stub, sj, unsigned);
      expect(statSync(unsigned).mode & 0o777).toBe(0o600); // it holds the enrollment key
      expect(readNsisOverlay(unsigned)).toEqual(sj);
      const signed = await signer.sign(unsigned, { out: join(dir, `${s.siteCode}.exe`), prefix: stub.path });
      expect(osslVerify(signed.path).status).toBe(0);
      // its file hash found the whole stub in it, but the two fields signing sets
      const fields = peLayout(readFileSync(stub.path).subarray(0, 4096), stub.size)!;
      expect(signed.sharedPrefix).toEqual({
        length: stub.size,
        sha256: stub.sha256,
        except: [
          [fields.checksumAt, 4],
          [fields.securityDirAt, 8],
        ],
      });
      await checkNsisSite(stub, signed.path, sj, signed.sharedPrefix);
      expect(signed.signature.leafSha256).toBe(dc.leafSha256);
      // the signer appended its table right after the record (no padding in between)
      const layout = peLayout(readFileSync(signed.path).subarray(0, 4096), signed.size)!;
      expect(layout.certOffset).toBe(statSync(unsigned).size);
      expect(readNsisOverlay(signed.path)).toEqual(sj);
      expect(readNsisOverlayRecord(signed.path)).toMatchObject({
        siteCode: s.siteCode,
        fingerprint: fingerprint(s.enrollmentKey, s.keyVersion).text,
      });
      await checkNsisSite(stub, signed.path, sj);
      // 7z still opens it: the agent byte-identical, the signed uninstaller, no site.json
      const x = join(dir, `x-${s.siteCode}`);
      await extractNsis(defaultRunner, signed.path, x);
      const files = listFiles(x);
      const name = (f: string) => f.split('/').pop()!;
      expect(sha256Of(files.find((f) => name(f) === 'agent.exe')!)).toBe(agent.sha256);
      expect(sha256Of(files.find((f) => name(f) === 'uninst.exe')!)).toBe(stub.uninstaller.sha256);
      expect(files.some((f) => name(f) === 'site.json')).toBe(false);
    }
  });

  it('a flipped byte in the overlay of a signed installer fails osslsigncode verify (it is in the signed range)', async () => {
    const s = sites()[1]!;
    const sj = bytesOf(s);
    const signed = join(dir, `${s.siteCode}.exe`);
    const rec = readNsisOverlayRecord(signed)!;
    const bad = readFileSync(signed);
    bad[rec.start + 5]! ^= 0x20;
    const tampered = join(dir, 'tampered.exe');
    writeFileSync(tampered, bad);
    const v = osslVerify(tampered);
    expect(v.status).not.toBe(0);
    expect(v.stdout + v.stderr).toMatch(/MISMATCH/);
    await expect(signer.verify(tampered)).rejects.toThrow();
    expect(readNsisOverlay(tampered)).toBeUndefined(); // and the CRC catches it too
    await expect(checkNsisSite(stub, tampered, sj)).rejects.toMatchObject({
      code: 'E_INSTALLER_CHECK_FAILED',
    });
    // a byte of the stub changed: the file hash finds no shared stub, and the check reads it
    const inStub = Buffer.from(readFileSync(signed));
    inStub[stub.size - 100]! ^= 1;
    const stubTampered = join(dir, 'stub-tampered.exe');
    writeFileSync(stubTampered, inStub);
    const found = await sha256File(stubTampered, peKnownPrefix(stub.path));
    expect(found.shared).toBeUndefined();
    await expect(checkNsisSite(stub, stubTampered, sj, found.shared)).rejects.toThrow(/not the stub/);
    // a finding that is not this stub's is not taken
    const fields = peLayout(inStub.subarray(0, 4096), inStub.length)!;
    const wrong = {
      length: stub.size,
      sha256: '0'.repeat(64),
      except: [
        [fields.checksumAt, 4],
        [fields.securityDirAt, 8],
      ] as [number, number][],
    };
    await expect(checkNsisSite(stub, stubTampered, sj, wrong)).rejects.toThrow(/not the stub/);
    // a foreign site's data, or the stub of another build, is not this site's installer
    await expect(checkNsisSite(stub, signed, bytesOf(sites()[0]!))).rejects.toMatchObject({
      code: 'E_INSTALLER_CHECK_FAILED',
    });
  });

  it('refuses an oversize site.json (E_TOO_LARGE), an existing output, a changed stub', async () => {
    const sj = bytesOf(sites()[1]!);
    await expect(
      assembleNsisSite({ ...stub, maxOverlayBytes: 64 }, sj, join(dir, 'big.exe')),
    ).rejects.toMatchObject({
      code: 'E_TOO_LARGE',
    });
    await expect(assembleNsisSite(stub, sj, join(dir, 'b2-unsigned.exe'))).rejects.toMatchObject({
      code: 'E_FILE_EXISTS',
    });
    const copy = join(dir, 'stub-copy.exe');
    const b = readFileSync(stub.path);
    b[1000]! ^= 1;
    writeFileSync(copy, b);
    await expect(assembleNsisSite({ ...stub, path: copy }, sj, join(dir, 'c.exe'))).rejects.toMatchObject({
      code: 'E_INSTALLER_CHECK_FAILED',
    });
  });

  it('a template without the overlay marker gets no stub (the caller builds in full)', async () => {
    const custom: LoadedTemplate = {
      ...shared.nsis,
      text: shared.nsis.text.replace(/^!define SIGNET_OVERLAY 1$/m, ''),
      sha256: 'x',
    };
    mkdirSync(join(dir, 'stub-custom'));
    expect(
      await buildNsisStub({ shared: { ...shared, nsis: custom }, work: join(dir, 'stub-custom') }),
    ).toBeUndefined();
  });

  it('a template that declares the marker but still embeds site.json fails closed', async () => {
    const custom: LoadedTemplate = {
      ...shared.nsis,
      text: shared.nsis.text.replace(
        'Call SignetWriteSiteJson',
        'File "/oname=site.json" "payload\\site.json"',
      ),
      sha256: 'y',
    };
    mkdirSync(join(dir, 'stub-bad'));
    await expect(
      buildNsisStub({ shared: { ...shared, nsis: custom }, work: join(dir, 'stub-bad') }),
    ).rejects.toMatchObject({
      code: 'E_INSTALLER_BUILD_FAILED',
    });
  });
});
