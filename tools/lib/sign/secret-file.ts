/**
 * Hands a secret to a tool through a file instead of argv: a 0600 file in a fresh 0700 directory,
 * deleted right after the run (and on process exit as a last resort).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();
let hooked = false;

function cleanupAll(): void {
  for (const d of live) rmSync(d, { recursive: true, force: true });
  live.clear();
}

export async function withSecretFile<T>(value: string, use: (path: string) => Promise<T>): Promise<T> {
  if (!hooked) {
    process.once('exit', cleanupAll);
    hooked = true;
  }
  const dir = mkdtempSync(join(tmpdir(), 'signet-secret-'));
  chmodSync(dir, 0o700);
  live.add(dir);
  const path = join(dir, 'pass');
  try {
    writeFileSync(path, value, { mode: 0o600 });
    return await use(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    live.delete(dir);
  }
}
