import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** A temporary directory removed after the test file (kept when SIGNET_KEEP_TMP is set). */
export function tempDir(prefix = 'signet-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => {
    if (!process.env['SIGNET_KEEP_TMP']) rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
