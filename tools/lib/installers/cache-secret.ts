/**
 * The installer cache's own secret: 32 random bytes in `<installers.cacheDir>/cache.key` (mode 600),
 * made on first use. It keys the enrollment key's part of the cache key (`siteKeyDigest`), so a
 * rotated key rebuilds its site while the cache key published in the manifest stays no oracle for
 * the key. It never leaves the cache folder; deleting it only costs one full rebuild.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FILE = 'cache.key';
const HEX = /^[0-9a-f]{64}$/;

export function loadCacheSecret(cacheDir: string): Buffer {
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  const path = join(cacheDir, FILE);
  const fresh = randomBytes(32).toString('hex');
  try {
    writeFileSync(path, `${fresh}\n`, { mode: 0o600, flag: 'wx' });
    return Buffer.from(fresh, 'hex');
  } catch (e) {
    if ((e as { code?: string }).code !== 'EEXIST') throw e;
  }
  const text = readFileSync(path, 'utf8').trim();
  if (HEX.test(text)) return Buffer.from(text, 'hex');
  // unreadable as a secret (truncated, edited): replace it; the only cost is a rebuild
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${fresh}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
  return Buffer.from(fresh, 'hex');
}
