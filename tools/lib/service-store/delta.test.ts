/**
 * Deltas over real files: a PE base with an appended site overlay and an MSI patched in place,
 * each signed and timestamped with the test PKI, stored as regions + signature and assembled back
 * into the signed file byte for byte; a tampered delta or a wrong base is refused.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestAgent } from '../../../test/helpers/agent.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { startTestTsa } from '../../../test/helpers/tsa.ts';
import { parseConfig } from '../config/load.ts';
import { defaultRunner } from '../exec/runner.ts';
import { createSigner } from '../sign/index.ts';
import { assembleDelta, decodeDelta, diffRegions, encodeDelta, makeDelta } from './delta.ts';

let pki: TestPki;
let tsaUrl: string;
beforeAll(async () => {
  pki = await makeTestPki();
  tsaUrl = (await startTestTsa(pki)).url;
}, 60_000);

const trust = () => ({ caFile: pki.caCert, tsaCaFile: pki.caCert, leafSha256: pki.leafSha256 });

async function sign(inFile: string, out: string): Promise<void> {
  // as Signet signs: an MSI with MsiDigitalSignatureEx
  const dse = inFile.endsWith('.msi') ? ['-add-msi-dse'] : [];
  const args = ['sign', '-certs', pki.cert, '-key', pki.key, '-h', 'sha256', ...dse, '-ts', tsaUrl];
  await defaultRunner.run('osslsigncode', [...args, '-in', inFile, '-out', out]);
}

describe('diffRegions', () => {
  it('finds changed blocks and an appended tail, merging neighbours', () => {
    const base = Buffer.alloc(20_000, 1);
    const u = Buffer.concat([base, Buffer.from('tail')]);
    u[5] = 9;
    u[4096 + 3] = 9; // adjacent block: merged with the first
    u[16_384 + 1] = 9;
    const r = diffRegions(base, u);
    expect(r.map((x) => [x.offset, x.bytes.length])).toEqual([
      [0, 8192],
      [16_384, 20_004 - 16_384],
    ]);
    const rebuilt = Buffer.from(base);
    const out = Buffer.concat([rebuilt, Buffer.alloc(4)]);
    for (const x of r) x.bytes.copy(out, x.offset);
    expect(out.equals(u)).toBe(true);
  });
});

describe('deltas of signed site files', () => {
  it('a PE with an overlay: a few KB, assembled back byte for byte', async () => {
    const dir = tempDir('signet-delta-pe-');
    const base = join(dir, 'stub.exe');
    copyFileSync(await buildTestAgent({ version: '1.0.0' }), base);
    const unsigned = join(dir, 'site.exe');
    writeFileSync(
      unsigned,
      Buffer.concat([
        readFileSync(base),
        Buffer.from(JSON.stringify({ enrollment: { key: 'k'.repeat(40) } })),
      ]),
    );
    const signed = join(dir, 'site.signed.exe');
    await sign(unsigned, signed);
    const delta = await makeDelta({ base, unsigned, signed, work: dir, trust: trust() });
    const bytes = encodeDelta(delta);
    expect(bytes.length).toBeLessThan(12_000);
    expect(bytes.length).toBeLessThan(statSync(signed).size / 4);
    const out = join(dir, 'assembled.exe');
    await assembleDelta(base, decodeDelta(bytes), out, dir, trust());
    expect(readFileSync(out).equals(readFileSync(signed))).toBe(true);
    // a PE's signed file is its base but for the header fields and the tail: kept as is
    expect(delta.header.form).toBe('signed');
    // a flipped byte in the stored signature (the certificate table, at the end) → refused, nothing written
    const bad = decodeDelta(bytes);
    const tail = bad.regions[bad.regions.length - 1]!;
    tail[tail.length - 40]! ^= 1;
    await expect(assembleDelta(base, bad, join(dir, 'bad.exe'), dir, trust())).rejects.toThrow();
    // another pinned signer → refused by the attach itself
    await expect(
      assembleDelta(base, decodeDelta(bytes), join(dir, 'bad3.exe'), dir, {
        ...trust(),
        leafSha256: 'a'.repeat(64),
      }),
    ).rejects.toThrow();
    // another base → refused
    const other = join(dir, 'other.exe');
    copyFileSync(await buildTestAgent({ version: '1.0.1' }), other);
    await expect(
      assembleDelta(other, decodeDelta(bytes), join(dir, 'bad2.exe'), dir, trust()),
    ).rejects.toThrow();
  }, 60_000);

  it('an MSI patched in place: regions + signature reproduce the signed MSI', async () => {
    const dir = tempDir('signet-delta-msi-');
    const wxs = join(dir, 'p.wxs');
    writeFileSync(join(dir, 'payload.bin'), randomBytes(3_000_000)); // incompressible: the cabinet is most of the file
    writeFileSync(
      wxs,
      `<?xml version="1.0"?><Wix xmlns="http://schemas.microsoft.com/wix/2006/wi"><Product Id="*" Name="T" Language="1033" Version="1.0.0" Manufacturer="M" UpgradeCode="12345678-1234-1234-1234-123456789012"><Package InstallerVersion="200" Compressed="yes"/><Media Id="1" Cabinet="c.cab" EmbedCab="yes"/><Directory Id="TARGETDIR" Name="SourceDir"><Directory Id="ProgramFilesFolder"><Directory Id="D" Name="T"><Component Id="C" Guid="12345678-1234-1234-1234-123456789013"><File Id="F" Source="payload.bin"/></Component></Directory></Directory></Directory><Feature Id="Fe" Level="1"><ComponentRef Id="C"/></Feature></Product></Wix>`,
    );
    const base = join(dir, 'base.msi');
    await defaultRunner.run('wixl', ['-a', 'x64', '-o', base, wxs], { cwd: dir });
    // rewritten by msibuild with 512-byte sectors, as the incremental base is: osslsigncode's own
    // layout of it differs from the base almost everywhere
    await defaultRunner.run('msibuild', [base, '-a', 'extra', join(dir, 'payload.bin')]);
    // a same-length in-place change (what the incremental MSI builder does)
    const unsigned = join(dir, 'site.msi');
    const b = readFileSync(base);
    const u = Buffer.from(b);
    u.write('SITEDATA', Math.floor(b.length / 2)); // inside the cabinet's sectors
    writeFileSync(unsigned, u);
    const signed = join(dir, 'site.signed.msi');
    await sign(unsigned, signed);
    const delta = await makeDelta({ base, unsigned, signed, work: dir, trust: trust() });
    expect(encodeDelta(delta).length).toBeLessThan(statSync(signed).size / 2);
    // osslsigncode rewrote the whole file: the unsigned regions and the signature are kept
    expect(delta.header.form).toBe('attach');
    const out = join(dir, 'assembled.msi');
    await assembleDelta(base, delta, out, dir, trust());
    expect(readFileSync(out).equals(readFileSync(signed))).toBe(true);

    // signed in place by Signet (the second MSI of a signer): the signed file's own few regions
    const config = parseConfig(
      {
        signing: {
          defaultProfile: 'p',
          profiles: {
            p: {
              backend: 'osslsigncode',
              cert: pki.cert,
              key: pki.key,
              timestamp: { urls: [tsaUrl], retries: 0, retryWaitMs: 10, timeoutMs: 5000 },
              verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
            },
          },
        },
      },
      'test',
    );
    const signer = createSigner(config);
    await signer.sign(unsigned, { out: join(dir, 'first.msi') });
    const inPlace = join(dir, 'in-place.msi');
    await signer.sign(unsigned, { out: inPlace });
    const d2 = await makeDelta({ base, unsigned, signed: inPlace, work: dir, trust: trust() });
    expect(d2.header.form).toBe('signed');
    expect(encodeDelta(d2).length).toBeLessThan(64 * 1024); // a few 4 KiB blocks of tables, and the signature
    const out2 = join(dir, 'assembled2.msi');
    await assembleDelta(base, d2, out2, dir, trust());
    expect(readFileSync(out2).equals(readFileSync(inPlace))).toBe(true);
    // and without the unsigned file (a signer that consumed it)
    expect((await makeDelta({ base, signed: inPlace, work: dir, trust: trust() })).header.form).toBe(
      'signed',
    );
  }, 60_000);
});
