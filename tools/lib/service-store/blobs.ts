/**
 * Content-addressed blobs on local disk (a path all workers can share): `sha256/ab/cdef…`.
 * A blob is written to a temporary file in the same folder, fsynced, hashed while written and
 * renamed into place only when its SHA-256 is the one expected — so a crash never leaves a
 * partial blob under a real name.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SignetError } from '../errors.ts';
import { sha256FileSync } from '../sign/hash.ts';

/** Read size of a download: 4× fewer reads and callbacks than the 64 KiB default, per byte sent. */
const READ_CHUNK = 256 * 1024;

export class BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
    mkdirSync(join(root, 'sha256'), { recursive: true });
    mkdirSync(join(root, 'tmp'), { recursive: true });
    this.sweepTemp();
  }

  /**
   * Removes the temporary files of processes of this host that are gone (a write a crash cut
   * short). Temporary files are named `host-pid-…`; those of live or other hosts' processes stay.
   */
  sweepTemp(): number {
    let removed = 0;
    const host = hostname();
    for (const name of readdirSync(join(this.root, 'tmp'))) {
      const m = /^(.+)-(\d+)-\d+-[0-9a-f]+$/.exec(name);
      if (!m || m[1] !== host || Number(m[2]) === process.pid || processAlive(Number(m[2]))) continue;
      rmSync(join(this.root, 'tmp', name), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  path(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.root, 'sha256', sha256.slice(0, 2), sha256.slice(2));
  }

  has(sha256: string): boolean {
    return existsSync(this.path(sha256));
  }

  size(sha256: string): number {
    return statSync(this.path(sha256)).size;
  }

  /** A private temporary path for a file about to become a blob. */
  tempPath(): string {
    return join(
      this.root,
      'tmp',
      `${hostname()}-${process.pid}-${Date.now()}-${randomBytes(6).toString('hex')}`,
    );
  }

  /**
   * Copies a file into the store (the kernel copies; the copy is then hashed, fsynced and renamed
   * into place): a release's base files, several MB each, without a stream through JavaScript.
   */
  async importFile(path: string): Promise<{ sha256: string; size: number }> {
    const tmp = this.tempPath();
    try {
      copyFileSync(path, tmp);
      chmodSync(tmp, 0o600);
      const { sha256, size } = sha256FileSync(tmp);
      const fh = await open(tmp, 'r');
      await fh.sync();
      await fh.close();
      this.#place(tmp, sha256);
      return { sha256, size };
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Streams `source` into the store; returns its SHA-256 and size. */
  async put(source: NodeJS.ReadableStream, expected?: string): Promise<{ sha256: string; size: number }> {
    const tmp = this.tempPath();
    const hash = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(source, tap, createWriteStream(tmp, { mode: 0o600 }));
      const fh = await open(tmp, 'r');
      await fh.sync();
      await fh.close();
      const sha256 = hash.digest('hex');
      if (expected && expected !== sha256)
        throw new SignetError(
          'E_VERIFY_FAILED',
          `blob content changed while stored (expected ${expected}, got ${sha256})`,
        );
      this.#place(tmp, sha256);
      return { sha256, size };
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Moves a finished file into the store under its SHA-256 (computed here). */
  async adopt(file: string): Promise<{ sha256: string; size: number }> {
    const sha256 = await sha256File(file);
    const size = statSync(file).size;
    this.#place(file, sha256);
    return { sha256, size };
  }

  #place(file: string, sha256: string): void {
    const target = this.path(sha256);
    mkdirSync(join(this.root, 'sha256', sha256.slice(0, 2)), { recursive: true });
    if (existsSync(target)) rmSync(file, { force: true });
    else renameSync(file, target);
  }

  /** Deletes one blob (a cached whole file that can be assembled again). */
  remove(sha256: string): void {
    rmSync(this.path(sha256), { force: true });
  }

  /** Re-hashes a blob: true when its bytes are still its name. */
  async check(sha256: string): Promise<boolean> {
    return this.has(sha256) && (await sha256File(this.path(sha256))) === sha256;
  }

  read(sha256: string, range?: { start: number; end: number }): NodeJS.ReadableStream {
    return createReadStream(this.path(sha256), { ...(range ?? {}), highWaterMark: READ_CHUNK });
  }

  /**
   * Removes every blob not in `keep` and stale temporary files, both only when older than
   * `minAgeMs`: a blob just stored whose record is not written yet, or an upload in flight, stays.
   * Returns how many blobs went.
   */
  collect(keep: Set<string>, minAgeMs = 10 * 60_000, now = Date.now()): number {
    let removed = 0;
    const old = (p: string) => {
      try {
        return now - statSync(p).mtimeMs >= minAgeMs;
      } catch {
        return false;
      }
    };
    const base = join(this.root, 'sha256');
    for (const dir of readdirSync(base)) {
      for (const rest of readdirSync(join(base, dir))) {
        const p = join(base, dir, rest);
        if (!keep.has(dir + rest) && old(p)) {
          rmSync(p, { force: true });
          removed++;
        }
      }
    }
    for (const t of readdirSync(join(this.root, 'tmp'))) {
      const p = join(this.root, 'tmp', t);
      if (old(p)) rmSync(p, { force: true, recursive: true });
    }
    return removed;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), hash);
  return hash.digest('hex');
}
