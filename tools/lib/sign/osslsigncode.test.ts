import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryScanner, RecordingRunner } from '../../../test/helpers/canary.ts';
import { codeOf } from '../../../test/helpers/code-of.ts';
import { buildDll, buildMsi, buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { deadUrl, type LocalTsa, startTestTsa } from '../../../test/helpers/tsa.ts';
import { parseConfig } from '../config/load.ts';
import type { SignetError } from '../errors.ts';
import { defaultRunner } from '../exec/runner.ts';
import { clearSecrets } from '../redact.ts';
import { readMsiSignature } from './der.ts';
import { createSigner, inspectSignature, signFiles, verifyFile } from './index.ts';
import { serialHex } from './local-tsa.ts';
import { classifyOsslFailure, osslSignArgs, tsaSchedule } from './osslsigncode.ts';
import { parseVerifyOutput, verifyFailureReason } from './verify.ts';

let pki: TestPki;
let tsa: LocalTsa;
let dir: string;
let agent: string;

function config(profile: Record<string, unknown>, name = 'release') {
  return parseConfig({ signing: { defaultProfile: name, profiles: { [name]: profile } } }, 'test');
}

function pemProfile(extra: Record<string, unknown> = {}) {
  return {
    backend: 'osslsigncode',
    cert: pki.cert,
    key: pki.key,
    timestamp: { urls: [tsa.url], retries: 0, retryWaitMs: 10, timeoutMs: 5000 },
    verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
    ...extra,
  };
}

let n = 0;
function fresh(name = 'agent.exe'): string {
  const p = join(dir, `${++n}-${name}`);
  copyFileSync(agent, p);
  return p;
}

/** Files in `dir` whose names show a leftover from a failed run. */
function leftovers(): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('.signet-sign-'));
}

beforeAll(async () => {
  dir = tempDir('signet-sign-');
  [pki] = await Promise.all([makeTestPki()]);
  agent = await buildPe(join(dir, 'agent-src.exe'));
  tsa = await startTestTsa(pki);
});
afterAll(() => clearSecrets());

describe('osslsigncode argv (pure)', () => {
  it('never puts a secret on argv: only -readpass FILE', () => {
    const args = osslSignArgs({
      certs: 'c.pem',
      key: 'k.pem',
      input: 'in.exe',
      output: 'out.exe',
      digest: 'sha256',
      description: 'Agent',
      passFile: '/tmp/x/pass',
      tsUrl: 'http://tsa/',
      nest: true,
    });
    expect(args).toEqual([
      'sign',
      '-certs',
      'c.pem',
      '-key',
      'k.pem',
      '-readpass',
      '/tmp/x/pass',
      '-h',
      'sha256',
      '-n',
      'Agent',
      '-ts',
      'http://tsa/',
      '-nest',
      '-in',
      'in.exe',
      '-out',
      'out.exe',
    ]);
    expect(args).not.toContain('-pass');
  });
  it('builds the PKCS#11 engine form and the MSI form', () => {
    expect(
      osslSignArgs({
        pkcs11: { module: '/m.so', cert: 'pkcs11:object=c;type=cert', key: 'pkcs11:object=k;type=private' },
        input: 'a.msi',
        output: 'b.msi',
        digest: 'sha256',
        passFile: '/p',
        msi: true,
      }),
    ).toEqual([
      'sign',
      '-pkcs11engine',
      '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so',
      '-pkcs11module',
      '/m.so',
      '-pkcs11cert',
      'pkcs11:object=c;type=cert',
      '-key',
      'pkcs11:object=k;type=private',
      '-readpass',
      '/p',
      '-h',
      'sha256',
      '-add-msi-dse',
      '-in',
      'a.msi',
      '-out',
      'b.msi',
    ]);
  });
  it('schedules every TSA with its retries and exponential backoff, in order', () => {
    expect(tsaSchedule({ urls: ['a', 'b'], retries: 2, retryWaitMs: 100, timeoutMs: 1 })).toEqual([
      { url: 'a', waitMs: 0 },
      { url: 'a', waitMs: 100 },
      { url: 'a', waitMs: 200 },
      { url: 'b', waitMs: 0 },
      { url: 'b', waitMs: 100 },
      { url: 'b', waitMs: 200 },
    ]);
  });
  it('local TSA serials are whole hex bytes (openssl rejects "100")', () => {
    expect([1, 255, 256, 4096, 65536].map(serialHex)).toEqual(['01', 'ff', '0100', '1000', '010000']);
  });
  it('classifies osslsigncode failures', () => {
    expect(classifyOsslFailure('error:PIN incorrect:p11_slot.c')).toBe('secret');
    expect(classifyOsslFailure('Failed to decode private key file: k (Wrong password?)')).toBe('secret');
    expect(classifyOsslFailure('RFC 3161 timestamping failed')).toBe('tsa');
    expect(classifyOsslFailure('Failed to read key or certificates')).toBe('key');
  });
  it('parses verify output', () => {
    const p = parseVerifyOutput(
      `Message digest algorithm  : SHA256\nSigner's certificate:\n\t------------------\n\tSigner #0:\n\t\tSubject: /CN=A\n\t\tIssuer : /CN=CA\n\t\tSerial : 00AB12\nCountersignatures:\n\tTimestamp time: Nov 22 21:50:14 2026 GMT\nTimestamp Server Signature verification: ok\nNumber of verified signatures: 2\nSucceeded\n`,
      0,
    );
    expect(p).toMatchObject({
      ok: true,
      digest: 'sha256',
      subject: '/CN=A',
      issuer: '/CN=CA',
      signerSerial: 'AB12',
      signatures: 2,
      timestampVerified: true,
      timestamp: '2026-11-22T21:50:14.000Z',
    });
    expect(parseVerifyOutput('Unable to extract existing signature\nFailed', 1)).toMatchObject({
      ok: false,
      unsigned: true,
    });
    expect(
      verifyFailureReason(
        '40:error:CMS routines:x:certificate verify error:c.c:289:Verify error: self-signed certificate in certificate chain\n\t\tnotBefore : Nov 22\n\tError: Certificate not found in local repository: self-signed certificate in certificate chain\nTimestamp Server Signature verification: failed\nSignature verification: failed\nFailed\n',
      ),
    ).toBe(
      'self-signed certificate in certificate chain; Certificate not found in local repository: self-signed certificate in certificate chain; Timestamp Server Signature verification: failed; Signature verification: failed',
    );
  });
});

describe('osslsigncode backend (real tools)', () => {
  it('signs an exe with a timestamp and verifies it: subject, leaf SHA-256, digest, timestamp', async () => {
    const signer = createSigner(config(pemProfile()), { releasePath: true });
    const file = fresh();
    const before = readFileSync(file);
    const a = await signer.sign(file);
    expect(a.path).toBe(file);
    expect(readFileSync(file).equals(before)).toBe(false);
    expect(a.signature.leafSha256).toBe(pki.leafSha256);
    expect(a.signature.subject).toContain('Signet DEV code signing - NOT FOR RELEASE');
    expect(a.signature.digest).toBe('sha256');
    expect(a.signature.signatures).toBe(1);
    expect(Date.parse(a.signature.timestamp ?? '')).toBeGreaterThan(Date.now() - 120_000);
    const again = await verifyFile(
      file,
      { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
      { requireTimestamp: true },
    );
    expect(again.sha256).toBe(a.sha256);
    expect(leftovers()).toEqual([]);
  });

  it('signs an MSI built with wixl and verifies it', async () => {
    const msi = await buildMsi(join(dir, 'test.msi'), agent, join(dir, 'msi-work'));
    const signer = createSigner(config(pemProfile()), { releasePath: true });
    const out = join(dir, 'test-signed.msi');
    const a = await signer.sign(msi, { out });
    expect(a.kind).toBe('msi');
    expect(a.signature.timestamp).toBeTruthy();
    const report = await inspectSignature(msi, { caFile: pki.caCert });
    expect(report).toMatchObject({ signed: false, error: { code: 'E_VERIFY_UNSIGNED' } });
    const ok = await inspectSignature(out, { caFile: pki.caCert }, { requireTimestamp: true });
    expect(ok).toMatchObject({
      signed: true,
      kind: 'msi',
      leafSha256: pki.leafSha256,
      digest: 'sha256',
      signatures: 1,
    });
    // the in-process reader returns exactly what osslsigncode extracts, and nothing for unsigned
    const extracted = join(dir, 'test-signed.sig.der');
    await defaultRunner.run('osslsigncode', ['extract-signature', '-in', out, '-out', extracted]);
    const inProcess = readMsiSignature(out);
    expect(inProcess.kind).toBe('signed');
    expect(inProcess.kind === 'signed' && inProcess.pkcs7.equals(readFileSync(extracted))).toBe(true);
    expect(readMsiSignature(msi)).toEqual({ kind: 'unsigned' });
    writeFileSync(join(dir, 'not-msi.txt'), 'plain text, not a compound file\n'.repeat(40));
    expect(readMsiSignature(join(dir, 'not-msi.txt'))).toEqual({ kind: 'not-msi' });
  });

  it('signs and verifies a DLL', async () => {
    const dll = await buildDll(join(dir, 'helper.dll'));
    const a = await createSigner(config(pemProfile()), { releasePath: true }).sign(dll);
    expect(a.kind).toBe('dll');
    const r = await inspectSignature(
      dll,
      { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
      { requireTimestamp: true },
    );
    expect(r).toMatchObject({ signed: true, kind: 'dll', signatures: 1, fileSha256: a.sha256 });
  });

  it('rejects one changed byte, a wrong CA and a pinned-leaf mismatch', async () => {
    const signer = createSigner(config(pemProfile()));
    const file = fresh();
    await signer.sign(file);
    const tampered = join(dir, 'tampered.exe');
    const bytes = readFileSync(file);
    bytes[0x200] = (bytes[0x200] as number) ^ 0xff;
    writeFileSync(tampered, bytes);
    expect(await codeOf(verifyFile(tampered, { caFile: pki.caCert }))).toBe('E_VERIFY_FAILED');
    expect(await codeOf(verifyFile(file, { caFile: pki.wrong.caCert }))).toBe('E_VERIFY_FAILED');
    expect(await codeOf(verifyFile(file, { caFile: pki.caCert, leafSha256: [pki.wrong.leafSha256] }))).toBe(
      'E_VERIFY_PIN_MISMATCH',
    );
    expect(await codeOf(verifyFile(file, { caFile: pki.caCert, subject: 'CN=Example Ltd' }))).toBe(
      'E_VERIFY_PIN_MISMATCH',
    );
    // osslsigncode exits 0 ("Succeeded") when only the timestamp chain fails: Signet must not count it.
    const untrustedTsa = { caFile: pki.caCert, tsaCaFile: pki.wrong.caCert };
    expect(await codeOf(verifyFile(file, untrustedTsa, { requireTimestamp: true }))).toBe(
      'E_VERIFY_NO_TIMESTAMP',
    );
    expect((await verifyFile(file, untrustedTsa)).signature.timestamp).toBeUndefined();
    const r = await inspectSignature(file, { caFile: pki.caCert, leafSha256: [pki.wrong.leafSha256] });
    expect(r).toMatchObject({
      signed: false,
      leafSha256: pki.leafSha256,
      error: { code: 'E_VERIFY_PIN_MISMATCH' },
    });
  });

  it('a file signed by the wrong certificate is refused right after signing (pin), nothing left behind', async () => {
    const wrongProfile = {
      ...pemProfile(),
      cert: pki.wrong.cert,
      key: pki.wrong.key,
      verify: { caFile: pki.wrong.caCert, leafSha256: [pki.leafSha256] },
    };
    const file = fresh();
    const before = readFileSync(file);
    expect(await codeOf(createSigner(config(wrongProfile)).sign(file))).toBe('E_VERIFY_PIN_MISMATCH');
    expect(readFileSync(file).equals(before)).toBe(true);
    const out = join(dir, 'never.exe');
    expect(await codeOf(createSigner(config(wrongProfile)).sign(file, { out }))).toBe(
      'E_VERIFY_PIN_MISMATCH',
    );
    expect(existsSync(out)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('refuses an already signed file unless --replace or --nest', async () => {
    const signer = createSigner(config(pemProfile()));
    const file = fresh();
    await signer.sign(file);
    expect(await codeOf(signer.sign(file))).toBe('E_SIGN_ALREADY_SIGNED');
    const replaced = await signer.sign(file, { replace: true });
    expect(replaced.signature.signatures).toBe(1);
    const sha1 = createSigner(config(pemProfile({ digest: 'sha1' })));
    const nested = await sha1.sign(file, { nest: true });
    expect(nested.signature.signatures).toBe(2);
    expect(nested.signature.digest).toBe('sha256'); // the primary signature stays SHA-256
  });

  it('falls back to the next TSA when the first is down, slow, erroring or answers garbage', async () => {
    const dead = await deadUrl();
    const slow = await startTestTsa(pki, 'slow', { delayMs: 30_000 });
    const garbage = await startTestTsa(pki, 'garbage');
    const erroring = await startTestTsa(pki, 'error');
    for (const first of [dead, slow.url, garbage.url, erroring.url]) {
      const before = tsa.requests;
      const signer = createSigner(
        config(
          pemProfile({ timestamp: { urls: [first, tsa.url], retries: 0, retryWaitMs: 10, timeoutMs: 1500 } }),
        ),
        { releasePath: true },
      );
      const a = await signer.sign(fresh());
      expect(a.signature.timestamp, first).toBeTruthy();
      expect(tsa.requests).toBe(before + 1);
    }
    expect(slow.requests).toBe(1);
    expect(garbage.requests).toBe(1);
  });

  it('retries a TSA with backoff before moving on', async () => {
    tsa.failNext(2, 'error');
    const before = tsa.requests;
    const signer = createSigner(
      config(pemProfile({ timestamp: { urls: [tsa.url], retries: 2, retryWaitMs: 20, timeoutMs: 5000 } })),
      {
        releasePath: true,
      },
    );
    const a = await signer.sign(fresh());
    expect(a.signature.timestamp).toBeTruthy();
    expect(tsa.requests).toBe(before + 3);
  });

  it('all TSAs failing → E_TIMESTAMP_FAILED, input untouched, no output left', async () => {
    const garbage = await startTestTsa(pki, 'garbage');
    const signer = createSigner(
      config(
        pemProfile({
          timestamp: { urls: [await deadUrl(), garbage.url], retries: 1, retryWaitMs: 10, timeoutMs: 2000 },
        }),
      ),
      { releasePath: true },
    );
    const file = fresh();
    const before = readFileSync(file);
    const out = join(dir, 'no-ts.exe');
    expect(await codeOf(signer.sign(file, { out }))).toBe('E_TIMESTAMP_FAILED');
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(garbage.requests).toBe(2);
    expect(leftovers()).toEqual([]);
  });

  it('the release path requires a timestamp unless the profile says timestamp: false', async () => {
    const noUrls = pemProfile({ timestamp: { urls: [] } });
    expect(await codeOf(createSigner(config(noUrls), { releasePath: true }).sign(fresh()))).toBe(
      'E_TIMESTAMP_FAILED',
    );
    const off = createSigner(config(pemProfile({ timestamp: false })), { releasePath: true });
    const a = await off.sign(fresh());
    expect(a.signature.timestamp).toBeUndefined();
    const unstamped = fresh();
    await createSigner(config(noUrls)).sign(unstamped);
    expect(await codeOf(createSigner(config(pemProfile()), { releasePath: true }).verify(unstamped))).toBe(
      'E_VERIFY_NO_TIMESTAMP',
    );
    expect(() => createSigner(config({ ...pemProfile(), dev: true }), { releasePath: true })).toThrow(
      /dev profile/,
    );
  });

  it('encrypted PEM key and PKCS#12 via -readpass; a wrong password is a coded error; the password never leaks', async () => {
    const scan = new CanaryScanner([pki.password, 'canary-wrong-pass-55aa']);
    const runner = new RecordingRunner();
    const outDir = tempDir('signet-sign-out-');
    try {
      process.env['SIGNET_TEST_KEYPASS'] = pki.password;
      process.env['SIGNET_TEST_BADPASS'] = 'canary-wrong-pass-55aa';
      const enc = pemProfile({ key: pki.encryptedKey, password: 'env:SIGNET_TEST_KEYPASS' });
      const a = await createSigner(config(enc), { runner }).sign(fresh(), { out: join(outDir, 'a.exe') });
      expect(a.signature.leafSha256).toBe(pki.leafSha256);
      const p12 = {
        ...pemProfile(),
        cert: undefined,
        key: undefined,
        pkcs12: pki.pkcs12,
        password: `file:${pki.passwordFile}`,
      };
      const b = await createSigner(config(p12), { runner }).sign(fresh(), { out: join(outDir, 'b.exe') });
      expect(b.signature.leafSha256).toBe(pki.leafSha256);
      const bad = pemProfile({ key: pki.encryptedKey, password: 'env:SIGNET_TEST_BADPASS' });
      try {
        await createSigner(config(bad), { runner }).sign(fresh(), { out: join(outDir, 'c.exe') });
        expect.unreachable();
      } catch (e) {
        expect((e as SignetError).code).toBe('E_SIGN_BAD_SECRET');
        scan.seen((e as SignetError).message, (e as SignetError).toJSON(), String((e as Error).stack));
      }
      expect(existsSync(join(outDir, 'c.exe'))).toBe(false);
      const missing = pemProfile({ key: join(dir, 'nope.key') });
      expect(await codeOf(createSigner(config(missing), { runner }).sign(fresh()))).toBe(
        'E_SIGN_KEY_MISSING',
      );
      expect(runner.calls.some((c) => c.args.includes('-readpass'))).toBe(true);
      expect(runner.calls.some((c) => c.args.includes('-pass'))).toBe(false);
      scan.assertClean(runner, [outDir, dir]);
    } finally {
      scan.restore();
      delete process.env['SIGNET_TEST_KEYPASS'];
      delete process.env['SIGNET_TEST_BADPASS'];
    }
  });

  it('redacts the secret even when the tool itself prints it (a misbehaving osslsigncode)', async () => {
    const canary = 'canary-echoed-by-tool-8d1e';
    const fake = join(dir, 'leaky-osslsigncode');
    // Prints the -readpass file's content on stderr and on stdout, then fails.
    writeFileSync(
      fake,
      '#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ "$1" = -readpass ]; then p=$(cat "$2"); fi; shift; done\necho "using password $p" >&2\necho "pw=$p"\nexit 1\n',
    );
    chmodSync(fake, 0o755);
    const scan = new CanaryScanner([canary]);
    process.env['SIGNET_TEST_LEAKY'] = canary;
    try {
      const signer = createSigner(
        config(pemProfile({ osslsigncode: fake, password: 'env:SIGNET_TEST_LEAKY', timestamp: false })),
      );
      try {
        await signer.sign(fresh());
        expect.unreachable();
      } catch (e) {
        const err = e as SignetError;
        expect(err.code).toBe('E_SIGN_FAILED');
        expect(err.message).toContain('using password ***');
        scan.seen(err.message, err.toJSON(), String(err.stack));
      }
      scan.assertClean(undefined, [dir]);
    } finally {
      scan.restore();
      delete process.env['SIGNET_TEST_LEAKY'];
    }
  });

  it('Ctrl-C while waiting for a TSA leaves neither a work directory nor the password file', async () => {
    const slow = await startTestTsa(pki, 'slow', { delayMs: 60_000 });
    const work = tempDir('signet-sigint-');
    const privateTmp = join(work, 'tmp');
    mkdirSync(privateTmp);
    const target = join(work, 'x.exe');
    copyFileSync(agent, target);
    const script = join(work, 'child.ts');
    const profile = pemProfile({
      key: pki.encryptedKey,
      password: 'env:SIGNET_TEST_SIGINT_PASS',
      timestamp: { urls: [slow.url], retries: 0, timeoutMs: 60_000 },
    });
    writeFileSync(
      script,
      `import { parseConfig } from ${JSON.stringify(join(import.meta.dirname, '..', 'config', 'load.ts'))};
import { createSigner } from ${JSON.stringify(join(import.meta.dirname, 'index.ts'))};
const config = parseConfig(${JSON.stringify({ signing: { profiles: { release: profile } } })}, 'child');
await createSigner(config).sign(${JSON.stringify(target)});
`,
    );
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, TMPDIR: privateTmp, SIGNET_TEST_SIGINT_PASS: pki.password },
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((ok) =>
      child.on('exit', (_code, signal) => ok(signal)),
    );
    for (let i = 0; i < 200 && slow.requests === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(slow.requests).toBe(1);
    expect(readdirSync(privateTmp).some((f) => f.startsWith('signet-secret-'))).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toBe('SIGINT');
    expect(readdirSync(privateTmp).filter((f) => f.startsWith('signet-'))).toEqual([]);
    expect(readdirSync(work).filter((f) => f.startsWith('.signet-sign-'))).toEqual([]);
    expect(readFileSync(target).equals(readFileSync(agent))).toBe(true);
    // The osslsigncode run waiting on the TSA was stopped too (its argv names the work directory).
    const alive = () =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .some((d) => {
          try {
            return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(`${work}/.signet-sign-`);
          } catch {
            return false;
          }
        });
    for (let i = 0; i < 40 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });

  it('--skip-signed converges: accepts files that verify under the profile, signs the rest, refuses foreign signatures', async () => {
    const signer = createSigner(config(pemProfile()));
    const mine = fresh();
    await signer.sign(mine);
    const before = readFileSync(mine);
    const foreign = fresh();
    await createSigner(
      config({
        ...pemProfile(),
        cert: pki.wrong.cert,
        key: pki.wrong.key,
        verify: { caFile: pki.wrong.caCert },
      }),
    ).sign(foreign);
    const unsigned = fresh();
    const r = await signFiles(signer, [mine, foreign, unsigned], { skipSigned: true });
    expect(r.results.map((x) => [x.ok, x.skipped ?? false])).toEqual([
      [true, true],
      [false, false],
      [true, false],
    ]);
    expect(readFileSync(mine).equals(before)).toBe(true);
    expect(r.results[1]?.error?.code).toBe('E_VERIFY_FAILED');
    await expect(signFiles(signer, [mine], { skipSigned: true, sign: { replace: true } })).rejects.toThrow(
      /--skip-signed/,
    );
  });

  it('signs many files with bounded concurrency; one failure fails the batch after the others finished', async () => {
    const signer = createSigner(config(pemProfile()));
    let inFlight = 0;
    let peak = 0;
    const tracking = {
      ...signer,
      profile: signer.profile,
      dev: signer.dev,
      verify: signer.verify,
      sign: async (p: string) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        try {
          return await signer.sign(p);
        } finally {
          inFlight--;
        }
      },
    };
    const files = [fresh(), fresh(), join(dir, 'missing.exe'), fresh(), fresh()];
    const r = await signFiles(tracking, files, { concurrency: 2 });
    expect(peak).toBe(2);
    expect(r.ok).toBe(false);
    expect(r.signed).toBe(4);
    expect(r.failed).toBe(1);
    expect(r.results[2]).toMatchObject({ ok: false, error: { code: 'E_FILE_NOT_FOUND' } });
    expect(r.results.filter((x) => x.ok).map((x) => x.path)).toEqual([
      files[0],
      files[1],
      files[3],
      files[4],
    ]);
  });
});
