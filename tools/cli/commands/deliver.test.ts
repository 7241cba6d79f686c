import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CallbackServer, makeTls, startCallbackServer } from '../../../test/helpers/callback-server.ts';
import { collect } from '../../../test/helpers/spawn.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { generateSealKeyPair, seal } from '../../lib/seal/index.ts';

const bin = join(import.meta.dirname, '..', 'bin.ts');
const TOKEN = 'canary-cli-callback-token-0b7e44';
const REQ = 'srv-req-77';
const dir = tempDir('signet-cli-deliver-');
const data = randomBytes(1 << 20);
mkdirSync(join(dir, 'out'));
writeFileSync(join(dir, 'out', 'Agent-north-v1-C0DE.exe'), data);
writeFileSync(join(dir, 'out', 'Agent-north-v1-C0DE.msi'), 'msi');

/** The CLI as a child process (async: the callback server lives in this process). */
function run(args: string[], env: Record<string, string> = {}) {
  return collect(process.execPath, [bin, ...args], {
    cwd: dir,
    env: { ...process.env, CB_TOKEN: TOKEN, ...env },
  });
}

let server: CallbackServer;
let ca: string;
const base = () => ['deliver', '--callback', server.url, '--request-id', REQ, '--ca-file', ca];
const clean = (r: { stdout: string; stderr: string }, ...secrets: string[]) => {
  for (const s of [TOKEN, ...secrets]) expect(r.stdout + r.stderr).not.toContain(s);
  expect(r.stdout + r.stderr).not.toContain('sig=');
};

beforeAll(async () => {
  ca = (await makeTls()).caFile;
  server = await startCallbackServer({ token: TOKEN, requestId: REQ });
});
beforeEach(() => {
  server.requests.length = 0;
  server.notices.length = 0;
  server.files.clear();
});

describe('signet deliver (CLI, real HTTPS callback)', () => {
  it('uploads the files and prints the result as JSON; the token appears nowhere', async () => {
    const r = await run([...base(), '--token', 'env:CB_TOKEN', 'out/*.exe', 'out/*.msi', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ requestId: REQ, status: 'success', delivered: 2 });
    expect(out.files[0]).toEqual({
      name: 'Agent-north-v1-C0DE.exe',
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
    });
    expect(server.files.get('Agent-north-v1-C0DE.exe')!.equals(data)).toBe(true);
    expect(server.notices[0]).toMatchObject({ requestId: REQ, status: 'success', files: out.files });
    clean(r);
  });

  it('--status failure sends only the notice', async () => {
    const r = await run([
      ...base(),
      '--token',
      'env:CB_TOKEN',
      '--status',
      'failure',
      '--error-code',
      'E_INSTALLER_BUILD_FAILED',
      '--error-message',
      'site north failed',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/failure notice for request srv-req-77 accepted/);
    expect(server.requests.map((q) => q.method)).toEqual(['POST']);
    expect(server.notices[0]).toMatchObject({
      status: 'failure',
      files: [],
      error: { code: 'E_INSTALLER_BUILD_FAILED', message: 'site north failed' },
    });
    clean(r);
  });

  it('opens a sealed token file with SIGNET_SEAL_PRIVATE_KEY; neither secret is printed', async () => {
    const kp = await generateSealKeyPair();
    writeFileSync(join(dir, 'token.sealed'), `${await seal(TOKEN, kp.publicKey)}\n`);
    const r = await run([...base(), '--sealed-token-file', 'token.sealed', 'out/*.msi', '--verbose'], {
      SIGNET_SEAL_PRIVATE_KEY: kp.privateKey,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    clean(r, kp.privateKey);
    const none = await run([...base(), '--sealed-token-file', 'token.sealed', 'out/*.msi'], {
      SIGNET_SEAL_PRIVATE_KEY: '',
    });
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/E_SECRET_MISSING/);
  });

  it('a 500 is retried; a 401 exits 4 at once; a literal token or a plain-http host is refused with exit 2', async () => {
    server.fail({ status: 500 });
    const retried = await run([...base(), '--token', 'env:CB_TOKEN', 'out/*.msi']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stderr).toMatch(/HTTP 500; retry 1\/5/);
    expect(server.requests.filter((q) => q.method === 'PUT')).toHaveLength(2);

    server.requests.length = 0;
    const denied = await run([...base(), '--token', 'env:CB_TOKEN', 'out/*.msi', '--json'], {
      CB_TOKEN: 'canary-expired-token-1234',
    });
    expect(denied.code).toBe(4);
    expect(JSON.parse(denied.stdout).error.code).toBe('E_DELIVER_AUTH');
    expect(server.requests).toHaveLength(1);
    clean(denied, 'canary-expired-token-1234');

    server.requests.length = 0;
    const literal = await run([...base(), '--token', 'literal-token-on-argv', 'out/*.msi', '--json']);
    expect(literal.code).toBe(2);
    expect(JSON.parse(literal.stdout).error.code).toBe('E_SECRET_ON_ARGV');
    expect(literal.stdout + literal.stderr).not.toContain('literal-token-on-argv');
    const plain = await run([
      'deliver',
      '--callback',
      'http://rmm.example.com/cb',
      '--request-id',
      REQ,
      '--token',
      'env:CB_TOKEN',
      'out/*.msi',
    ]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/E_DELIVER_URL.*must be https/);
    const both = await run([...base(), '--token', 'env:CB_TOKEN', '--sealed-token-file', 'token.sealed']);
    expect(both.code).toBe(2);
    expect(server.requests).toEqual([]);
  });
});
