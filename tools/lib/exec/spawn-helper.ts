/**
 * Starting a program, and the spawn helper: a small Node process that starts programs for a large
 * one. Starting a program copies the caller's page tables (fork); from a batch process of ~200 MB
 * that cost 13 ms of its main thread a spawn on a 2-core machine, four spawns a site. From this
 * process (~45 MB) it costs about 3 ms, and off the batch's thread.
 *
 * `startProgram` is the one way a program is started, from Signet's process (exec/runner.ts
 * imports it) or from the helper. Dependency-free: the helper runs by path, next to the sources,
 * the built package or a bundled action, with `--signet-spawn-helper` (a bundle that includes
 * this module does not start a helper inside itself).
 *
 * Protocol over the IPC channel (advanced serialization, so bytes travel as bytes):
 *   ← { t: 'ready' }               once, when it listens (runs wait for it in the caller)
 *   → { t: 'run', id, file, args, cwd?, env, input?, timeoutMs }
 *   ← { t: 'pid', id, pid }        as soon as the program runs (the caller may signal its group)
 *   ← { t: 'done', id, code, signal, timedOut, stdout, stderr }  or  { t: 'done', id, error: { code, message } }
 *   → { t: 'hash', id, path, algorithm?, parts?, prefix? }  a digest computed on the helper's
 *                                  core: of the whole file (SHA-256; `prefix`: see KnownPrefix), or
 *                                  of `parts` in order (bytes, or [offset, length] of the file)
 *   ← { t: 'hashed', id, sha256, size, shared? }  (shared: { length, sha256 } of the prefix)  or  { t: 'hashed', id, error: { code, message } }
 * The helper ignores the terminal's signals (it is in a group of its own); when its caller goes
 * away (the channel closes), every group it started is killed and the helper exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export const HELPER_FLAG = '--signet-spawn-helper';

export interface Program {
  file: string;
  args: string[];
  cwd?: string | undefined;
  env: NodeJS.ProcessEnv;
  input?: string | Uint8Array | undefined;
  timeoutMs: number;
}

/** How a program ended: its exit, or why it could not start. */
export type Exit =
  | { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; stdout: Buffer; stderr: Buffer }
  | { error: { code: string; message: string } };

/** stdout/stderr kept per stream (the rest is counted, not stored). */
const MAX_OUTPUT = 1024 * 1024 * 1024;

/** Signals a process group (a program and everything it started), else the process itself. */
export function killGroup(
  pid: number | undefined,
  signal: NodeJS.Signals,
  child?: ChildProcess,
  groups = true,
): void {
  try {
    if (groups && pid !== undefined) process.kill(-pid, signal);
    else child?.kill(signal);
  } catch {
    child?.kill(signal); // the group is gone already
  }
}

/**
 * Starts `p` (in its own process group when `groups`), collects its output, kills its group
 * after `timeoutMs` and when it fails (whatever it left running does not outlive it).
 * `started` hears how to signal it, once it runs.
 */
export function startProgram(
  p: Program,
  groups: boolean,
  started?: (kill: (signal: NodeJS.Signals) => void, pid: number | undefined) => void,
): Promise<Exit> {
  return new Promise<Exit>((resolve) => {
    const child = spawn(p.file, p.args, {
      cwd: p.cwd,
      env: p.env,
      stdio: [p.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: groups,
    });
    const kill = (signal: NodeJS.Signals) => killGroup(child.pid, signal, child, groups);
    started?.(kill, child.pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    child.stdout?.on('data', (c: Buffer) => {
      if (outLen < MAX_OUTPUT) out.push(c);
      outLen += c.length;
    });
    child.stderr?.on('data', (c: Buffer) => {
      if (errLen < MAX_OUTPUT) err.push(c);
      errLen += c.length;
    });
    if (p.input !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(p.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      kill('SIGKILL');
    }, p.timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error: { code: e.code ?? '', message: e.message } });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut || code !== 0) kill('SIGKILL');
      resolve({ code, signal, timedOut, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
  });
}

const CHUNK = 1024 * 1024;
let chunk: Buffer | undefined;

/**
 * The first `length` bytes of `path`, which files hashed with this `prefix` are expected to start
 * with (the copies of a base file): each such file's first `length` bytes are compared with them,
 * and its hash continues from their state when they are equal (a compare costs a fraction of a
 * hash); the file is hashed from its start when they are not. With `except` ([offset, length]
 * ranges inside the prefix whose bytes may differ: a PE's CheckSum and security directory), the
 * file is hashed in full, and compared in the same reads.
 */
export interface KnownPrefix {
  path: string;
  length: number;
  except?: [number, number][];
}

/**
 * The first `length` bytes of a hashed file were its known prefix's (whose SHA-256 is `sha256`),
 * apart from the `except` ranges, when there are any.
 */
export interface SharedPrefix {
  length: number;
  sha256: string;
  except?: [number, number][];
}

/** A file's digest and size; `shared`: its known prefix, compared and not hashed again. */
export interface Hashed {
  sha256: string;
  size: number;
  shared?: SharedPrefix;
}

/** Whether `a`'s bytes equal `b`'s at offset `at` of the file, outside the `except` ranges. */
function sameOutside(a: Buffer, b: Buffer, at: number, except: [number, number][]): boolean {
  let pos = 0;
  for (const [o, l] of except) {
    const from = Math.max(0, Math.min(a.length, o - at));
    const to = Math.max(0, Math.min(a.length, o + l - at));
    if (to <= pos) continue;
    if (from > pos && !a.subarray(pos, from).equals(b.subarray(pos, from))) return false;
    pos = Math.max(pos, to);
  }
  return pos >= a.length || a.subarray(pos).equals(b.subarray(pos, a.length));
}

const PREFIXES = 2;
const prefixes = new Map<string, { id: string; bytes: Buffer; state: Hash; sha256: string }>();

/** The prefix's bytes and SHA-256 state, read once per version of its file (dev, inode, size, times). */
function prefixState(p: KnownPrefix): { bytes: Buffer; state: Hash; sha256: string } | undefined {
  const fd = openSync(p.path, 'r');
  try {
    const st = fstatSync(fd);
    if (!Number.isSafeInteger(p.length) || p.length <= 0 || st.size < p.length) return undefined;
    const id = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    const key = `${p.path}\u0000${p.length}`;
    const hit = prefixes.get(key);
    if (hit?.id === id) return hit;
    const bytes = Buffer.allocUnsafe(p.length);
    for (let at = 0; at < p.length; ) {
      const n = readSync(fd, bytes, at, p.length - at, at);
      if (n <= 0) return undefined;
      at += n;
    }
    const state = createHash('sha256').update(bytes);
    const entry = { id, bytes, state, sha256: state.copy().digest('hex') };
    prefixes.delete(key);
    prefixes.set(key, entry);
    while (prefixes.size > PREFIXES) prefixes.delete(prefixes.keys().next().value as string);
    return entry;
  } finally {
    closeSync(fd);
  }
}

/**
 * SHA-256 of a file: 1 MiB reads into a reused buffer, one hash update each (~4× less CPU than a
 * default 64 KB read stream on a 10 MB file, as fast as 8 MiB reads, measured). With `prefix`,
 * the file's start is compared with it and, when equal, not hashed again (`shared`: how many
 * bytes, and their SHA-256: what the file is then known to start with).
 */
export function sha256FileSync(path: string, prefix?: KnownPrefix): Hashed {
  chunk ??= Buffer.allocUnsafe(CHUNK);
  const buf = chunk;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let hash: Hash | undefined;
    let position = 0;
    let shared: SharedPrefix | undefined;
    // a reference that cannot be read costs the shortcut, never the hash
    let ref: ReturnType<typeof prefixState>;
    try {
      ref = prefix && size >= prefix.length ? prefixState(prefix) : undefined;
    } catch {
      ref = undefined;
    }
    const except = prefix?.except?.length ? [...prefix.except].sort((x, y) => x[0] - y[0]) : undefined;
    if (ref && except) {
      // hashed in full; compared on the way
      hash = createHash('sha256');
      let same = true;
      for (; position < size; ) {
        const n = readSync(fd, buf, 0, CHUNK, position);
        if (n <= 0) break;
        const piece = buf.subarray(0, n);
        hash.update(piece);
        if (same && position < ref.bytes.length) {
          const m = Math.min(n, ref.bytes.length - position);
          same = sameOutside(
            piece.subarray(0, m),
            ref.bytes.subarray(position, position + m),
            position,
            except,
          );
        }
        position += n;
      }
      if (same && position >= ref.bytes.length)
        shared = { length: ref.bytes.length, sha256: ref.sha256, except };
    } else if (ref) {
      let same = true;
      for (let at = 0; same && at < ref.bytes.length; ) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, ref.bytes.length - at), at);
        same = n > 0 && buf.subarray(0, n).equals(ref.bytes.subarray(at, at + n));
        at += n;
      }
      if (same) {
        hash = ref.state.copy();
        position = ref.bytes.length;
        shared = { length: position, sha256: ref.sha256 };
      }
    }
    hash ??= createHash('sha256');
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, position);
      if (n <= 0) break;
      hash.update(buf.subarray(0, n));
      position += n;
    }
    return { sha256: hash.digest('hex'), size, ...(shared ? { shared } : {}) };
  } finally {
    closeSync(fd);
  }
}

/** A part of what is hashed: bytes as they are, or `[offset, length]` of the file. */
export type HashPart = Uint8Array | [number, number];

/** The digest (hex) of `parts` in order, file ranges read through the reused buffer. */
export function hashPartsSync(
  path: string,
  algorithm: string,
  parts: HashPart[],
): { sha256: string; size: number } {
  const hash = createHash(algorithm);
  const size = feedParts(hash, path, parts);
  return { sha256: hash.digest('hex'), size };
}

/** Feeds `parts` in order to `hash` (not finished: a state to continue), returns the file's size. */
export function feedParts(hash: Hash, path: string, parts: HashPart[]): number {
  chunk ??= Buffer.allocUnsafe(CHUNK);
  const buf = chunk;
  const fd = openSync(path, 'r');
  try {
    for (const part of parts) {
      if (!Array.isArray(part)) {
        hash.update(part);
        continue;
      }
      const [offset, length] = part;
      for (let done = 0; done < length; ) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, length - done), offset + done);
        if (n <= 0) throw Object.assign(new Error(`short read at ${offset + done}`), { code: 'ESHORT' });
        hash.update(buf.subarray(0, n));
        done += n;
      }
    }
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

function helperMain(): void {
  const running = new Map<number, (signal: NodeJS.Signals) => void>();
  const reply = (message: object) => {
    // a caller that went away meanwhile: the disconnect handler ends this process
    if (process.connected) process.send?.(message, undefined, undefined, () => undefined);
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => undefined);
  process.on(
    'message',
    (
      m: Program & {
        t: string;
        id: number;
        path?: string;
        algorithm?: string;
        parts?: HashPart[];
        prefix?: KnownPrefix;
      },
    ) => {
      if (m?.t === 'hash') {
        try {
          const path = m.path ?? '';
          const r = m.parts
            ? hashPartsSync(path, m.algorithm ?? 'sha256', m.parts)
            : sha256FileSync(path, m.prefix);
          reply({ t: 'hashed', id: m.id, ...r });
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          reply({ t: 'hashed', id: m.id, error: { code: err.code ?? '', message: err.message } });
        }
        return;
      }
      if (m?.t !== 'run') return;
      void startProgram(m, true, (kill, pid) => {
        if (pid === undefined) return;
        running.set(m.id, kill);
        reply({ t: 'pid', id: m.id, pid });
      }).then((exit) => {
        running.delete(m.id);
        reply({ t: 'done', id: m.id, ...exit });
      });
    },
  );
  process.on('disconnect', () => {
    for (const kill of running.values()) kill('SIGKILL');
    process.exit(0);
  });
  reply({ t: 'ready' });
}

if (process.argv.includes(HELPER_FLAG) && process.send) helperMain();
