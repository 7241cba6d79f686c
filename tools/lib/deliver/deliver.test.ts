import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CallbackServer, makeTls, startCallbackServer } from '../../../test/helpers/callback-server.ts';
import { CanaryScanner } from '../../../test/helpers/canary.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { SignetError } from '../errors.ts';
import { clearSecrets } from '../redact.ts';
import { sealEnrollmentKey } from '../seal/enrollment.ts';
import { generateSealKeyPair, seal } from '../seal/index.ts';
import { type DeliverOptions, deliver } from './index.ts';
import { checkCallback, endpoint } from './protocol.ts';

const TOKEN = 'canary-callback-token-5e8a13c7d2';
const REQ = 'req-2024.11:ACME_HQ-42';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const dir = tempDir('signet-deliver-');
const big = randomBytes(3 * (1 << 20) + 4321); // several transport chunks, not a multiple of one
const small = Buffer.from('MZ small msi bytes');
mkdirSync(join(dir, 'installers'));
writeFileSync(join(dir, 'installers', 'Agent-ACME-HQ-v3-AB12.exe'), big);
writeFileSync(join(dir, 'installers', 'Agent-ACME-HQ-v3-AB12.msi'), small);
writeFileSync(
  join(dir, 'installers', 'ACME-HQ.manifest.json'),
  JSON.stringify({
    site: { siteCode: 'ACME-HQ' },
    outputs: [{ name: 'Agent-ACME-HQ-v3-AB12.exe' }, { name: 'Agent-ACME-HQ-v3-AB12.msi' }],
  }),
);

let server: CallbackServer;
let caFile: string;
let scan: CanaryScanner;
let sleeps: number[];
const env = {
  CB_TOKEN: TOKEN,
  GITHUB_REPOSITORY: 'acme/agent',
  GITHUB_RUN_ID: '9001',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_SERVER_URL: 'https://github.com',
};

beforeAll(async () => {
  caFile = (await makeTls()).caFile;
  server = await startCallbackServer({ token: TOKEN, requestId: REQ });
});
beforeEach(() => {
  server.requests.length = 0;
  server.notices.length = 0;
  server.files.clear();
  sleeps = [];
  scan = new CanaryScanner([TOKEN]);
});
afterEach(() => {
  scan.seen(...server.notices);
  scan.assertClean(undefined, [dir]);
  scan.restore();
  clearSecrets();
});
afterAll(() => server.close());

function opts(over: Partial<DeliverOptions> = {}): DeliverOptions {
  return {
    callback: server.url,
    token: { kind: 'ref', ref: 'env:CB_TOKEN' },
    requestId: REQ,
    files: ['installers/*.exe', 'installers/*.msi'],
    cwd: dir,
    caFile,
    env,
    retry: {
      retries: 3,
      baseDelayMs: 10,
      maxDelayMs: 5000,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    },
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<SignetError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(SignetError);
  scan.seen((e as SignetError).message, (e as SignetError).toJSON());
  return e as SignetError;
}

describe('deliver to the vendor callback (real HTTPS server, private CA)', () => {
  it('uploads every file byte for byte with token, request id and SHA-256, then the completion notice', async () => {
    const r = await deliver(opts());
    scan.seen(r);
    expect(server.files.get('Agent-ACME-HQ-v3-AB12.exe')!.equals(big)).toBe(true);
    expect(server.files.get('Agent-ACME-HQ-v3-AB12.msi')!.equals(small)).toBe(true);
    const puts = server.requests.filter((q) => q.method === 'PUT');
    expect(puts.map((q) => q.path)).toEqual([
      `/cb/${REQ}/files/Agent-ACME-HQ-v3-AB12.exe`,
      `/cb/${REQ}/files/Agent-ACME-HQ-v3-AB12.msi`,
    ]);
    for (const q of server.requests) {
      expect(q.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(q.headers['x-signet-request-id']).toBe(REQ);
      expect(q.query).toBe('?sig=query-part-7d41'); // the callback's query travels on every request
    }
    expect(puts[0]!.headers).toMatchObject({
      'content-type': 'application/octet-stream',
      'content-length': String(big.length),
      'x-signet-sha256': sha(big),
      'x-signet-site-code': 'ACME-HQ',
    });
    const files = [
      { name: 'Agent-ACME-HQ-v3-AB12.exe', size: big.length, sha256: sha(big), siteCode: 'ACME-HQ' },
      { name: 'Agent-ACME-HQ-v3-AB12.msi', size: small.length, sha256: sha(small), siteCode: 'ACME-HQ' },
    ];
    expect(server.notices).toEqual([
      {
        schema: 'signet.delivery/v1',
        requestId: REQ,
        status: 'success',
        files,
        run: {
          repository: 'acme/agent',
          runId: '9001',
          runAttempt: '2',
          runUrl: 'https://github.com/acme/agent/actions/runs/9001',
        },
      },
    ]);
    expect(server.requests.at(-1)!.path).toBe(`/cb/${REQ}/complete`);
    expect(r).toMatchObject({ requestId: REQ, status: 'success', delivered: 2, files });
    expect(r.callback).toBe(`${server.origin}/cb/${REQ}`);
    expect(scan.texts.join('\n')).not.toContain('query-part');
    // re-delivery with the same request id overwrites by name and sends a second notice
    await deliver(opts());
    expect(server.files.size).toBe(2);
    expect(server.notices).toHaveLength(2);
  });

  it('retries 500, a dropped connection and 429 (honouring Retry-After), re-sending the whole file', async () => {
    server.fail({ status: 500 }, { drop: true }, { status: 429, headers: { 'retry-after': '2' } });
    const r = await deliver(opts({ files: ['installers/*.exe'] }));
    expect(r.delivered).toBe(1);
    const puts = server.requests.filter((q) => q.method === 'PUT');
    expect(puts).toHaveLength(4);
    for (const p of puts) expect(p.body.equals(big)).toBe(true);
    expect(sleeps).toHaveLength(3);
    expect(sleeps[2]).toBe(2000);
    expect(server.files.get('Agent-ACME-HQ-v3-AB12.exe')!.equals(big)).toBe(true);
  });

  it('gives up after the retries with a coded error and still sends a failure notice', async () => {
    server.fail({ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 });
    const e = await failure(deliver(opts({ files: ['installers/*.msi'] })));
    expect(e.code).toBe('E_DELIVER_FAILED');
    expect(e.exitCode).toBe(1);
    expect(e.message).toMatch(/upload of Agent-ACME-HQ-v3-AB12\.msi .* failed after 4 attempts: HTTP 503/);
    expect(server.notices).toEqual([
      expect.objectContaining({
        requestId: REQ,
        status: 'failure',
        files: [],
        error: expect.objectContaining({ code: 'E_DELIVER_FAILED' }),
      }),
    ]);
  });

  it('401 is a coded error at once: no retry, no further request', async () => {
    const e = await failure(deliver(opts({ env: { ...env, CB_TOKEN: 'canary-wrong-token-88aa' } })));
    expect(e.code).toBe('E_DELIVER_AUTH');
    expect(e.exitCode).toBe(4);
    expect(e.hint).toMatch(/token/);
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(JSON.stringify(e.toJSON())).not.toContain('canary-wrong-token-88aa');
  });

  it('a redirect to another origin is not followed: the token never goes there', async () => {
    const other = await startCallbackServer({ token: TOKEN, requestId: REQ });
    server.fail({ status: 307, headers: { location: `${other.origin}/cb/${REQ}/files/x` } });
    const e = await failure(deliver(opts({ files: ['installers/*.msi'] })));
    expect(e.code).toBe('E_DELIVER_FAILED');
    expect(e.message).toContain(`redirect (HTTP 307 to ${other.origin})`);
    expect(other.requests).toEqual([]);
    await other.close();
  });

  it('refuses http:// to a non-loopback host and user:pass@ before any request or token lookup', async () => {
    const noToken = { kind: 'ref', ref: 'env:UNSET_TOKEN_VAR' } as const;
    for (const callback of [
      'http://rmm.example.com/cb',
      `https://user:s3cretpw@${server.origin.slice(8)}/cb/${REQ}`,
      `${server.origin.replace('https', 'ftp')}/cb`,
      'not a url',
    ]) {
      const e = await failure(deliver(opts({ callback, token: noToken })));
      expect(e.code, callback).toBe('E_DELIVER_URL');
      expect(e.exitCode).toBe(2);
      expect(e.message).toMatch(/^--callback /);
      expect(JSON.stringify(e.toJSON())).not.toContain('s3cretpw');
    }
    expect(server.requests).toEqual([]);
    expect(checkCallback('http://127.0.0.1:9/x').protocol).toBe('http:');
    expect(checkCallback('http://localhost/x').hostname).toBe('localhost');
    expect(endpoint(new URL('https://h/a/b/?q=1'), 'files', 'a b.exe')).toBe(
      'https://h/a/b/files/a%20b.exe?q=1',
    );
  });

  it('a failure notice carries no files (a stray list is ignored), the error code and a redacted message', async () => {
    const r = await deliver(
      opts({
        status: 'failure',
        files: [],
        error: { code: 'E_INSTALLER_BUILD_FAILED', message: `makensis failed near ${TOKEN}` },
      }),
    );
    expect(r).toMatchObject({ status: 'failure', delivered: 0, files: [] });
    expect(server.requests.map((q) => `${q.method} ${q.path}`)).toEqual([`POST /cb/${REQ}/complete`]);
    expect(server.notices[0]).toMatchObject({
      requestId: REQ,
      status: 'failure',
      files: [],
      error: { code: 'E_INSTALLER_BUILD_FAILED', message: 'makensis failed near ***' },
    });
    // a stray file list does not stop the failure notice: ignored, with a warning
    server.requests.length = 0;
    await deliver(opts({ status: 'failure' }));
    expect(server.requests.map((q) => q.method)).toEqual(['POST']);
    expect(scan.texts.join('\n')).toMatch(/a failure notice carries no files: FILE ignored/);
  });

  it('a sealed token is opened with the seal private key; a wrong key sends nothing', async () => {
    const kp = await generateSealKeyPair();
    const other = await generateSealKeyPair();
    const sealed = await seal(TOKEN, kp.publicKey);
    const scanKey = new CanaryScanner([kp.privateKey, other.privateKey]);
    await deliver(
      opts({ files: ['installers/*.msi'], token: { kind: 'sealed', sealed, privateKey: kp.privateKey } }),
    );
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const before = server.requests.length;
    const e = await failure(
      deliver(opts({ token: { kind: 'sealed', sealed, privateKey: other.privateKey } })),
    );
    expect(e.code).toBe('E_SEAL_FAILED');
    expect(server.requests).toHaveLength(before);
    const missing = await failure(
      deliver(opts({ token: { kind: 'sealed', sealed, privateKey: undefined } })),
    );
    expect(missing.code).toBe('E_SECRET_MISSING');
    scanKey.seen(...scan.texts, e.toJSON(), missing.toJSON());
    scanKey.assertClean();
    scanKey.restore();
  });

  it('a sealed enrollment key given as the callback token is refused before anything is sent', async () => {
    const kp = await generateSealKeyPair();
    const siteKey = 'canary-site-key-as-token-61f0a9';
    const sealed = await sealEnrollmentKey({ siteCode: 'north', keyVersion: 1, key: siteKey }, kp.publicKey);
    const before = server.requests.length;
    const e = await failure(deliver(opts({ token: { kind: 'sealed', sealed, privateKey: kp.privateKey } })));
    expect(e.code).toBe('E_SEAL_FORMAT');
    expect(server.requests).toHaveLength(before);
    expect(JSON.stringify(e.toJSON())).not.toContain(siteKey);
  });

  it('an untrusted server certificate fails at once with the --ca-file fix; nothing is sent', async () => {
    const e = await failure(deliver(opts({ caFile: (await makeTls()).otherCaFile })));
    expect(e.code).toBe('E_DELIVER_FAILED');
    expect(e.hint).toMatch(/--ca-file/);
    expect(sleeps).toEqual([]);
    expect(server.requests).toEqual([]);
  });

  it('a server that reports other bytes, or stays silent, fails the delivery', async () => {
    server.fail({ status: 201, body: JSON.stringify({ sha256: '0'.repeat(64) }) });
    const e = await failure(deliver(opts({ files: ['installers/*.msi'] })));
    expect(e.message).toMatch(/stored different bytes/);
    server.fail({ hang: true });
    const t = await failure(
      deliver(
        opts({
          files: ['installers/*.msi'],
          idleTimeoutMs: 300,
          retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
        }),
      ),
    );
    expect(t.code).toBe('E_DELIVER_FAILED');
    expect(t.message).toMatch(/network error: no progress for 300 ms/);
  });

  it('names the bad input: request id, file names, missing files, error code', async () => {
    const id = await failure(deliver(opts({ requestId: 'a/b' })));
    expect(id.code).toBe('E_INPUT_INVALID');
    expect(id.message).toMatch(/^--request-id must be/);
    writeFileSync(join(dir, '.hidden.exe'), 'x');
    const name = await failure(deliver(opts({ files: ['.hidden.exe'] })));
    expect(name.message).toMatch(/\.hidden\.exe.*letters, digits/);
    const none = await failure(deliver(opts({ files: ['nothing/*.exe'] })));
    expect(none.code).toBe('E_FILE_NOT_FOUND');
    const code = await failure(deliver(opts({ status: 'failure', files: [], error: { code: 'bad code!' } })));
    expect(code.code).toBe('E_INPUT_INVALID');
    const empty = await failure(deliver(opts({ files: [] })));
    expect(empty.message).toMatch(/at least one file/);
    expect(server.requests).toEqual([]);
  });
});
