import { execFile } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { type LocalTsa, startTestTsa } from '../../../test/helpers/tsa.ts';

const BIN = join(import.meta.dirname, '..', 'bin.ts');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function signet(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, NO_COLOR: '1', ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function allFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? allFiles(p) : [p];
  });
}

let dir: string;
let pki: TestPki;
let tsa: LocalTsa;
let agent: string;

beforeAll(async () => {
  dir = tempDir('signet-cli-sign-');
  pki = await makeTestPki();
  tsa = await startTestTsa(pki);
  agent = await buildPe(join(dir, 'agent-src.exe'));
});

describe('signet dev-cert / sign / verify / doctor (CLI, real tools)', () => {
  it('dev-cert makes a labelled PKI; sign timestamps with --tsa-url; verify --json reports every field', async () => {
    const dc = await signet(dir, ['dev-cert', '--out', 'pki', '--json']);
    expect(dc.code, dc.stderr).toBe(0);
    const made = JSON.parse(dc.stdout);
    expect(made.subject).toContain('NOT FOR RELEASE');
    expect(made.profile).toMatchObject({ backend: 'osslsigncode', dev: true, cert: 'pki/chain.pem' });
    // the private keys ignore themselves in any repository
    expect(readFileSync(join(dir, 'pki', '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    writeFileSync(
      join(dir, 'signet.config.yaml'),
      `signing:\n  defaultProfile: dev\n  profiles:\n    dev: ${JSON.stringify(made.profile)}\n`,
    );
    copyFileSync(agent, join(dir, 'a.exe'));
    copyFileSync(agent, join(dir, 'b.exe'));
    // The dev TSA of the same PKI answers timestamps.
    const devTsa = await startTestTsa({ tsaCert: made.tsaCert, tsaKey: made.tsaKey, caCert: made.caCert });
    const s = await signet(dir, ['sign', 'a.exe', 'b.exe', '--tsa-url', devTsa.url, '--json']);
    expect(s.code, s.stderr).toBe(0);
    const signed = JSON.parse(s.stdout);
    expect(signed).toMatchObject({ ok: true, profile: 'dev', dev: true, summary: { signed: 2, failed: 0 } });
    expect(signed.files[0].timestamp).toBeTruthy();
    expect(s.stderr).toMatch(/DEV profile/);
    const v = await signet(dir, ['verify', 'a.exe', 'b.exe', '--json', '--require-timestamp']);
    expect(v.code, v.stderr).toBe(0);
    const report = JSON.parse(v.stdout);
    for (const f of report.files) {
      expect(Object.keys(f)).toEqual(
        expect.arrayContaining([
          'signed',
          'subject',
          'leafSha256',
          'digest',
          'timestamp',
          'signatures',
          'fileSha256',
        ]),
      );
      expect(f).toMatchObject({ signed: true, leafSha256: made.leafSha256, digest: 'sha256', signatures: 1 });
    }
    const rel = await signet(dir, ['sign', 'a.exe', '--release', '--replace']);
    expect(rel.code).toBe(3);
    expect(rel.stderr).toContain('E_SIGN_DEV_PROFILE_REFUSED');
    const wrong = await signet(dir, ['verify', 'a.exe', '--ca-file', pki.wrong.caCert, '--json']);
    expect(wrong.code).toBe(3);
    expect(JSON.parse(wrong.stdout).files[0]).toMatchObject({
      signed: false,
      error: { code: 'E_VERIFY_FAILED' },
    });
  });

  it('many files: one failure fails the command after the others, with a per-file summary (exit 5)', async () => {
    const work = join(dir, 'many');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(work);
    const names = ['1.exe', '2.exe', '3.exe', '4.exe'];
    for (const n of names) copyFileSync(agent, join(work, n));
    const cfg = {
      signing: {
        profiles: {
          release: {
            backend: 'osslsigncode',
            cert: pki.cert,
            key: pki.key,
            timestamp: { urls: [tsa.url], retries: 0, timeoutMs: 5000 },
            verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
          },
        },
      },
    };
    writeFileSync(join(work, 'signet.config.json'), JSON.stringify(cfg));
    const r = await signet(work, [
      'sign',
      '1.exe',
      'nope.exe',
      '2.exe',
      '3.exe',
      '4.exe',
      '--release',
      '--concurrency',
      '2',
      '--json',
    ]);
    expect(r.code).toBe(5);
    const out = JSON.parse(r.stdout);
    expect(out.summary).toEqual({ signed: 4, failed: 1, unsigned: 0 });
    expect(out.files.map((f: { ok: boolean }) => f.ok)).toEqual([true, false, true, true, true]);
    expect(out.files.filter((f: { timestamp?: string }) => f.timestamp).length).toBe(4);
    expect(r.stderr).toContain('4 signed, 1 failed');
  });

  it('a wrong key password through the CLI: exit 3, and the canary is nowhere (stdout, stderr, --verbose, files)', async () => {
    const work = join(dir, 'canary');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(work);
    copyFileSync(agent, join(work, 'x.exe'));
    const canary = 'canary-cli-wrong-pass-31337';
    const cfg = {
      signing: {
        profiles: {
          release: {
            backend: 'osslsigncode',
            cert: pki.cert,
            key: pki.encryptedKey,
            password: 'env:SIGNET_CANARY_PASS',
            timestamp: false,
            verify: { caFile: pki.caCert },
          },
        },
      },
    };
    writeFileSync(join(work, 'signet.config.json'), JSON.stringify(cfg));
    const bad = await signet(work, ['sign', 'x.exe', '--verbose', '--json'], { SIGNET_CANARY_PASS: canary });
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout).files[0].error.code).toBe('E_SIGN_BAD_SECRET');
    const good = await signet(work, ['sign', 'x.exe', '--verbose', '--json'], {
      SIGNET_CANARY_PASS: pki.password,
    });
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toContain('-readpass');
    for (const text of [bad.stdout, bad.stderr, good.stdout, good.stderr]) {
      expect(text).not.toContain(canary);
      expect(text).not.toContain(pki.password);
    }
    for (const f of allFiles(work)) {
      expect(readFileSync(f).includes(Buffer.from(canary)), f).toBe(false);
      expect(readFileSync(f).includes(Buffer.from(pki.password)), f).toBe(false);
    }
  });

  it('doctor --json lists tools with versions and install commands', async () => {
    const d = await signet(dir, ['doctor', '--json']);
    const report = JSON.parse(d.stdout);
    const byName = Object.fromEntries(report.checks.map((c: { name: string }) => [c.name, c]));
    expect(byName.osslsigncode).toMatchObject({ ok: true, required: true });
    expect(byName.osslsigncode.version).toMatch(/^\d+\.\d+/);
    for (const name of [
      'java',
      'makensis',
      'wixl',
      'msibuild',
      'msiextract',
      '7z',
      'softhsm2-util',
      'pkcs11 engine',
      'jsign jar',
    ]) {
      expect(byName[name], name).toBeDefined();
    }
    expect(byName['jsign jar'].ok ? byName['jsign jar'].path : byName['jsign jar'].install).toBeTruthy();
    expect(d.code).toBe(report.ok ? 0 : 4);
  });
});
