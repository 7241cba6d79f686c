/**
 * Paths removed if the process ends early (exit, Ctrl-C, SIGTERM): password files and signing
 * work directories must not outlive an interrupted run. Signal handlers are installed only while
 * something is registered, and re-raise the signal after cleaning up (default exit behaviour).
 */
import { rmSync } from 'node:fs';

const live = new Set<string>();
const children = new Set<{ kill(signal?: NodeJS.Signals): boolean }>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function removeAll(): void {
  for (const p of live) rmSync(p, { recursive: true, force: true });
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  for (const c of children) c.kill('SIGTERM');
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

export function releaseCleanup(path: string): void {
  rmSync(path, { recursive: true, force: true });
  live.delete(path);
  if (live.size === 0) uninstall();
}

/** A running tool that must not outlive an interrupted Signet (it would write into removed paths). */
export function trackChild(child: {
  kill(signal?: NodeJS.Signals): boolean;
  once(e: 'close', f: () => void): unknown;
}): void {
  children.add(child);
  child.once('close', () => children.delete(child));
}
