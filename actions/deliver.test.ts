/**
 * The deliver action run from its bundle the way a runner runs it (INPUT_*, GITHUB_OUTPUT,
 * GITHUB_STEP_SUMMARY), against a real HTTPS callback with a private CA. The bundle is built here
 * (only actions/deliver/dist is written; the committed dist is the lead's to rebuild).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bundleActions } from '../scripts/build.ts';
import { type CallbackServer, makeTls, startCallbackServer } from '../test/helpers/callback-server.ts';
import { type DistRun, runDist } from '../test/helpers/run-dist.ts';
import { tempDir } from '../test/helpers/tmp.ts';
import { generateSealKeyPair, type SealKeyPair, seal } from '../tools/lib/seal/index.ts';

const root = join(import.meta.dirname, '..');
const TOKEN = 'canary-action-callback-token-9f02ad';
const REQ = 'rmm-req:2025-06-01.0042';
const ws = tempDir('signet-deliver-ws-');
const exe = randomBytes((1 << 20) + 17);
mkdirSync(join(ws, 'installers'));
writeFileSync(join(ws, 'installers', 'Agent-north-v2-BEEF.exe'), exe);
writeFileSync(join(ws, 'installers', 'Agent-north-v2-BEEF.msi'), 'msi bytes');
writeFileSync(
  join(ws, 'installers', 'north.manifest.json'),
  JSON.stringify({
    site: { siteCode: 'north' },
    outputs: [{ name: 'Agent-north-v2-BEEF.exe' }, { name: 'Agent-north-v2-BEEF.msi' }],
  }),
);

let server: CallbackServer;
let kp: SealKeyPair;
let sealed: string;
let ca: string;

beforeAll(async () => {
  const files = await bundleActions();
  for (const [path, text] of files)
    if (path.startsWith('actions/deliver/dist/')) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
  ca = (await makeTls()).caFile;
  server = await startCallbackServer({ token: TOKEN, requestId: REQ });
  kp = await generateSealKeyPair();
  sealed = await seal(TOKEN, kp.publicKey);
});
beforeEach(() => {
  server.requests.length = 0;
  server.notices.length = 0;
  server.files.clear();
});

/** No secret in anything the step printed or left (the runner's own ::add-mask:: lines aside). */
function assertClean(r: DistRun, secrets: string[]): void {
  const lines = r.stdout.split('\n');
  const texts = [
    ...lines.filter((l) => !l.startsWith('::add-mask::')),
    r.stderr,
    r.summary,
    JSON.stringify(r.outputs),
  ];
  for (const s of secrets)
    expect(texts.filter((t) => t.includes(s)).map((t) => t.replaceAll(s, '<<SECRET>>'))).toEqual([]);
  expect(texts.join('\n')).not.toContain('sig=query-part');
}

describe('deliver action (bundled dist, real HTTPS callback)', () => {
  it('opens the sealed token, uploads, sends the notice; outputs and summary; no secret anywhere', async () => {
    // as workflows/site-installers.yml calls it: the sealed token in a file, every file of the out-dir
    writeFileSync(join(ws, 'token.sealed'), sealed);
    mkdirSync(join(ws, 'installers', 'a-folder'), { recursive: true });
    const r = await runDist(
      'deliver',
      {
        'callback-url': server.url,
        'sealed-token': `file:${join(ws, 'token.sealed')}`,
        'seal-private-key': kp.privateKey,
        'request-id': REQ,
        files: `${join(ws, 'installers')}/*`,
        'ca-file': ca,
      },
      { workspace: ws, env: { GITHUB_RUN_ID: '555', GITHUB_SERVER_URL: 'https://git.example.com' } },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`::add-mask::${kp.privateKey}`);
    const tokenMask = lines.indexOf(`::add-mask::${TOKEN}`);
    expect(tokenMask).toBeGreaterThan(0);
    expect(tokenMask).toBeLessThan(lines.findIndex((l) => l.startsWith('delivered ')));
    assertClean(r, [TOKEN, kp.privateKey]);
    expect(server.files.get('Agent-north-v2-BEEF.exe')!.equals(exe)).toBe(true);
    expect(server.requests.every((q) => q.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    const sha = createHash('sha256').update(exe).digest('hex');
    const files = JSON.parse(r.outputs['files']!);
    expect(files[0]).toEqual({
      name: 'Agent-north-v2-BEEF.exe',
      size: exe.length,
      sha256: sha,
      siteCode: 'north',
    });
    expect(files.map((f: { name: string; siteCode?: string }) => `${f.name}:${f.siteCode}`)).toEqual([
      'Agent-north-v2-BEEF.exe:north',
      'Agent-north-v2-BEEF.msi:north',
      'north.manifest.json:north',
    ]);
    expect(r.outputs['delivered']).toBe('3');
    expect(r.outputs['request-id']).toBe(REQ);
    expect(server.notices).toEqual([
      expect.objectContaining({
        requestId: REQ,
        status: 'success',
        files,
        run: expect.objectContaining({
          repository: 'acme/agent',
          runUrl: 'https://git.example.com/acme/agent/actions/runs/555',
        }),
      }),
    ]);
    expect(r.summary).toContain("Delivered 3 file(s) to the vendor's server");
    expect(r.summary).toContain(`| request id | ${REQ} |`);
    expect(r.summary).toContain(`| Agent-north-v2-BEEF.exe | ${exe.length} | ${sha} | north |`);
    expect(r.summary).toContain(`| to | ${server.origin}/cb/`);
  });

  it('status failure sends only the failure notice (key from SIGNET_SEAL_PRIVATE_KEY)', async () => {
    const r = await runDist(
      'deliver',
      {
        'callback-url': server.url,
        'sealed-token': sealed,
        'request-id': REQ,
        status: 'failure',
        'error-message': 'the Build step failed',
        'ca-file': ca,
      },
      { workspace: ws, env: { SIGNET_SEAL_PRIVATE_KEY: kp.privateKey } },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    assertClean(r, [TOKEN, kp.privateKey]);
    expect(server.requests.map((q) => q.method)).toEqual(['POST']);
    expect(server.notices[0]).toMatchObject({
      requestId: REQ,
      status: 'failure',
      files: [],
      error: { code: 'E_BUILD_FAILED', message: 'the Build step failed' },
    });
    expect(r.outputs).toMatchObject({ delivered: '0', 'request-id': REQ, files: '[]' });
    expect(r.summary).toContain('Failure notice delivered');
  });

  it('fails the step with the code: refused callback, bad inputs, rejected token', async () => {
    const base = {
      'sealed-token': sealed,
      'seal-private-key': kp.privateKey,
      'request-id': REQ,
      'ca-file': ca,
    };
    const plain = await runDist(
      'deliver',
      { ...base, 'callback-url': 'http://rmm.example.com/cb', files: 'installers/*.msi' },
      { workspace: ws },
    );
    expect(plain.code).toBe(2);
    expect(plain.stdout).toMatch(/::error::\[E_DELIVER_URL\] input callback-url must be https/);
    const bad = await runDist(
      'deliver',
      { 'callback-url': server.url, 'request-id': 'no spaces allowed', token: TOKEN, 'sealed-token': sealed },
      { workspace: ws },
    );
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/\[E_INPUT_INVALID\].*input request-id: expected the id the server chose/);
    assertClean(bad, [TOKEN]);
    const wrong = await seal('canary-stale-token-4411', kp.publicKey);
    const denied = await runDist(
      'deliver',
      { ...base, 'sealed-token': wrong, 'callback-url': server.url, files: 'installers/*.msi' },
      { workspace: ws },
    );
    expect(denied.code).toBe(4);
    expect(denied.stdout).toMatch(/::error::\[E_DELIVER_AUTH\]/);
    assertClean(denied, ['canary-stale-token-4411', kp.privateKey]);
    expect(server.requests).toHaveLength(1); // the refused upload only: no retry, no notice
  });
});
