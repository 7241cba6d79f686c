import { afterEach, describe, expect, it } from 'vitest';
import { isSignetError } from '../errors.ts';
import { clearSecrets, redact } from '../redact.ts';
import { generateSealKeyPair, publicKeyOf, seal, unseal } from './index.ts';

afterEach(() => clearSecrets());

describe('sealed boxes', () => {
  it('round-trips, and only the matching private key opens', async () => {
    const kp = await generateSealKeyPair();
    const other = await generateSealKeyPair();
    const secret = 'enroll-9f3c1a77e2b04d55';
    const box = await seal(secret, kp.publicKey);
    expect(Buffer.from(box, 'base64').length).toBe(secret.length + 48); // 32 ephemeral pk + 16 MAC
    expect(box).not.toContain(secret);
    expect(await unseal(box, kp.privateKey)).toBe(secret);
    const e = await unseal(box, other.privateKey).catch((x) => x);
    expect(isSignetError(e) && e.code).toBe('E_SEAL_FAILED');
    expect(await publicKeyOf(kp.privateKey)).toBe(kp.publicKey);
  });

  it('two seals of one value differ (ephemeral keys) and a flipped byte is refused', async () => {
    const kp = await generateSealKeyPair();
    const a = await seal('value-1234', kp.publicKey);
    const b = await seal('value-1234', kp.publicKey);
    expect(a).not.toBe(b);
    const raw = Buffer.from(a, 'base64');
    raw[raw.length - 1]! ^= 1;
    const e = await unseal(raw.toString('base64'), kp.privateKey).catch((x) => x);
    expect(e.code).toBe('E_SEAL_FAILED');
  });

  it('the opened value is registered with the redactor', async () => {
    const kp = await generateSealKeyPair();
    const box = await seal('site-key-abcdef123456', kp.publicKey);
    clearSecrets();
    await unseal(box, kp.privateKey);
    expect(redact('key=site-key-abcdef123456')).toBe('key=***');
    expect(redact(kp.privateKey)).toBe('***');
  });

  it('rejects malformed keys with a coded error', async () => {
    for (const bad of ['not base64!!', Buffer.alloc(31).toString('base64')]) {
      const e = await seal('x-value', bad).catch((x) => x);
      expect(e.code).toBe('E_SEAL_FAILED');
    }
  });
});
