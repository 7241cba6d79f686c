/**
 * Hands a secret to a tool through a file instead of argv: a 0600 file in a fresh 0700 directory,
 * deleted right after the run (and on exit or Ctrl-C, see cleanup.ts).
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerCleanup, releaseCleanup } from './cleanup.ts';

export async function withSecretFile<T>(value: string, use: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'signet-secret-'));
  registerCleanup(dir);
  try {
    chmodSync(dir, 0o700);
    const path = join(dir, 'pass');
    writeFileSync(path, value, { mode: 0o600 });
    return await use(path);
  } finally {
    releaseCleanup(dir);
  }
}
