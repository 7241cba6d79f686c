/**
 * Sealed boxes (libsodium `crypto_box_seal`, X25519 + XSalsa20-Poly1305 with an ephemeral key) —
 * the scheme GitHub's secrets API uses. The vendor's server seals a site's enrollment key to the
 * repository's public key before dispatching a workflow; only the job holding the private key (a
 * repository secret) can open it, so the key never travels in clear in the dispatch inputs.
 * Keys and ciphertexts are standard base64 (GitHub's `key` field is accepted as a public key).
 */
import { SignetError } from '../errors.ts';
import { registerSecret } from '../redact.ts';

export type Sodium = typeof import('libsodium-wrappers');
let sodiumPromise: Promise<Sodium> | undefined;

/** libsodium, loaded once (the sealed boxes here, secretbox in the service store). */
export async function sodium(): Promise<Sodium> {
  sodiumPromise ??= (async () => {
    const mod = (await import('libsodium-wrappers')) as unknown as { default?: Sodium } & Sodium;
    const s = mod.default ?? mod;
    await s.ready;
    return s;
  })();
  return sodiumPromise;
}

export interface SealKeyPair {
  /** base64, 32 bytes: give it to the server that seals. */
  publicKey: string;
  /** base64, 32 bytes: store it as a repository secret (e.g. SIGNET_SEAL_PRIVATE_KEY). */
  privateKey: string;
}

function decodeKey(s: Sodium, b64: string, what: string): Uint8Array {
  let key: Uint8Array;
  try {
    key = s.from_base64(b64.trim(), s.base64_variants.ORIGINAL);
  } catch {
    try {
      key = s.from_base64(b64.trim(), s.base64_variants.URLSAFE_NO_PADDING);
    } catch {
      throw new SignetError('E_SEAL_FAILED', `${what} is not base64`);
    }
  }
  if (key.length !== s.crypto_box_PUBLICKEYBYTES)
    throw new SignetError(
      'E_SEAL_FAILED',
      `${what} must be ${s.crypto_box_PUBLICKEYBYTES} bytes, got ${key.length}`,
    );
  return key;
}

export async function generateSealKeyPair(): Promise<SealKeyPair> {
  const s = await sodium();
  const kp = s.crypto_box_keypair();
  const privateKey = s.to_base64(kp.privateKey, s.base64_variants.ORIGINAL);
  registerSecret(privateKey);
  return { publicKey: s.to_base64(kp.publicKey, s.base64_variants.ORIGINAL), privateKey };
}

export async function publicKeyOf(privateKeyB64: string): Promise<string> {
  const s = await sodium();
  const sk = decodeKey(s, privateKeyB64, 'private key');
  return s.to_base64(s.crypto_scalarmult_base(sk), s.base64_variants.ORIGINAL);
}

/** Seals `plaintext` to `publicKeyB64`; returns the sealed box as base64. */
export async function seal(plaintext: string | Uint8Array, publicKeyB64: string): Promise<string> {
  const s = await sodium();
  const pk = decodeKey(s, publicKeyB64, 'public key');
  const data = typeof plaintext === 'string' ? new TextEncoder().encode(plaintext) : plaintext;
  if (data.length === 0) throw new SignetError('E_SEAL_FAILED', 'refusing to seal an empty value');
  return s.to_base64(s.crypto_box_seal(data, pk), s.base64_variants.ORIGINAL);
}

/** Opens a sealed box; the plaintext is registered with the redactor before it is returned. */
export async function unseal(sealedB64: string, privateKeyB64: string): Promise<string> {
  const s = await sodium();
  registerSecret(privateKeyB64.trim());
  const sk = decodeKey(s, privateKeyB64, 'private key');
  const pk = s.crypto_scalarmult_base(sk);
  let box: Uint8Array;
  try {
    box = s.from_base64(sealedB64.trim(), s.base64_variants.ORIGINAL);
  } catch {
    throw new SignetError('E_SEAL_FAILED', 'sealed value is not base64');
  }
  let opened: Uint8Array;
  try {
    opened = s.crypto_box_seal_open(box, pk, sk);
  } catch {
    throw new SignetError(
      'E_SEAL_FAILED',
      'cannot open the sealed value: wrong private key, or the value was altered',
      {
        hint: 'Seal with the public key that matches the private key secret (`signet seal --public-key …`).',
      },
    );
  }
  const text = new TextDecoder('utf-8', { fatal: false }).decode(opened);
  registerSecret(text);
  registerSecret(text.trim());
  return text;
}
