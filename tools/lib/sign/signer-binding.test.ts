/**
 * The pin binds the signature that was verified: hostile MSIs (an orphan or duplicate
 * `\u0005DigitalSignature` entry holding the vendor's blob beside an attacker's valid signature),
 * PEs with room for a second blob, and an osslsigncode report that names another signer are all
 * refused. Real osslsigncode, real files from the test PKI.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { plantStreamEntry } from '../../../test/helpers/cfb-craft.ts';
import { codeOf } from '../../../test/helpers/code-of.ts';
import { buildMsi, buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { readCompoundFile } from '../cfb.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import { readMsiSignature, readPeSignature } from './der.ts';
import { sameDn } from './signer.ts';
import { inspectSignature, verifyFile } from './verify.ts';

let pki: TestPki;
let dir: string;
let bothCas: string;
const signed: Record<string, string> = {};

async function sign(input: string, who: 'main' | 'wrong', out: string): Promise<string> {
  const c = who === 'main' ? pki : pki.wrong;
  await defaultRunner.run('osslsigncode', [
    'sign',
    '-certs',
    c.cert,
    '-key',
    c.key,
    '-h',
    'sha256',
    '-in',
    input,
    '-out',
    out,
  ]);
  return out;
}

/** The vendor's pin, with both CAs trusted: the attacker holds *a* trusted certificate. */
const vendorPin = () => ({ caFile: bothCas, leafSha256: [pki.leafSha256] });

beforeAll(async () => {
  dir = tempDir('signet-bind-');
  pki = await makeTestPki(join(dir, 'pki'));
  bothCas = join(dir, 'both-cas.pem');
  writeFileSync(bothCas, readFileSync(pki.caCert, 'utf8') + readFileSync(pki.wrong.caCert, 'utf8'));
  const exe = await buildPe(join(dir, 'agent.exe'));
  const msi = await buildMsi(join(dir, 'agent.msi'), exe, join(dir, 'msi-work'));
  for (const who of ['main', 'wrong'] as const) {
    signed[`${who}.exe`] = await sign(exe, who, join(dir, `${who}.exe`));
    signed[`${who}.msi`] = await sign(msi, who, join(dir, `${who}.msi`));
  }
}, 60_000);

function vendorMsiBlob(): Buffer {
  const r = readMsiSignature(signed['main.msi'] as string);
  if (r.kind !== 'signed') throw new Error('vendor MSI not signed');
  return r.pkcs7;
}

describe('MSI: the signature stream is the one of the directory tree', () => {
  it('an orphan \\u0005DigitalSignature entry with the vendor blob beside a wrong-CA signature is refused', async () => {
    const evil = join(dir, 'orphan.msi');
    copyFileSync(signed['wrong.msi'] as string, evil);
    plantStreamEntry(evil, vendorMsiBlob(), { mode: 'orphan' });
    // the attack is real: osslsigncode verifies the file and reports the attacker as signer
    const ossl = await defaultRunner.run('osslsigncode', ['verify', '-CAfile', bothCas, '-in', evil], {
      allowFailure: true,
    });
    expect(ossl.exitCode).toBe(0);
    expect(ossl.stdout).toContain('Subject: /CN=Signet WRONG code signing');
    expect(await codeOf(verifyFile(evil, vendorPin()))).toBe('E_VERIFY_AMBIGUOUS');
    const report = await inspectSignature(evil, vendorPin());
    expect(report).toMatchObject({ signed: false, error: { code: 'E_VERIFY_AMBIGUOUS' } });
    expect(report.leafSha256).toBeUndefined();
    expect(readMsiSignature(evil)).toMatchObject({ kind: 'ambiguous' });
    // the table reader (installers) still reads the database: the tree is what it reads
    expect([...readCompoundFile(readFileSync(evil)).keys()]).toEqual([
      ...readCompoundFile(readFileSync(signed['wrong.msi'] as string)).keys(),
    ]);
  });

  it('a duplicate \\u0005DigitalSignature hung into the root tree is refused', async () => {
    const evil = join(dir, 'duplicate.msi');
    copyFileSync(signed['wrong.msi'] as string, evil);
    plantStreamEntry(evil, vendorMsiBlob(), { mode: 'duplicate' });
    expect(await codeOf(verifyFile(evil, vendorPin()))).toBe('E_VERIFY_AMBIGUOUS');
    expect(readMsiSignature(evil)).toMatchObject({ kind: 'ambiguous', reason: /two directory entries/ });
  });

  it('an orphan entry of another name is harmless: the vendor MSI still verifies as the vendor', async () => {
    const file = join(dir, 'orphan-other.msi');
    copyFileSync(signed['main.msi'] as string, file);
    plantStreamEntry(file, Buffer.from('not a signature'), { name: 'leftover' });
    const a = await verifyFile(file, vendorPin());
    expect(a.signature.leafSha256).toBe(pki.leafSha256);
    expect(await codeOf(verifyFile(signed['wrong.msi'] as string, vendorPin()))).toBe(
      'E_VERIFY_PIN_MISMATCH',
    );
  });
});

describe('PE: one certificate table, nothing after it', () => {
  function table(b: Buffer): Buffer {
    const pe = b.readUInt32LE(0x3c);
    const dd = pe + 24 + (b.readUInt16LE(pe + 24) === 0x20b ? 112 : 96) + 32;
    return b.subarray(b.readUInt32LE(dd), b.readUInt32LE(dd) + b.readUInt32LE(dd + 4));
  }
  function securityDir(b: Buffer): number {
    const pe = b.readUInt32LE(0x3c);
    return pe + 24 + (b.readUInt16LE(pe + 24) === 0x20b ? 112 : 96) + 32;
  }

  it('reads a signed PE, and refuses data after the table or a second WIN_CERTIFICATE', () => {
    const main = readFileSync(signed['main.exe'] as string);
    const wrong = readFileSync(signed['wrong.exe'] as string);
    expect(readPeSignature(signed['wrong.exe'] as string).kind).toBe('signed');
    const trailing = join(dir, 'trailing.exe');
    writeFileSync(trailing, Buffer.concat([wrong, table(main)]));
    expect(readPeSignature(trailing)).toMatchObject({
      kind: 'ambiguous',
      reason: /follow the certificate table/,
    });
    const two = Buffer.concat([wrong, table(main)]);
    two.writeUInt32LE(table(wrong).length + table(main).length, securityDir(two) + 4);
    const twoPath = join(dir, 'two-certs.exe');
    writeFileSync(twoPath, two);
    expect(readPeSignature(twoPath)).toMatchObject({
      kind: 'ambiguous',
      reason: /more than one WIN_CERTIFICATE/,
    });
    // data hidden inside the WIN_CERTIFICATE after the DER
    const stuffed = Buffer.concat([wrong, Buffer.alloc(16)]);
    const t = table(wrong).length + 16;
    stuffed.writeUInt32LE(t, securityDir(stuffed) + 4);
    stuffed.writeUInt32LE(t, stuffed.length - t);
    stuffed[stuffed.length - 3] = 1;
    const stuffedPath = join(dir, 'stuffed.exe');
    writeFileSync(stuffedPath, stuffed);
    expect(readPeSignature(stuffedPath)).toMatchObject({
      kind: 'ambiguous',
      reason: /data follows the signature/,
    });
  });
});

describe('the pinned leaf is the signer osslsigncode verified (issuer and serial)', () => {
  /** osslsigncode, but its report names another signer (what a second blob would look like). */
  function reportingAs(issuer: string, serial: string): Runner {
    return {
      async run(file, args, options) {
        const r = await defaultRunner.run(file, args, options);
        if (args[0] !== 'verify') return r;
        const stdout = r.stdout.replace(
          /(Signer #0:\s*\n\s*Subject:.*\n\s*Issuer\s*:).*\n(\s*Serial\s*:).*/,
          `$1 ${issuer}\n$2 ${serial}`,
        );
        return { ...r, stdout };
      },
    };
  }

  it('a report naming the wrong signer refuses the vendor-signed file', async () => {
    const file = signed['main.exe'] as string;
    const ok = await verifyFile(file, vendorPin());
    expect(ok.signature.issuer).toBe('/CN=Signet DEV CA - NOT FOR RELEASE/O=Signet DEV');
    const wrongLeaf = new (await import('node:crypto')).X509Certificate(readFileSync(pki.wrong.leafCert));
    const runner = reportingAs(`/${wrongLeaf.issuer.split('\n').join('/')}`, wrongLeaf.serialNumber);
    expect(await codeOf(verifyFile(file, { ...vendorPin(), runner }))).toBe('E_VERIFY_SIGNER_UNBOUND');
    // same serial, another issuer: still not the verified signer
    const vendorLeaf = new (await import('node:crypto')).X509Certificate(readFileSync(pki.leafCert));
    const sameSerial = reportingAs(
      '/CN=Signet DEV CA - NOT FOR RELEASE/O=Someone Else',
      vendorLeaf.serialNumber,
    );
    expect(await codeOf(verifyFile(file, { ...vendorPin(), runner: sameSerial }))).toBe(
      'E_VERIFY_SIGNER_UNBOUND',
    );
  });
});

describe('subject pins match the whole DN', () => {
  it('exact, in order; a prefix or a longer CN does not match', async () => {
    expect(sameDn('/CN=Example Ltd', '/CN=Example Ltd')).toBe(true);
    expect(sameDn('/CN=Example Ltdx', '/CN=Example Ltd')).toBe(false);
    expect(sameDn('/CN=Example Ltd/O=Example', '/CN=Example Ltd')).toBe(false);
    expect(sameDn('/CN=Example Ltd/O=Example', 'CN=Example Ltd, O=Example')).toBe(true);
    expect(sameDn('/CN=Caf\\xC3\\xA9 GmbH', 'CN=Café GmbH')).toBe(true);
    const file = signed['main.exe'] as string;
    const whole = '/CN=Signet DEV code signing - NOT FOR RELEASE/O=Signet DEV';
    expect((await verifyFile(file, { caFile: pki.caCert, subject: whole })).signature.subject).toBe(whole);
    expect(
      await codeOf(verifyFile(file, { caFile: pki.caCert, subject: '/CN=Signet DEV code signing' })),
    ).toBe('E_VERIFY_PIN_MISMATCH');
    expect(await codeOf(verifyFile(file, { caFile: pki.caCert, subject: `${whole}x` }))).toBe(
      'E_VERIFY_PIN_MISMATCH',
    );
  });
});
