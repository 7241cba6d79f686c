import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect } from '../../../test/helpers/spawn.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { openEnrollmentKey } from '../../lib/seal/enrollment.ts';
import { generateSealKeyPair, unseal } from '../../lib/seal/index.ts';

const bin = join(import.meta.dirname, '..', 'bin.ts');
const KEY = 'canary-cli-enroll-key-5d2e8f01';
const dir = tempDir('signet-cli-seal-');
const run = (args: string[]) =>
  collect(process.execPath, [bin, ...args], { cwd: dir, env: { ...process.env, ENROLL: KEY } });

describe('signet seal', () => {
  it('--site-code/--key-version seal a site-bound envelope that opens only for that site', async () => {
    const kp = await generateSealKeyPair();
    const r = await run([
      'seal',
      '--public-key',
      kp.publicKey,
      '--value',
      'env:ENROLL',
      '--site-code',
      'north',
      '--key-version',
      '3',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(KEY);
    const out = JSON.parse(r.stdout) as {
      sealed: string;
      format: string;
      siteCode: string;
      keyVersion: number;
    };
    expect(out).toMatchObject({ format: 'signet.enrollment-key/1', siteCode: 'north', keyVersion: 3 });
    expect(await openEnrollmentKey(out.sealed, kp.privateKey, { siteCode: 'north', keyVersion: 3 })).toBe(
      KEY,
    );
    const e = await openEnrollmentKey(out.sealed, kp.privateKey, { siteCode: 'south', keyVersion: 3 }).catch(
      (x) => x,
    );
    expect(e.code).toBe('E_SEAL_SITE_MISMATCH');
  });

  it('without them seals the bare value (a callback token); one without the other is a usage error', async () => {
    const kp = await generateSealKeyPair();
    const r = await run(['seal', '--public-key', kp.publicKey, '--value', 'env:ENROLL', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(await unseal((JSON.parse(r.stdout) as { sealed: string }).sealed, kp.privateKey)).toBe(KEY);
    const half = await run([
      'seal',
      '--public-key',
      kp.publicKey,
      '--value',
      'env:ENROLL',
      '--site-code',
      'north',
    ]);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/E_USAGE.*--key-version/s);
    expect(half.stdout + half.stderr).not.toContain(KEY);
  });
});
