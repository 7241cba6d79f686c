import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/**
 * Every folder tempDir made for the test file being run. Registered once, when this module is
 * loaded (while the file's tests are collected): a hook registered later — by a tempDir called
 * inside a beforeAll or a test — would never run, and its folder (a service's blobs: up to 1 GB)
 * would stay behind.
 */
const made: string[] = [];
const removeMade = () => {
  if (process.env['SIGNET_KEEP_TMP']) return;
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
};
try {
  afterAll(removeMade);
} catch {
  // loaded outside a test run (a benchmark imports the helpers): remove them when the process ends
  process.on('exit', removeMade);
}

/** A temporary directory removed after the test file (kept when SIGNET_KEEP_TMP is set). */
export function tempDir(prefix = 'signet-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
