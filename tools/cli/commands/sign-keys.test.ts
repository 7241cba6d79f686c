/**
 * `signet sign` with the PKCS#12 in a CI secret (base64 in an env var), through the CLI: signs and
 * verifies; a garbage value is a coded usage error that never prints the value; SIGTERM or SIGINT
 * mid-signing leaves no decoded key file in the temp folder (TMPDIR points at a private one).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';

const BIN = join(import.meta.dirname, '..', 'bin.ts');
const GARBAGE = 'canary-cli-garbage-pfx-##-77e1';

let dir: string;
let pki: TestPki;
let agent: string;
let pfxB64: string;

function signet(cwd: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, NO_COLOR: '1', ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Signet's entries in a temp folder (Node keeps its own compile cache there too). */
const signetEntries = (tmp: string) => readdirSync(tmp).filter((f) => f.startsWith('signet-'));

/** A work folder with the agent, a private TMPDIR and a config whose profile reads the PFX from env. */
function workspace(name: string, osslsigncode = 'osslsigncode') {
  const work = join(dir, name);
  const tmp = join(work, 'tmp');
  mkdirSync(tmp, { recursive: true });
  copyFileSync(agent, join(work, 'x.exe'));
  const profile = {
    backend: 'osslsigncode',
    osslsigncode,
    pkcs12: 'env:SIGNET_SIGN_PFX',
    password: 'env:SIGNET_SIGN_PASSWORD',
    timestamp: false,
    verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
  };
  writeFileSync(
    join(work, 'signet.config.json'),
    JSON.stringify({ signing: { profiles: { release: profile } } }),
  );
  return { work, tmp, env: { TMPDIR: tmp, SIGNET_SIGN_PFX: pfxB64, SIGNET_SIGN_PASSWORD: pki.password } };
}

beforeAll(async () => {
  dir = tempDir('signet-cli-keys-');
  pki = await makeTestPki();
  agent = await buildPe(join(dir, 'agent-src.exe'));
  pfxB64 = readFileSync(pki.pkcs12).toString('base64').replace(/.{76}/g, '$&\n');
});

describe('signet sign with key material from env (CLI)', () => {
  it('signs and verifies with pkcs12: env:X holding base64 (76-char lines); the temp folder is left empty', async () => {
    const { work, tmp, env } = workspace('ok');
    const r = await signet(work, ['sign', 'x.exe', '--json', '--verbose'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).files[0]).toMatchObject({
      ok: true,
      signed: true,
      leafSha256: pki.leafSha256,
    });
    expect(r.stderr).toMatch(/-pkcs12 \S*signet-key-\S*\/key\.p12/); // --verbose shows the command line
    expect(signetEntries(tmp)).toEqual([]);
    for (const line of pfxB64.split('\n')) if (line) expect(r.stdout + r.stderr).not.toContain(line);
  });

  it('a garbage value: exit 2, E_SIGN_KEY_INVALID naming the field and the variable, the value nowhere', async () => {
    const { work, tmp, env } = workspace('garbage');
    const r = await signet(work, ['sign', 'x.exe', '--json', '--verbose'], {
      ...env,
      SIGNET_SIGN_PFX: GARBAGE,
    });
    expect(r.code).toBe(2);
    const err = JSON.parse(r.stdout).error;
    expect(err.code).toBe('E_SIGN_KEY_INVALID');
    expect(err.message).toContain('signing.profiles.release.pkcs12: environment variable SIGNET_SIGN_PFX');
    expect(err.hint).toMatch(/base64/);
    expect(r.stdout + r.stderr).not.toContain(GARBAGE);
    expect(signetEntries(tmp)).toEqual([]);
    expect(readFileSync(join(work, 'x.exe')).equals(readFileSync(agent))).toBe(true);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} mid-signing: the decoded key file (0600, seen while osslsigncode runs) is gone afterwards`, async () => {
      const ws = workspace(signal.toLowerCase(), join(dir, `slow-${signal}`));
      const seen = join(ws.work, 'seen');
      // records the -pkcs12 path, then hangs in `sign` so the signal lands mid-run
      writeFileSync(
        join(dir, `slow-${signal}`),
        `#!/bin/sh\n[ "$1" = sign ] || exec osslsigncode "$@"\nprev=\nfor a; do [ "$prev" = -pkcs12 ] && echo "$a" > '${seen}.tmp' && mv '${seen}.tmp' '${seen}'; prev="$a"; done\nexec sleep 30\n`,
      );
      chmodSync(join(dir, `slow-${signal}`), 0o755);
      const child: ChildProcess = spawn(process.execPath, [BIN, 'sign', 'x.exe'], {
        cwd: ws.work,
        env: { ...process.env, NO_COLOR: '1', ...ws.env },
        stdio: 'ignore',
      });
      const exited = new Promise<NodeJS.Signals | null>((ok) => child.on('exit', (_c, s) => ok(s)));
      for (let i = 0; i < 200 && !existsSync(seen); i++) await new Promise((r) => setTimeout(r, 50));
      const keyFile = readFileSync(seen, 'utf8').trim();
      expect(keyFile.startsWith(`${ws.tmp}/signet-key-`)).toBe(true);
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(statSync(join(keyFile, '..')).mode & 0o777).toBe(0o700);
      expect(readFileSync(keyFile).equals(readFileSync(pki.pkcs12))).toBe(true);
      child.kill(signal);
      expect(await exited).toBe(signal);
      expect(existsSync(keyFile)).toBe(false);
      expect(signetEntries(ws.tmp)).toEqual([]);
      expect(readdirSync(ws.work).filter((f) => f.startsWith('.signet-sign-'))).toEqual([]);
      expect(readFileSync(join(ws.work, 'x.exe')).equals(readFileSync(agent))).toBe(true);
    });
  }
});
