/**
 * Property tests (fast-check) over the CFB, DER and PE readers: mutated and truncated signed files
 * never crash a reader (they answer a kind, never throw), and whenever a reader still yields a
 * signature, verifyFile's signer is the one osslsigncode reports or the file is refused.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMsi, buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { readCompoundDirectory } from '../cfb.ts';
import { SignetError } from '../errors.ts';
import { defaultRunner } from '../exec/runner.ts';
import { parsePkcs7, readMsiSignature, readPeSignature } from './der.ts';
import { verifyFile } from './verify.ts';

let pki: TestPki;
let dir: string;
let exe: Buffer;
let msi: Buffer;

beforeAll(async () => {
  dir = tempDir('signet-fuzz-');
  pki = await makeTestPki(join(dir, 'pki'));
  const pe = await buildPe(join(dir, 'a.exe'));
  const m = await buildMsi(join(dir, 'a.msi'), pe, join(dir, 'mw'));
  for (const [i, o] of [
    [pe, join(dir, 's.exe')],
    [m, join(dir, 's.msi')],
  ] as const)
    await defaultRunner.run('osslsigncode', [
      'sign',
      '-certs',
      pki.cert,
      '-key',
      pki.key,
      '-h',
      'sha256',
      '-in',
      i,
      '-out',
      o,
    ]);
  exe = readFileSync(join(dir, 's.exe'));
  msi = readFileSync(join(dir, 's.msi'));
}, 60_000);

/** A file mutated by a few byte writes (biased towards the headers) and maybe truncated. */
const mutation = (size: number) =>
  fc.record({
    writes: fc.array(
      fc.record({
        at: fc.oneof(fc.integer({ min: 0, max: 1024 }), fc.integer({ min: 0, max: size - 1 })),
        value: fc.oneof(fc.constantFrom(0, 0xff, 0xfe, 1), fc.integer({ min: 0, max: 255 })),
      }),
      { minLength: 1, maxLength: 8 },
    ),
    cut: fc.option(fc.integer({ min: 0, max: size }), { freq: 4 }),
  });

function apply(base: Buffer, m: { writes: { at: number; value: number }[]; cut: number | null }): Buffer {
  const b = Buffer.from(base);
  for (const w of m.writes) if (w.at < b.length) b[w.at] = w.value;
  return m.cut === null ? b : b.subarray(0, m.cut);
}

let n = 0;
function readersNeverThrow(bytes: Buffer, ext: string): void {
  const p = join(dir, `m${++n}.${ext}`);
  writeFileSync(p, bytes);
  const pe = readPeSignature(p);
  expect(['not-pe', 'unsigned', 'signed', 'ambiguous']).toContain(pe.kind);
  const ms = readMsiSignature(p);
  expect(['not-msi', 'unsigned', 'signed', 'ambiguous']).toContain(ms.kind);
  for (const r of [pe, ms]) if (r.kind === 'signed') parsePkcs7(r.pkcs7);
  try {
    const d = readCompoundDirectory(bytes);
    for (const read of d.streams.values()) read();
    for (const read of d.pieces.values()) for (const _ of read()) void _;
  } catch (e) {
    expect((e as Error).name).toBe('CompoundFileError');
  }
}

describe('readers over mutated and truncated files', () => {
  it('PE, CFB and DER readers never throw on a mutated signed exe or msi', () => {
    fc.assert(
      fc.property(mutation(exe.length), (m) => readersNeverThrow(apply(exe, m), 'exe')),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(mutation(msi.length), (m) => readersNeverThrow(apply(msi, m), 'msi')),
      { numRuns: 300 },
    );
  });

  it('DER: any bytes parse to undefined or a SignedData, never a throw', () => {
    const sig = readPeSignature(join(dir, 's.exe'));
    if (sig.kind !== 'signed') throw new Error('not signed');
    fc.assert(
      fc.property(mutation(sig.pkcs7.length), (m) => {
        const r = parsePkcs7(apply(sig.pkcs7, m));
        expect(r === undefined || Array.isArray(r.certificates)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('verifyFile on a mutated file: refused, or the signer is the one osslsigncode reports', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), mutation(Math.min(exe.length, msi.length)), async (isMsi, m) => {
        const p = join(dir, `v${++n}.${isMsi ? 'msi' : 'exe'}`);
        writeFileSync(p, apply(isMsi ? msi : exe, m));
        try {
          const a = await verifyFile(p, { caFile: pki.caCert });
          const ossl = await defaultRunner.run('osslsigncode', ['verify', '-CAfile', pki.caCert, '-in', p], {
            allowFailure: true,
          });
          expect(ossl.exitCode).toBe(0);
          expect(ossl.stdout).toContain(`Subject: ${a.signature.subject}`);
          expect(a.signature.leafSha256).toBe(pki.leafSha256);
        } catch (e) {
          expect(e).toBeInstanceOf(SignetError);
        }
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
