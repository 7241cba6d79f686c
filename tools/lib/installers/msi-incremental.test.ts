/**
 * The incremental MSI against the real tools: a base built once (wixl, gcab, msibuild), a site
 * assembled in place; msiextract returns site.json exactly and the agent byte for byte, the lint
 * passes, osslsigncode signs and verifies it, and its tables equal a full rebuild's of the same
 * site except the per-site fields. Plus the fallbacks, the site cabinet, and the stream layouts.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestAgent } from '../../../test/helpers/agent.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { testWixValues } from '../../../test/helpers/wix-values.ts';
import { readCompoundDirectory } from '../cfb.ts';
import { defaultRunner, sha256File } from '../exec/runner.ts';
import { msiHashOrder, msiImageDigest, msiSharedStreams, writeSignedMsi } from '../sign/msi-image.ts';
import { cabChecksum, readCabinetFile, writeCabinet } from './cab.ts';
import { comparePayload, extractMsi, sha256Of } from './checks.ts';
import { productConfigSchema } from './config.ts';
import { lintMsi, renderWix, runWixl, WIX_SOURCE } from './msi.ts';
import { encodeStreamName, withMsiDatabase } from './msi-db.ts';
import {
  assembleMsiSite,
  buildMsiBase,
  checkMsiSite,
  firstInHashOrder,
  type MsiBase,
  msiFileHash,
  msiSlotSize,
} from './msi-incremental.ts';
import { placeSharedFirst } from './msi-patch.ts';
import { BUILTIN_TEMPLATES, type LoadedTemplate, loadTemplate } from './template.ts';

const product = productConfigSchema.parse({
  vendor: 'Example Vendor',
  product: 'Agent',
  serviceName: 'SignetTestAgent',
  msiService: 'agentCommand',
});
const site = { siteCode: 'ACME-HQ', keyVersion: 3, fingerprintHex: '7F2A' };
const siteJson = Buffer.from(
  `${JSON.stringify({ siteCode: 'ACME-HQ', name: 'Ω∑'.repeat(3000), key: 'k' })}\n`,
);

let dir: string;
let agent: string;
let pki: TestPki;
let base: MsiBase;
let template: LoadedTemplate;

const releaseValues = () => {
  const v: Record<string, string> = testWixValues('agentCommand');
  for (const k of ['PRODUCT_CODE', 'SITE_CODE', 'KEY_VERSION', 'FINGERPRINT_HEX']) delete v[k];
  return v;
};

async function exportTables(msi: string): Promise<Record<string, string>> {
  const names = (await defaultRunner.run('msiinfo', ['tables', msi])).stdout.split('\n').filter(Boolean);
  const out: Record<string, string> = {};
  for (const t of names) out[t] = (await defaultRunner.run('msiinfo', ['export', msi, t])).stdout;
  return out;
}

async function sign(input: string, out: string) {
  await defaultRunner.run('osslsigncode', [
    'sign',
    '-certs',
    pki.cert,
    '-key',
    pki.key,
    '-h',
    'sha256',
    '-in',
    input,
    '-out',
    out,
  ]);
  await defaultRunner.run('osslsigncode', ['verify', '-CAfile', pki.caCert, '-in', out]);
}

beforeAll(async () => {
  dir = tempDir('signet-msi-inc-');
  pki = await makeTestPki(join(dir, 'pki'));
  agent = join(dir, 'agent.exe');
  copyFileSync(await buildTestAgent({ version: '1.2.3' }), agent);
  template = loadTemplate(BUILTIN_TEMPLATES.wix);
  const b = await buildMsiBase({
    template,
    values: releaseValues(),
    product,
    agentPath: agent,
    agentSha256: sha256Of(agent),
    agentFileName: 'agent.exe',
    slot: msiSlotSize(siteJson.length),
    work: join(dir, 'base'),
    runner: defaultRunner,
    key: 'test',
  });
  if ('fallback' in b) throw new Error(b.fallback);
  base = b;
}, 120_000);

describe('incremental MSI', () => {
  it('a site assembled from the base carries its site.json exactly and the agent byte for byte, lints, signs and verifies', async () => {
    const out = join(dir, 'site.msi');
    const r = await assembleMsiSite(base, site, siteJson, out);
    if ('fallback' in r) throw new Error(r.fallback);
    const lint = await lintMsi(out, {
      product,
      upgradeCode: testWixValues().UPGRADE_CODE!,
      version: '1.2.3',
      agentSize: readFileSync(agent).length,
      siteJsonSize: siteJson.length,
    });
    expect(lint).toEqual([]);
    await sign(out, join(dir, 'site-signed.msi'));
    await extractMsi(defaultRunner, join(dir, 'site-signed.msi'), join(dir, 'x'));
    await comparePayload(
      'site-signed.msi',
      join(dir, 'x'),
      { agentFileName: 'agent.exe', agentSha256: sha256Of(agent), siteJson },
      false,
    );
    // the in-process per-site check agrees with the extraction, and refuses another site's data
    // or a cabinet that differs from the base's
    checkMsiSite(base, join(dir, 'site-signed.msi'), siteJson);
    expect(() => checkMsiSite(base, join(dir, 'site-signed.msi'), Buffer.from('{"other":1}\n'))).toThrow(
      /site\.json/,
    );
    const other = join(dir, 'other.msi');
    const r2 = await assembleMsiSite(base, { ...site, siteCode: 'OTHER' }, Buffer.from('{"x":1}\n'), other);
    if ('fallback' in r2) throw new Error(r2.fallback);
    expect(() => checkMsiSite(base, other, siteJson)).toThrow(/site\.json/);
    // one byte changed in the middle of the agent's cabinet stream (found through the directory)
    const tampered = join(dir, 'tampered.msi');
    const bytes = readFileSync(join(dir, 'site-signed.msi'));
    const cabinet = Object.keys(base.cabinets)[0]!;
    const layout = withMsiDatabase(join(dir, 'site-signed.msi'), (db) =>
      db.directory.layouts.get(db.rawStreamName(cabinet)!)!(),
    );
    expect(layout.mini).toBe(false);
    bytes[layout.units[Math.floor(layout.units.length / 2)]! + 100]! ^= 1;
    writeFileSync(tampered, bytes);
    expect(() => checkMsiSite(base, tampered, siteJson)).toThrow(/differs from the base/);
    const info = (await defaultRunner.run('msiinfo', ['suminfo', out])).stdout;
    expect(info).toContain(`{${r.packageCode}}`);
    expect(info).toContain('Comments: Site ACME-HQ, enrollment key v3 (7F2A)');
  }, 60_000);

  it("its tables equal a full rebuild's of the same site, except the per-site fields", async () => {
    const out = join(dir, 'cmp.msi');
    const r = await assembleMsiSite(base, site, siteJson, out);
    if ('fallback' in r) throw new Error(r.fallback);
    const work = join(dir, 'full');
    mkdirSync(join(work, 'payload'), { recursive: true });
    copyFileSync(agent, join(work, 'payload', 'agent.exe'));
    writeFileSync(join(work, 'payload', 'site.json'), siteJson);
    const values = {
      ...releaseValues(),
      PRODUCT_CODE: r.productCode,
      SITE_CODE: site.siteCode,
      KEY_VERSION: String(site.keyVersion),
      FINGERPRINT_HEX: site.fingerprintHex,
    };
    writeFileSync(join(work, WIX_SOURCE), renderWix(template.text, values, 't.wxs'));
    const full = await runWixl({ runner: defaultRunner, workDir: work, product });
    const [a, b] = [await exportTables(out), await exportTables(full)];
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    // by design: the site's file on its own embedded cabinet (Media 2), the agent's cabinet named
    // to come first in Authenticode's hash order; everything else is equal, ProductCode included
    // (the same fresh GUID was given to the full build)
    expect(a['Media']).toBe(
      'DiskId\tLastSequence\tDiskPrompt\tCabinet\tVolumeLabel\tSource\r\ni2\ti4\tL64\tS255\tS32\tS72\r\nMedia\tDiskId\r\n1\t1\t\t#00payload.cab\t\t\r\n2\t2\t\t#site.cab\t\t\r\n',
    );
    expect(b['Media']).toContain('\t#payload.cab\t');
    expect(base.unchanged).toHaveLength(1);
    expect(msiHashOrder(base.unchanged[0]!, '\u0005SummaryInformation')).toBeLessThan(0);
    // the summary as a table: PackageCode (9) and the build times (12, 13) are per build
    const noPerBuild = (text: string) => text.replace(/\r\n(9|12|13)\t[^\r]*/g, '');
    for (const t of Object.keys(a)) if (t !== 'Media') expect(noPerBuild(a[t]!), t).toBe(noPerBuild(b[t]!));
    const sum = async (m: string) =>
      (await defaultRunner.run('msiinfo', ['suminfo', m])).stdout
        .split('\n')
        .filter((l) => !/^(Revision number|Created|Last saved)/.test(l));
    expect(await sum(out)).toEqual(await sum(full));
  }, 60_000);

  it("the agent's cabinet comes first in the hash order: renamed when it must be and can be, the old stream gone; a site's digest continues from the base's", async () => {
    const summary = '\u0005SummaryInformation';
    const first = (n: string) => msiHashOrder(encodeStreamName(n), summary) < 0;
    expect(first('payload.cab')).toBe(false);
    expect(firstInHashOrder('payload.cab')).toBe('00payload.cab');
    expect(first('00payload.cab')).toBe(true);
    expect(firstInHashOrder('0agent.cab')).toBe('0agent.cab'); // first already
    expect(first('0agent.cab')).toBe(true);
    expect(firstInHashOrder('pay-load.cab')).toBe('pay-load.cab'); // not a packed name: left alone
    expect(firstInHashOrder('c'.repeat(61))).toBe('c'.repeat(61)); // 00 + 61 characters: too long
    expect(firstInHashOrder('payload.cab', (n) => n === '00payload.cab')).toBe('payload.cab'); // taken
    const cabSize = withMsiDatabase(base.path, (db) => {
      expect(db.rawStreamName('payload.cab')).toBeUndefined();
      expect(db.rawStreamName('00payload.cab')).toBe(base.unchanged[0]);
      return db.directory.layouts.get(base.unchanged[0]!)!().size;
    });
    // two sites whose codes differ in length: each one's digest from the base's state is its own
    const shared = msiSharedStreams(base.path, 'sha256', base.unchanged)!;
    expect(shared.bytes).toBe(cabSize);
    expect(cabSize).toBeGreaterThan(4096);
    for (const code of ['ACME-HQ', 'A-MUCH-LONGER-SITE-CODE-0001']) {
      const out = join(dir, `digest-${code}.msi`);
      if ('fallback' in (await assembleMsiSite(base, { ...site, siteCode: code }, siteJson, out)))
        throw new Error('fallback');
      const own = (await msiImageDigest(out, 'sha256'))!;
      const continued = (await msiImageDigest(out, 'sha256', shared))!;
      expect(continued.sharedBytes).toBe(shared.bytes);
      expect(continued.digest.equals(own.digest)).toBe(true);
    }
    expect(shared.states.size).toBe(2);
  });

  it("the agent's cabinet comes first in the file too: a site's MSI, signed in place, keeps the base's first bytes, and its file hash continues from the base's", async () => {
    const sectors = withMsiDatabase(base.path, (db) => {
      const out = new Map<string, number[]>();
      for (const [raw, l] of db.directory.layouts) {
        const layout = l();
        if (!layout.mini) out.set(raw, layout.units);
      }
      return out;
    });
    const cabinet = sectors.get(base.unchanged[0]!)!;
    // the cabinet ends where the shared prefix does; no other stream has a sector before that
    expect(cabinet.reduce((m, u) => Math.max(m, u), 0) + 512).toBeLessThanOrEqual(base.prefix);
    expect(base.prefix).toBeGreaterThan(cabinet.length * 512);
    for (const [raw, units] of sectors)
      if (raw !== base.unchanged[0])
        expect(units.reduce((m, u) => Math.min(m, u), Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(
          base.prefix,
        );
    // laid out already: a second pass moves nothing
    const again = join(dir, 'again.msi');
    copyFileSync(base.path, again);
    expect(placeSharedFirst(again, base.unchanged)).toBe(base.prefix);
    expect(sha256Of(again)).toBe(sha256Of(base.path));
    const head = readFileSync(base.path).subarray(0, base.prefix);
    for (const code of ['ACME-HQ', 'A-MUCH-LONGER-SITE-CODE-0001']) {
      const out = join(dir, `prefix-${code}.msi`);
      if ('fallback' in (await assembleMsiSite(base, { ...site, siteCode: code }, siteJson, out)))
        throw new Error('fallback');
      const d = (await msiImageDigest(out, 'sha256'))!;
      const signed = join(dir, `prefix-${code}-signed.msi`);
      writeSignedMsi(out, signed, d, Buffer.alloc(3000, 0x30)); // the writer's layout, not a signature
      for (const f of [out, signed]) {
        const got = readFileSync(f).subarray(0, base.prefix);
        let at = 0;
        while (at < head.length && got[at] === head[at]) at++;
        expect({ f, at }).toEqual({ f, at: base.prefix });
        const plain = createHash('sha256').update(readFileSync(f)).digest('hex');
        const hashed = await sha256File(f, { path: base.path, length: base.prefix });
        expect(hashed).toEqual({
          sha256: plain,
          size: statSync(f).size,
          shared: { length: base.prefix, sha256: createHash('sha256').update(head).digest('hex') },
        });
        checkMsiSite(base, f, siteJson, hashed.shared);
      }
    }
    // a cabinet byte changed: the hash finds no shared prefix, and the check reads and refuses it
    const tampered = join(dir, 'prefix-tampered.msi');
    const bytes = readFileSync(join(dir, 'prefix-ACME-HQ-signed.msi'));
    const cab = sectors.get(base.unchanged[0]!)!;
    bytes[cab[Math.floor(cab.length / 2)]! + 7]! ^= 1;
    writeFileSync(tampered, bytes);
    const found = await sha256File(tampered, { path: base.path, length: base.prefix });
    expect(found.shared).toBeUndefined();
    expect(() => checkMsiSite(base, tampered, siteJson, found.shared)).toThrow(/differs from the base/);
    // a finding that is not the base's prefix is not taken
    const wrong = { length: base.prefix, sha256: '0'.repeat(64) };
    expect(() => checkMsiSite(base, tampered, siteJson, wrong)).toThrow(/differs from the base/);
    // the check relies on the hash's finding (it comes from the same private file): given the
    // base's own prefix for this file, it does not read the cabinet again
    const claimed = { length: base.prefix, sha256: createHash('sha256').update(head).digest('hex') };
    expect(() => checkMsiSite(base, tampered, siteJson, claimed)).not.toThrow();
  });

  it('every site gets a fresh ProductCode and PackageCode; the base is never modified', async () => {
    const before = sha256Of(base.path);
    const a = await assembleMsiSite(base, site, siteJson, join(dir, 'a.msi'));
    const b = await assembleMsiSite(
      base,
      { ...site, siteCode: 'OTHER' },
      Buffer.from('{}\n'),
      join(dir, 'b.msi'),
    );
    if ('fallback' in a || 'fallback' in b) throw new Error('fallback');
    expect(a.productCode).not.toBe(b.productCode);
    expect(a.packageCode).not.toBe(b.packageCode);
    expect(sha256Of(base.path)).toBe(before);
  });

  it('falls back (never fails) for a site.json over the slot, a value that equals another string, a template without the slot', async () => {
    const big = Buffer.alloc(base.slot + 1, 0x20);
    expect(await assembleMsiSite(base, site, big, join(dir, 'big.msi'))).toMatchObject({
      fallback: expect.stringContaining('larger than'),
    });
    expect(
      await assembleMsiSite(base, { ...site, siteCode: 'Agent' }, siteJson, join(dir, 'c.msi')),
    ).toMatchObject({
      fallback: expect.stringContaining('equals another string'),
    });
    const plain = { ...template, text: template.text.replace(/<!--\s*signet:incremental[\s\S]*?-->/, '') };
    expect(
      await buildMsiBase({
        template: plain,
        values: releaseValues(),
        product,
        agentPath: agent,
        agentSha256: sha256Of(agent),
        agentFileName: 'agent.exe',
        slot: 4096,
        work: join(dir, 'plain'),
        runner: defaultRunner,
        key: 'plain',
      }),
    ).toEqual({ fallback: 'the WiX template does not declare the site slot' });
  });

  it('the MSI file hash is what wixl writes (MD5 as four little-endian 32-bit parts)', () => {
    // wixl's MsiFileHash row for '{"a":"é"}\n' (see msitools)
    expect(msiFileHash(Buffer.from('{"a":"é"}\n'))).toEqual([411219194, 110050940, 2077626478, -565296505]);
  });
});

describe('site cabinet', () => {
  it('gcab lists and extracts it; the reader checks every CFDATA checksum', async () => {
    const data = Buffer.from('x'.repeat(70_000)); // three data blocks
    const cab = writeCabinet({ name: 'SiteJson', data }, 4096);
    const p = join(dir, 's.cab');
    writeFileSync(p, cab);
    expect((await defaultRunner.run('gcab', ['-l', p])).stdout).toContain('SiteJson 70000');
    await defaultRunner.run('gcab', ['-x', '-C', join(dir, 'cabx'), p]);
    expect(readFileSync(join(dir, 'cabx', 'SiteJson')).equals(data)).toBe(true);
    expect(readCabinetFile(cab).data.equals(data)).toBe(true);
    const small = writeCabinet({ name: 'SiteJson', data: Buffer.from('{}') }, 4096);
    expect(small.length).toBe(4096);
    writeFileSync(p, small);
    expect((await defaultRunner.run('gcab', ['-l', p])).stdout).toContain('SiteJson 2');
    const bad = Buffer.from(cab);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
    expect(() => readCabinetFile(bad)).toThrow(/checksum/);
  });

  it('checksum of known bytes (MS-CAB CSUMCompute, 1 to 3 trailing bytes)', () => {
    expect(cabChecksum(Buffer.from([1, 2, 3, 4]))).toBe(0x04030201);
    expect(cabChecksum(Buffer.from([1, 2, 3, 4, 5, 6, 7]))).toBe(
      (0x04030201 ^ ((5 << 16) | (6 << 8) | 7)) >>> 0,
    );
  });
});

describe('Compound File layouts', () => {
  it("every stream's bytes, read through its layout, are the stream", () => {
    for (const file of [base.path, join(dir, 'site-signed.msi')]) {
      const buf = readFileSync(file);
      const d = readCompoundDirectory(buf);
      for (const [name, read] of d.streams) {
        const l = d.layouts.get(name)!();
        const bytes = Buffer.concat(l.units.map((u) => buf.subarray(u, u + l.unit))).subarray(0, l.size);
        expect(bytes.equals(read()), name).toBe(true);
        expect(l.mini).toBe(l.size < d.miniCutoff);
      }
    }
  });
});
