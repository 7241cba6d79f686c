/**
 * The per-site manifest (`<siteCode>.manifest.json`: the cache's proof of completeness, written
 * last) and how finished files are put in place.
 */
import { copyFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SiteManifest } from './types.ts';

export const MANIFEST_SCHEMA = 1;

/** What every site's build checked (recorded in its manifest). */
export const MANIFEST_CHECKS = [
  'exe signature verified',
  'msi signature verified',
  'uninstaller extracted from the exe (7z) is the one signed and verified at compile time (sha256)',
  'agent extracted from the exe (7z) is byte-identical to the signed agent',
  'agent extracted from the msi (msiextract) is byte-identical to the signed agent',
  'site.json extracted from the exe equals the intended configuration',
  'site.json extracted from the msi equals the intended configuration',
  'msi lint (sequences, custom actions, upgrade, 64-bit, lock permissions, service)',
];

/** rename, or copy + rename when the cache and the output folder are on different file systems. */
export function moveFile(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    const tmp = `${to}.tmp-${process.pid}`;
    copyFileSync(from, tmp);
    renameSync(tmp, to);
    rmSync(from, { force: true });
  }
}

export function writeAtomic(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function manifestPath(outDir: string, siteCode: string): string {
  return join(outDir, `${siteCode}.manifest.json`);
}

export function readManifest(path: string): SiteManifest | undefined {
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as SiteManifest;
    return m.schema === MANIFEST_SCHEMA ? m : undefined;
  } catch {
    return undefined;
  }
}
