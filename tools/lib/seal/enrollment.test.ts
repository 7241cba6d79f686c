import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, redact } from '../redact.ts';
import { openEnrollmentKey, sealEnrollmentKey } from './enrollment.ts';
import { generateSealKeyPair, seal } from './index.ts';
import { openSealedSites } from './sites.ts';

afterEach(() => clearSecrets());

const NORTH_KEY = 'canary-north-key-7c1e9a2b44d0';
const SOUTH_KEY = 'canary-south-key-0b8f3d5e61aa';
const site = (siteCode: string, keyVersion: number, sealedEnrollmentKey: string) => ({
  siteCode,
  serverUrl: 'https://rmm.example.com',
  keyVersion,
  sealedEnrollmentKey,
});

async function failure(p: Promise<unknown>) {
  const e = (await p.then(
    () => undefined,
    (x: unknown) => x,
  )) as { code?: string; message: string; details?: unknown } | undefined;
  if (!e) throw new Error('expected a failure');
  return e;
}

describe('site-bound sealed enrollment keys', () => {
  it('opens for the site and key version it was sealed for', async () => {
    const kp = await generateSealKeyPair();
    const box = await sealEnrollmentKey({ siteCode: 'north', keyVersion: 2, key: NORTH_KEY }, kp.publicKey);
    expect(await openEnrollmentKey(box, kp.privateKey, { siteCode: 'north', keyVersion: 2 })).toBe(NORTH_KEY);
    // dispatch inputs may carry the key version as text
    expect(await openEnrollmentKey(box, kp.privateKey, { siteCode: 'north', keyVersion: '2' })).toBe(
      NORTH_KEY,
    );
    expect(redact(`k=${NORTH_KEY}`)).toBe('k=***');
  });

  it('refuses a key replayed under another site or another key version, naming the site, never the key', async () => {
    const kp = await generateSealKeyPair();
    const box = await sealEnrollmentKey({ siteCode: 'north', keyVersion: 2, key: NORTH_KEY }, kp.publicKey);
    for (const expected of [
      { siteCode: 'south', keyVersion: 2 },
      { siteCode: 'NORTH', keyVersion: 2 },
      { siteCode: 'north', keyVersion: 3 },
    ]) {
      const e = await failure(openEnrollmentKey(box, kp.privateKey, expected));
      expect(e.code).toBe('E_SEAL_SITE_MISMATCH');
      expect(e.message).toContain(expected.siteCode);
      expect(e.message).toContain('"north"');
      expect(JSON.stringify([e.message, e.details])).not.toContain(NORTH_KEY);
    }
  });

  it('refuses a bare sealed key (the old format) with the fix', async () => {
    const kp = await generateSealKeyPair();
    for (const bare of [NORTH_KEY, '{"key":"x"}', '{not json']) {
      const e = await failure(
        openEnrollmentKey(await seal(bare, kp.publicKey), kp.privateKey, {
          siteCode: 'north',
          keyVersion: 1,
        }),
      );
      expect(e.code).toBe('E_SEAL_FORMAT');
      expect(e.message).toContain('north');
      expect(e.message).not.toContain(NORTH_KEY);
    }
  });

  it('the dispatch refuses a swapped key for the whole batch (E_SEAL_SITE_MISMATCH)', async () => {
    const kp = await generateSealKeyPair();
    const north = await sealEnrollmentKey({ siteCode: 'north', keyVersion: 1, key: NORTH_KEY }, kp.publicKey);
    const south = await sealEnrollmentKey({ siteCode: 'south', keyVersion: 1, key: SOUTH_KEY }, kp.publicKey);
    const ok = await openSealedSites([site('north', 1, north), site('south', 1, south)], kp.privateKey);
    expect(ok.map((s) => s['enrollmentKey'])).toEqual([NORTH_KEY, SOUTH_KEY]);
    expect(ok[0]).not.toHaveProperty('sealedEnrollmentKey');

    // an attacker who can dispatch copies north's sealed key into an entry of their own
    const e = await failure(
      openSealedSites([site('south', 1, south), site('evil', 1, north)], kp.privateKey),
    );
    expect(e.code).toBe('E_SEAL_SITE_MISMATCH');
    expect(e.message).toContain('sites[1] (evil)');
    expect(JSON.stringify([e.message, e.details])).not.toContain(NORTH_KEY);

    // a bare sealed key from before the envelope
    const old = await failure(
      openSealedSites([site('north', 1, await seal(NORTH_KEY, kp.publicKey))], kp.privateKey),
    );
    expect(old.code).toBe('E_SEAL_FORMAT');
    expect(old.message).not.toContain(NORTH_KEY);
  });

  it('validates what it seals', async () => {
    const kp = await generateSealKeyPair();
    for (const bad of [
      { siteCode: '', keyVersion: 1, key: NORTH_KEY },
      { siteCode: 'north', keyVersion: 0, key: NORTH_KEY },
      { siteCode: 'north', keyVersion: 1.5, key: NORTH_KEY },
      { siteCode: 'north', keyVersion: 1, key: '' },
    ]) {
      const e = await failure(sealEnrollmentKey(bad, kp.publicKey));
      expect(e.code).toBe('E_INPUT_INVALID');
      expect(e.message).not.toContain(NORTH_KEY);
    }
  });
});
