/**
 * Where a site-installers run works: one private folder per run (0700) under the temp dir —
 * never under installers.cacheDir, which CI systems often upload as a cache: the work folders
 * hold each site's site.json (its enrollment key) and the copies extracted for the checks.
 *
 * The run folder is removed when the run ends, at exit and on SIGINT/SIGTERM/SIGHUP
 * (sign/cleanup.ts); one left by a killed run (SIGKILL, power loss) is removed by the next run:
 * every run folder names its owner's pid, and a folder whose owner is gone is stale. Work folders
 * that older versions kept under `<cacheDir>/work` are removed as well.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from '../log.ts';
import { registerCleanup, releaseCleanup } from '../sign/cleanup.ts';

export const RUN_PREFIX = 'signet-build-';
const OWNER = 'owner.json';

export interface RunDir {
  path: string;
  /** Removes the folder (unless `keep`), and stops watching for signals. */
  close(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes run folders whose owner process is gone, and the legacy `<cacheDir>/work`. */
export function removeStaleWork(cacheDir: string | undefined, tmp = tmpdir()): string[] {
  const removed: string[] = [];
  if (cacheDir) {
    const legacy = join(cacheDir, 'work');
    try {
      for (const entry of readdirSync(legacy)) {
        rmSync(join(legacy, entry), { recursive: true, force: true });
        removed.push(join(legacy, entry));
      }
      rmSync(legacy, { recursive: true, force: true });
    } catch {}
  }
  let entries: string[] = [];
  try {
    entries = readdirSync(tmp).filter((n) => n.startsWith(RUN_PREFIX));
  } catch {}
  for (const name of entries) {
    const dir = join(tmp, name);
    let pid = 0;
    try {
      pid = Number((JSON.parse(readFileSync(join(dir, OWNER), 'utf8')) as { pid?: unknown }).pid);
    } catch {
      continue; // not ours to judge (no owner file yet, or not a run folder)
    }
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) {
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    }
  }
  if (removed.length) logger.info(`removed ${removed.length} stale work folder(s) of interrupted runs`);
  return removed;
}

/** A new private run folder, removed on close, exit and signals (kept when `keep`). */
export function openRunDir(keep: boolean, tmp = tmpdir()): RunDir {
  const path = mkdtempSync(join(tmp, RUN_PREFIX));
  if (!keep) {
    registerCleanup(path);
    // a kept folder (installers.keepWork) names no owner: the next run leaves it alone
    writeFileSync(join(path, OWNER), `${JSON.stringify({ pid: process.pid })}\n`, { mode: 0o600 });
  }
  return {
    path,
    close() {
      if (keep) logger.info(`work files kept in ${path}`);
      else releaseCleanup(path);
    },
  };
}
