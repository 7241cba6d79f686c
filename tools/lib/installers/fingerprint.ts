/**
 * The enrollment key fingerprint `vN (XXXX)`: N is the key version, XXXX the first two bytes of
 * SHA-256 of the key (UTF-8), as four uppercase hex digits. Deterministic and short enough to read
 * out on the phone; 16 bits of a hash of a key of at least 16 characters reveal nothing usable.
 */
import { createHash } from 'node:crypto';

export interface Fingerprint {
  keyVersion: number;
  /** Four uppercase hex digits. */
  hex: string;
  /** `v3 (7F2A)` — what people read. */
  text: string;
  /** `v3-7F2A` — what goes into file names. */
  slug: string;
}

export function fingerprint(key: string, keyVersion: number): Fingerprint {
  if (!Number.isInteger(keyVersion) || keyVersion < 1)
    throw new RangeError('key version must be an integer ≥ 1');
  const hex = createHash('sha256').update(key, 'utf8').digest().subarray(0, 2).toString('hex').toUpperCase();
  return { keyVersion, hex, text: `v${keyVersion} (${hex})`, slug: `v${keyVersion}-${hex}` };
}
