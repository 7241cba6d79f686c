/**
 * Private snapshots. A file that another process can change is read once — copied (a reflink
 * where the file system has them) into a private folder (0700, file 0600) — and every later
 * decision reads that copy: the hash, osslsigncode's verify, the signature blob, and what the
 * consumers (installer builds, the publish upload) ship. So the bytes that were verified are the
 * bytes that are used, however the original path changes meanwhile.
 *
 * Snapshots are removed by `release()`, at exit and on SIGINT/SIGTERM/SIGHUP (cleanup.ts).
 */
import { chmodSync, constants, copyFileSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { SignetError, toSignetError } from '../errors.ts';
import { registerCleanup, releaseCleanup } from './cleanup.ts';

export interface Snapshot {
  /** The private copy (same base name as the original). */
  readonly path: string;
  /** The file it was taken from. */
  readonly source: string;
  release(): void;
}

const live = new Set<string>();

/** Copies `path` once into a new private folder under `parent` (default: the temp dir). */
export function takeSnapshot(path: string, options: { parent?: string; name?: string } = {}): Snapshot {
  // a pipe or device would block the copy (or never end): only regular files are snapshotted
  let regular: boolean;
  try {
    regular = statSync(path).isFile();
  } catch (e) {
    throw toSignetError(e);
  }
  if (!regular)
    throw new SignetError('E_INPUT_INVALID', `${path}: not a regular file`, { details: { path } });
  const dir = mkdtempSync(join(options.parent ?? tmpdir(), 'signet-snap-'));
  registerCleanup(dir);
  const file = resolve(dir, options.name ?? basename(path));
  try {
    // One open of the source: a rename over the path during the copy cannot mix two files.
    copyFileSync(path, file, constants.COPYFILE_FICLONE);
    chmodSync(file, 0o600);
  } catch (e) {
    releaseCleanup(dir);
    throw toSignetError(e);
  }
  live.add(file);
  return {
    path: file,
    source: path,
    release() {
      live.delete(file);
      releaseCleanup(dir);
    },
  };
}

/** True for a live snapshot taken by this process (nobody else can change it). */
export function isSnapshot(path: string): boolean {
  return live.has(resolve(path));
}
