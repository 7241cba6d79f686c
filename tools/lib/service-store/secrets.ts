/**
 * The service's secrets: API and link tokens (high-entropy, shown once, stored as SHA-256) and
 * enrollment keys at rest (libsodium secretbox under a 32-byte master key given as env:/file:).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SignetError } from '../errors.ts';
import { registerSecret } from '../redact.ts';
import { sodium } from '../seal/index.ts';
import { resolveSecret, type SecretRef } from '../secrets.ts';

export const TOKEN_PREFIX = 'sgn_';
export const LINK_PREFIX = 'sgl_';

/** A new token: prefix + 32 random bytes (base64url). Registered with the redactor. */
export function newToken(prefix = TOKEN_PREFIX): string {
  const t = `${prefix}${randomBytes(32).toString('base64url')}`;
  registerSecret(t);
  return t;
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(9).toString('base64url')}`;
}

/** Encrypts and decrypts enrollment keys with the master key. */
export interface KeyBox {
  seal(plaintext: string): Promise<string>;
  open(sealed: string): Promise<string>;
}

export async function keyBox(masterKey: Uint8Array): Promise<KeyBox> {
  const s = await sodium();
  if (masterKey.length !== s.crypto_secretbox_KEYBYTES)
    throw new SignetError(
      'E_CONFIG_INVALID',
      `service.masterKey must be ${s.crypto_secretbox_KEYBYTES} bytes (base64), got ${masterKey.length}`,
      { hint: 'Make one with `openssl rand -base64 32` and give it as env:NAME or file:PATH.' },
    );
  return {
    async seal(plaintext) {
      const nonce = s.randombytes_buf(s.crypto_secretbox_NONCEBYTES);
      const box = s.crypto_secretbox_easy(s.from_string(plaintext), nonce, masterKey);
      return Buffer.concat([Buffer.from(nonce), Buffer.from(box)]).toString('base64');
    },
    async open(sealed) {
      const raw = Buffer.from(sealed, 'base64');
      const nonce = raw.subarray(0, s.crypto_secretbox_NONCEBYTES);
      const box = raw.subarray(s.crypto_secretbox_NONCEBYTES);
      let plain: Uint8Array;
      try {
        plain = s.crypto_secretbox_open_easy(box, nonce, masterKey);
      } catch {
        throw new SignetError(
          'E_SERVICE_KEY_UNREADABLE',
          'a stored enrollment key does not open with this master key',
          {
            hint: 'The service runs with another service.masterKey than the one that stored the key; restore the original key, or PUT the site again with its key.',
          },
        );
      }
      const text = s.to_string(plain);
      registerSecret(text);
      return text;
    },
  };
}

/** The master key from its reference (base64 of 32 bytes). */
export function masterKeyFrom(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): Uint8Array {
  const text = resolveSecret(ref, 'service.masterKey', env).trim();
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== 32 || bytes.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, ''))
    throw new SignetError('E_CONFIG_INVALID', 'service.masterKey is not base64 of 32 bytes', {
      hint: 'Make one with `openssl rand -base64 32`.',
      details: { field: 'service.masterKey' },
    });
  return new Uint8Array(bytes);
}
