import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryScanner } from '../../../test/helpers/canary.ts';
import { codeOf } from '../../../test/helpers/code-of.ts';
import { buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { type SigningServer, startSigningServer } from '../../../test/helpers/signing-server.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { parseConfig } from '../config/load.ts';
import type { SignetError } from '../errors.ts';
import { clearSecrets } from '../redact.ts';
import { createSigner, signFiles } from './index.ts';
import { checkRemoteUrl, remoteHeaders } from './remote.ts';

const TOKEN = 'canary-remote-token-c0ffee42';
let pki: TestPki;
let server: SigningServer;
let dir: string;
let agent: string;
let n = 0;

function config(extra: Record<string, unknown> = {}) {
  return parseConfig(
    {
      signing: {
        profiles: {
          release: {
            backend: 'remote',
            url: server.url,
            token: 'env:SIGNET_TEST_REMOTE_TOKEN',
            retries: 2,
            retryWaitMs: 20,
            timeoutMs: 5000,
            timestamp: false,
            verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
            ...extra,
          },
        },
      },
    },
    'test',
  );
}

function fresh(): string {
  const p = join(dir, `${++n}-agent.exe`);
  copyFileSync(agent, p);
  return p;
}

let scan: CanaryScanner;
beforeAll(async () => {
  dir = tempDir('signet-remote-');
  pki = await makeTestPki();
  agent = await buildPe(join(dir, 'agent-src.exe'));
  server = await startSigningServer({
    token: TOKEN,
    key: { cert: pki.cert, key: pki.key },
    wrongKey: { cert: pki.wrong.cert, key: pki.wrong.key },
    delayMs: 3000,
  });
  process.env['SIGNET_TEST_REMOTE_TOKEN'] = TOKEN;
  scan = new CanaryScanner([TOKEN]);
});
afterAll(() => {
  // Everything Signet printed or left in the work dir over the whole file: no token anywhere.
  scan.assertClean(undefined, [dir]);
  scan.restore();
  delete process.env['SIGNET_TEST_REMOTE_TOKEN'];
  clearSecrets();
});

describe('remote signing backend (local test server)', () => {
  it('pure parts: loopback-only http, headers without the token', () => {
    expect(() => checkRemoteUrl('http://sign.example.com/')).toThrow(/https/);
    expect(checkRemoteUrl('https://sign.example.com/x').host).toBe('sign.example.com');
    expect(checkRemoteUrl('http://127.0.0.1:9/x').port).toBe('9');
    expect(remoteHeaders({ description: 'a b.exe', nest: true, size: 10 }, 'sha256')).toEqual({
      'content-type': 'application/octet-stream',
      'content-length': '10',
      'x-signet-file-name': 'a%20b.exe',
      'user-agent': 'signet',
      'x-signet-nest': '1',
      'x-signet-digest': 'sha256',
    });
  });

  it('POSTs the file with the bearer token and accepts the verified result', async () => {
    server.mode = 'ok';
    const before = server.requests;
    const a = await createSigner(config()).sign(fresh());
    expect(a.signature.leafSha256).toBe(pki.leafSha256);
    expect(server.requests).toBe(before + 1);
    expect(server.authHeaders.at(-1)).toBe(`Bearer ${TOKEN}`);
  });

  it('401 → "signing token rejected" without retry; 403 too', async () => {
    process.env['SIGNET_TEST_REMOTE_TOKEN_BAD'] = 'canary-bad-token-0001';
    const before = server.requests;
    try {
      await createSigner(config({ token: 'env:SIGNET_TEST_REMOTE_TOKEN_BAD' })).sign(fresh());
      expect.unreachable();
    } catch (e) {
      expect((e as SignetError).code).toBe('E_SIGN_TOKEN_REJECTED');
      expect((e as Error).message).toMatch(/signing token rejected/);
      scan.seen((e as Error).message, (e as SignetError).toJSON());
    }
    expect(server.requests).toBe(before + 1);
    server.failNext(1, 'forbidden');
    expect(await codeOf(createSigner(config()).sign(fresh()))).toBe('E_SIGN_TOKEN_REJECTED');
    expect(server.requests).toBe(before + 2);
  });

  it('a 500 then success: retried with backoff', async () => {
    server.failNext(1, 'error');
    const before = server.requests;
    const a = await createSigner(config()).sign(fresh());
    expect(a.signature.signatures).toBe(1);
    expect(server.requests).toBe(before + 2);
  });

  it('a timeout on every attempt → E_SIGN_REMOTE_FAILED after the retries, input untouched', async () => {
    server.mode = 'slow';
    const before = server.requests;
    const file = fresh();
    const bytes = readFileSync(file);
    try {
      expect(await codeOf(createSigner(config({ timeoutMs: 300, retries: 1 })).sign(file))).toBe(
        'E_SIGN_REMOTE_FAILED',
      );
    } finally {
      server.mode = 'ok';
    }
    expect(server.requests).toBe(before + 2);
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it('rejects a server that returns the file unsigned, signed by the wrong certificate, corrupted, or another binary', async () => {
    for (const [mode, code] of [
      ['unsigned', 'E_VERIFY_UNSIGNED'],
      ['wrong-cert', 'E_VERIFY_FAILED'],
      ['corrupt', 'E_VERIFY_FAILED'],
      ['swapped', 'E_VERIFY_FAILED'], // validly signed by the right key, but not the binary we sent
    ] as const) {
      server.mode = mode;
      const file = fresh();
      const out = join(dir, `${mode}-out.exe`);
      try {
        expect(await codeOf(createSigner(config()).sign(file, { out })), mode).toBe(code);
      } finally {
        server.mode = 'ok';
      }
      expect(existsSync(out)).toBe(false);
    }
    server.mode = 'swapped';
    try {
      await createSigner(config()).sign(fresh());
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(/differs from what was sent/);
    } finally {
      server.mode = 'ok';
    }
    // Trusting the wrong CA as well still fails on the pinned leaf.
    server.mode = 'wrong-cert';
    try {
      const both = config({ verify: { caFile: pki.wrong.caCert, leafSha256: [pki.leafSha256] } });
      expect(await codeOf(createSigner(both).sign(fresh()))).toBe('E_VERIFY_PIN_MISMATCH');
    } finally {
      server.mode = 'ok';
    }
    expect(readdirSync(dir).filter((f) => f.startsWith('.signet-sign-'))).toEqual([]);
  });

  it('over HTTPS: trusts the server through caFile; an untrusted server certificate fails after retries', async () => {
    const tls = await startSigningServer({
      token: TOKEN,
      key: { cert: pki.cert, key: pki.key },
      wrongKey: { cert: pki.wrong.cert, key: pki.wrong.key },
      tls: { caCert: pki.caCert, caKey: pki.caKey },
    });
    expect(tls.url).toMatch(/^https:/);
    const a = await createSigner(config({ url: tls.url, caFile: pki.caCert })).sign(fresh());
    expect(a.signature.leafSha256).toBe(pki.leafSha256);
    expect(tls.authHeaders.at(-1)).toBe(`Bearer ${TOKEN}`);
    const before = tls.requests;
    const untrusted = config({ url: tls.url, caFile: pki.wrong.caCert, retries: 1 });
    expect(await codeOf(createSigner(untrusted).sign(fresh()))).toBe('E_SIGN_REMOTE_FAILED');
    expect(tls.requests).toBe(before); // the TLS handshake failed: the file and token were never sent
  });

  it('--allow-unsigned-fallback keeps the unsigned file marked signed: false; refused on the release path', async () => {
    expect(() =>
      createSigner(config(), { releasePath: true, overrides: { allowUnsignedFallback: true } }),
    ).toThrow(/refused on the release path/);
    server.mode = 'error';
    const warnings: string[] = [];
    try {
      const signer = createSigner(config({ retries: 0 }), { overrides: { allowUnsignedFallback: true } });
      const file = fresh();
      const r = await signFiles(signer, [file]);
      expect(r).toMatchObject({ ok: true, signed: 0, unsigned: 1, failed: 0 });
      expect(r.results[0]).toMatchObject({
        ok: true,
        signed: false,
        fallback: { code: 'E_SIGN_REMOTE_FAILED' },
      });
      expect(r.results[0]?.artifact).toBeUndefined();
      warnings.push(...scan.texts.filter((t) => t.includes('NOT SIGNED')));
      const strict = await signFiles(createSigner(config({ retries: 0 })), [fresh()]);
      expect(strict).toMatchObject({ ok: false, failed: 1, unsigned: 0 });
    } finally {
      server.mode = 'ok';
    }
    expect(warnings.length).toBeGreaterThan(0);
  });
});
