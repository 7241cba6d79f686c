/**
 * Key material from CI secrets: env:/file: references for pkcs12, cert and key, decoded into a
 * private 0600 file for the run only. Signs and verifies with the real osslsigncode and the test
 * PKI through a wrapper that records, while it runs, the key path osslsigncode was given and its
 * modes; canaries (the base64 of the PFX, a garbage value, the password) are scanned for.
 */
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
import { buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { parseConfig } from '../config/load.ts';
import { SignetError } from '../errors.ts';
import { defaultRunner as signingRunner } from '../exec/runner.ts';
import { clearSecrets, redact } from '../redact.ts';
import { createSigner, signFiles } from './index.ts';
import { type MaterialKind, materialDigest, resolveMaterial } from './key-material.ts';

let pki: TestPki;
let dir: string;
let agent: string;
let wrapper: string;
let log: string;
let pfxB64: string;
const GARBAGE = 'canary-garbage-key-material-!!-5e1f';

/** Base64 wrapped at 76 characters with CRLF, as `base64` (MIME) and Windows tools write it. */
const wrap76 = (b64: string) => b64.replace(/.{76}/g, '$&\r\n');

function config(profile: Record<string, unknown>) {
  return parseConfig({ signing: { defaultProfile: 'r', profiles: { r: profile } } }, 'test');
}
function profile(keys: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    backend: 'osslsigncode',
    osslsigncode: wrapper,
    ...keys,
    timestamp: false,
    verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
    ...extra,
  };
}
let n = 0;
function fresh(): string {
  const p = join(dir, `${++n}-agent.exe`);
  copyFileSync(agent, p);
  return p;
}
/** What the wrapper saw: one line per key argument of a `sign` run: flag, path, file mode, dir mode. */
function seen(): { flag: string; path: string; mode: string; dirMode: string }[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [flag, mode, dirMode, ...rest] = l.split(' ');
      return { flag: flag!, mode: mode!, dirMode: dirMode!, path: rest.join(' ') };
    });
}
function errorOf(f: () => unknown): SignetError {
  try {
    f();
  } catch (e) {
    if (e instanceof SignetError) return e;
    throw e;
  }
  throw new Error('did not throw');
}
async function rejectionOf(p: Promise<unknown>): Promise<SignetError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SignetError) return e;
    throw e;
  }
  throw new Error('resolved');
}

beforeAll(async () => {
  dir = tempDir('signet-keymat-');
  pki = await makeTestPki();
  agent = await buildPe(join(dir, 'agent-src.exe'));
  pfxB64 = readFileSync(pki.pkcs12).toString('base64');
  log = join(dir, 'wrapper.log');
  wrapper = join(dir, 'osslsigncode-wrapper');
  writeFileSync(
    wrapper,
    `#!/bin/sh
if [ "$1" = sign ]; then
  prev=
  for a; do
    case "$prev" in -pkcs12|-certs|-key) echo "$prev $(stat -c %a "$a") $(stat -c %a "$(dirname "$a")") $a" >> '${log}';; esac
    prev="$a"
  done
fi
exec osslsigncode "$@"
`,
  );
  chmodSync(wrapper, 0o755);
});
afterAll(() => clearSecrets());

describe('resolveMaterial: detection rules', () => {
  const spec = (value: string, kind: MaterialKind = 'pkcs12') => ({
    field: 'signing.profiles.r.pkcs12',
    value,
    kind,
  });
  it('env: base64 (one line, wrapped at 76 with CRLF, data: URL), a path, PEM text, escaped PEM', () => {
    const pfx = readFileSync(pki.pkcs12);
    for (const v of [
      pfxB64,
      wrap76(pfxB64),
      `\n${wrap76(pfxB64)}\n`,
      `data:application/x-pkcs12;base64,${pfxB64}`,
    ]) {
      const m = resolveMaterial(spec('env:X'), { X: v });
      expect('bytes' in m && m.bytes.equals(pfx)).toBe(true);
    }
    expect(resolveMaterial(spec('env:X'), { X: `${pki.pkcs12}\n` })).toEqual({ path: pki.pkcs12 });
    const chain = readFileSync(pki.cert, 'utf8');
    const cert = resolveMaterial(spec('env:X', 'certs'), { X: chain });
    expect('bytes' in cert && cert.bytes.toString()).toBe(`${chain.trim()}\n`);
    const key = readFileSync(pki.key, 'utf8');
    const escaped = resolveMaterial(spec('env:X', 'key'), { X: key.trim().replace(/\n/g, '\\n') });
    expect('bytes' in escaped && escaped.bytes.toString()).toBe(`${key.trim()}\n`);
  });

  it('file: the material itself is used in place; base64 text in the file is decoded', () => {
    expect(resolveMaterial(spec(`file:${pki.pkcs12}`), {})).toEqual({ path: pki.pkcs12 });
    expect(resolveMaterial(spec(`file:${pki.key}`, 'key'), {})).toEqual({ path: pki.key });
    const b64File = join(dir, 'pfx.b64');
    writeFileSync(b64File, wrap76(pfxB64));
    const m = resolveMaterial(spec(`file:${b64File}`), {});
    expect('bytes' in m && m.bytes.equals(readFileSync(pki.pkcs12))).toBe(true);
    // an env var naming that file: same rules as file:
    const viaEnv = resolveMaterial(spec('env:X'), { X: b64File });
    expect('bytes' in viaEnv && viaEnv.bytes.equals(readFileSync(pki.pkcs12))).toBe(true);
  });

  it('refuses what is none of these with E_SIGN_KEY_INVALID naming the field and the variable, never the value', () => {
    const garbage = errorOf(() => resolveMaterial(spec('env:SIGNET_PFX'), { SIGNET_PFX: GARBAGE }));
    expect(garbage.code).toBe('E_SIGN_KEY_INVALID');
    expect(garbage.exitCode).toBe(2);
    expect(garbage.message).toMatch(
      /^signing\.profiles\.r\.pkcs12: environment variable SIGNET_PFX holds neither/,
    );
    expect(JSON.stringify(garbage.toJSON())).not.toContain(GARBAGE);
    expect(redact(`leaked ${GARBAGE}`)).toBe('leaked ***'); // registered with the redactor
    // valid base64 of something that is not a PKCS#12 file
    const random = Buffer.from('canary-random-bytes-not-a-pfx-0123456789').toString('base64');
    const notPfx = errorOf(() => resolveMaterial(spec('env:P'), { P: random }));
    expect(notPfx.message).toMatch(/holds base64 whose decoded content is not a PKCS#12/);
    expect(notPfx.message).not.toContain(random);
    // PEM where a PKCS#12 is needed; a certificate where the key is needed
    const pem = readFileSync(pki.cert, 'utf8');
    expect(errorOf(() => resolveMaterial(spec('env:P'), { P: pem })).message).toMatch(
      /is PEM CERTIFICATE, not a PKCS#12.*cert and key/,
    );
    expect(errorOf(() => resolveMaterial(spec(`file:${pki.cert}`, 'key'), {})).message).toMatch(
      /content of file .* is PEM CERTIFICATE, not a private key/,
    );
    const truncated = Buffer.from(readFileSync(pki.pkcs12).subarray(0, 500)).toString('base64');
    expect(errorOf(() => resolveMaterial(spec('env:P'), { P: truncated })).code).toBe('E_SIGN_KEY_INVALID');
    // missing sources
    const unset = errorOf(() => resolveMaterial(spec('env:NOT_SET'), {}));
    expect([unset.code, unset.message]).toEqual([
      'E_SECRET_MISSING',
      'signing.profiles.r.pkcs12: environment variable NOT_SET is not set',
    ]);
    expect(errorOf(() => resolveMaterial(spec(`file:${join(dir, 'nope.p12')}`), {})).code).toBe(
      'E_SECRET_MISSING',
    );
  });

  it('materialDigest (the installers cache key) hashes the material itself, wherever it comes from', () => {
    const direct = materialDigest(pki.pkcs12, 'pkcs12');
    expect(direct).toMatch(/^[0-9a-f]{64}$/);
    expect(materialDigest('env:X', 'pkcs12', { X: wrap76(pfxB64) })).toBe(direct);
    expect(materialDigest('env:X', 'pkcs12', { X: pki.pkcs12 })).toBe(direct);
    const other = readFileSync(pki.wrong.key).toString('base64');
    expect(materialDigest('env:X', 'key', { X: other })).not.toBe(
      materialDigest('env:X', 'key', { X: readFileSync(pki.key).toString('base64') }),
    );
    expect(materialDigest('env:UNSET', 'pkcs12', {})).toBe('missing:env:UNSET');
  });

  it('the config schema accepts path, env:NAME and file:PATH and names a bad reference', () => {
    expect(() => config(profile({ pkcs12: 'env:SIGNET_PFX' }))).not.toThrow();
    expect(() => config(profile({ cert: 'file:keys/chain.b64', key: 'keys/k.pem' }))).not.toThrow();
    const bad = errorOf(() => config(profile({ pkcs12: 'env:1-not-a-name' })));
    expect(bad.code).toBe('E_CONFIG_INVALID');
    expect(bad.message).toMatch(/pkcs12/);
  });
});

describe('signing with key material from env:/file: (real osslsigncode)', () => {
  const scan = new CanaryScanner([]);
  let runner: RecordingRunner;
  beforeAll(() => {
    scan.canaries.push(pfxB64, GARBAGE, pki.password, readFileSync(pki.encryptedKey, 'utf8').split('\n')[1]!);
    runner = new RecordingRunner(signingRunner);
  });
  afterAll(() => scan.restore());

  /** Signs one file with the profile's keys, `env` set in the process environment (as the CLI sees it). */
  async function signWith(keys: Record<string, unknown>, env: Record<string, string>) {
    writeFileSync(log, '');
    Object.assign(process.env, env);
    try {
      const out = await createSigner(config(profile(keys)), { runner }).sign(fresh());
      scan.seen(out);
      expect(out.signature.leafSha256).toBe(pki.leafSha256); // verified against the pinned leaf
      return seen();
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
    }
  }

  it('pkcs12: env:X with base64 (one line and wrapped at 76): a 0600 file in a 0700 folder, gone afterwards', async () => {
    for (const value of [pfxB64, wrap76(pfxB64)]) {
      const calls = await signWith(
        { pkcs12: 'env:SIGNET_T_PFX', password: 'env:SIGNET_T_PASS' },
        { SIGNET_T_PFX: value, SIGNET_T_PASS: pki.password },
      );
      expect(calls).toHaveLength(1);
      const [c] = calls;
      expect(c).toMatchObject({ flag: '-pkcs12', mode: '600', dirMode: '700' });
      expect(c!.path).toMatch(/\/signet-key-[^/]+\/key\.p12$/);
      expect(existsSync(c!.path)).toBe(false);
      expect(existsSync(join(c!.path, '..'))).toBe(false);
    }
  });

  it('pkcs12 as a path, as env:X naming a path (used in place), and as file: of base64 text (decoded)', async () => {
    const pass = { password: `file:${pki.passwordFile}` };
    expect((await signWith({ pkcs12: pki.pkcs12, ...pass }, {}))[0]!.path).toBe(pki.pkcs12);
    expect(
      (await signWith({ pkcs12: 'env:SIGNET_T_PFX', ...pass }, { SIGNET_T_PFX: pki.pkcs12 }))[0]!.path,
    ).toBe(pki.pkcs12);
    const b64File = join(dir, 'pfx-file.b64');
    writeFileSync(b64File, wrap76(pfxB64));
    const [c] = await signWith({ pkcs12: `file:${b64File}`, ...pass }, {});
    expect(c).toMatchObject({ flag: '-pkcs12', mode: '600', dirMode: '700' });
    expect(existsSync(c!.path)).toBe(false);
  });

  it('PEM cert and key from env (key encrypted, password from env): two private files, both removed', async () => {
    const calls = await signWith(
      { cert: 'env:SIGNET_T_CERT', key: 'env:SIGNET_T_KEY', password: 'env:SIGNET_T_PASS' },
      {
        SIGNET_T_CERT: readFileSync(pki.cert, 'utf8'),
        SIGNET_T_KEY: readFileSync(pki.encryptedKey, 'utf8'),
        SIGNET_T_PASS: pki.password,
      },
    );
    expect(calls.map((c) => [c.flag, c.mode, c.dirMode])).toEqual([
      ['-certs', '600', '700'],
      ['-key', '600', '700'],
    ]);
    for (const c of calls) expect(existsSync(c.path)).toBe(false);
  });

  it('a wrong password fails with E_SIGN_BAD_SECRET and the decoded file is removed too', async () => {
    writeFileSync(log, '');
    const target = fresh();
    const signer = createSigner(
      config(profile({ pkcs12: 'env:SIGNET_T_PFX', password: 'env:SIGNET_T_PASS' })),
      {
        runner,
      },
    );
    process.env['SIGNET_T_PFX'] = pfxB64;
    process.env['SIGNET_T_PASS'] = 'canary-wrong-password-1a2b';
    try {
      const e = await rejectionOf(signer.sign(target));
      scan.seen(e.toJSON(), e.message);
      expect(e.code).toBe('E_SIGN_BAD_SECRET');
    } finally {
      delete process.env['SIGNET_T_PFX'];
      delete process.env['SIGNET_T_PASS'];
    }
    const [c] = seen();
    expect(c).toMatchObject({ flag: '-pkcs12', mode: '600' });
    expect(existsSync(join(c!.path, '..'))).toBe(false);
    expect(readFileSync(target).equals(readFileSync(agent))).toBe(true);
  });

  it('a garbage env value: coded error before any file is touched (no osslsigncode run, no temp folder)', async () => {
    writeFileSync(log, '');
    const privateTmp = join(dir, 'tmp');
    mkdirSync(privateTmp, { recursive: true });
    const before = process.env['TMPDIR'];
    process.env['TMPDIR'] = privateTmp;
    try {
      const signer = createSigner(config(profile({ pkcs12: 'env:SIGNET_T_PFX' })), {
        runner,
        env: { ...process.env, SIGNET_T_PFX: GARBAGE },
      });
      const target = fresh();
      const calls = runner.calls.length;
      const e = await rejectionOf(signer.sign(target));
      expect(e.code).toBe('E_SIGN_KEY_INVALID');
      expect(e.message).toContain('environment variable SIGNET_T_PFX');
      scan.seen(e.toJSON(), e.message, String(e.stack));
      // a batch fails once, up front
      const batch = await rejectionOf(signFiles(signer, [target, fresh()]));
      expect(batch.code).toBe('E_SIGN_KEY_INVALID');
      expect(runner.calls.length).toBe(calls);
      expect(seen()).toEqual([]);
      expect(readdirSync(privateTmp)).toEqual([]);
      expect(readdirSync(dir).filter((f) => f.startsWith('.signet-sign-'))).toEqual([]);
      expect(readFileSync(target).equals(readFileSync(agent))).toBe(true);
    } finally {
      if (before === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = before;
    }
  });

  it('no canary in any argv, tool output, log line, error or file produced', () => {
    scan.assertClean(runner, [dir]);
  });
});
