/**
 * Paths removed if the process ends early (exit, Ctrl-C, SIGTERM): password files and signing
 * work directories must not outlive an interrupted run. Signal handlers are installed only while
 * something is registered, and re-raise the signal after cleaning up (default exit behaviour);
 * running programs get it from the runner (exec/runner.ts), which passes it on to their groups.
 */
import { rmdirSync, rmSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';

const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function removeAll(): void {
  for (const p of live) rmSync(p, { recursive: true, force: true });
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  removeAll();
  uninstall();
  process.kill(process.pid, signal);
}

let installed = false;
function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', removeAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}
function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', removeAll);
  for (const s of SIGNALS) process.off(s, onSignal);
}

export function registerCleanup(path: string): void {
  live.add(path);
  install();
}

/** As releaseCleanup, the removal on the thread pool (the caller's thread goes on meanwhile). */
export async function releaseCleanupAsync(path: string): Promise<void> {
  await rmdir(path).catch(() => rm(path, { recursive: true, force: true }));
  live.delete(path);
  if (live.size === 0) uninstall();
}

export function releaseCleanup(path: string): void {
  // most folders are empty by now (their file was renamed into place): one rmdir, a tenth of
  // a recursive removal's cost
  try {
    rmdirSync(path);
  } catch {
    rmSync(path, { recursive: true, force: true });
  }
  live.delete(path);
  if (live.size === 0) uninstall();
}
