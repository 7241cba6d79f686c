/**
 * The one way Signet runs an external program, on node:child_process (execa cost ~9 ms of CPU a
 * spawn against ~1.3 ms raw, and signing runs two programs per file): an argv array (never a
 * shell string), a time limit that kills the program's whole process group, stdin input,
 * redaction of known secrets in everything it logs or throws, coded E_TOOL_* errors, and deletion
 * of declared outputs when the program fails (osslsigncode, for one, can exit 1 and still leave a
 * full-size output). A program runs in its own process group; a SIGINT/SIGTERM/SIGHUP that
 * ends Signet while programs run is passed on to their groups.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { siblingScript } from '../paths.ts';
import { redact } from '../redact.ts';
import {
  type Exit,
  type Hashed,
  type HashPart,
  HELPER_FLAG,
  hashPartsSync,
  type KnownPrefix,
  killGroup,
  type Program,
  type SharedPrefix,
  sha256FileSync,
  startProgram,
} from './spawn-helper.ts';

export interface RunOptions {
  cwd?: string;
  /** Extra environment; merged over process.env unless `extendEnv` is false. */
  env?: Record<string, string | undefined>;
  extendEnv?: boolean;
  input?: string | Uint8Array;
  /** Milliseconds; default 5 minutes. */
  timeoutMs?: number;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /** Paths deleted when the program exits non-zero, times out or cannot start. */
  outputs?: string[];
  /** Keep stdout as bytes (for binary output). */
  binary?: boolean;
  /** Name of the step, used in messages (defaults to the program name). */
  label?: string;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stdoutBytes?: Uint8Array;
  stderr: string;
  durationMs: number;
  /** The command line, redacted, for logs. */
  command: string;
}

export interface Runner {
  run(file: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
}

const GROUPS = process.platform !== 'win32';

export function formatCommand(file: string, args: readonly string[]): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return redact([file, ...args].map(q).join(' '));
}

function removeOutputs(outputs: string[] | undefined): void {
  for (const p of outputs ?? []) rmSync(p, { force: true, recursive: true });
}

// Running programs (how to signal each), and the signal forwarding installed while there are any.
const running = new Map<object, (signal: NodeJS.Signals) => void>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/**
 * Only when no one else handles the signal: pass it on to the programs' groups, then the default
 * behaviour (exit by the signal) as if we had not listened. A handler of Signet's own (the
 * service's drain, the signing cleanup, the release guard) decides for itself; the cleanup
 * re-raises the signal, which then lands here.
 */
function forward(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  for (const kill of running.values()) kill(signal);
  unwatch();
  process.kill(process.pid, signal);
}
function watch(key: object, kill: (signal: NodeJS.Signals) => void): void {
  if (running.size === 0) for (const s of SIGNALS) process.on(s, forward);
  running.set(key, kill);
}
function unwatch(key?: object): void {
  if (key && !running.delete(key)) return;
  if (running.size === 0 || !key) for (const s of SIGNALS) process.off(s, forward);
}

/** Starts the program from this process. */
function launchHere(l: Program): Promise<Exit> {
  const key = {};
  return startProgram(l, GROUPS, (kill) => watch(key, kill)).then((exit) => {
    unwatch(key);
    return exit;
  });
}

/**
 * The spawn helper (spawn-helper.ts) while a batch holds it: programs start from that small
 * process instead of this one (see there for why). Taken with `useSpawnHelper()`, given back
 * with the function it returns; the last holder's release ends the helper.
 */
class SpawnHelper {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private readonly hashes = new Map<number, PendingHash>();
  private nextId = 1;
  /** The helper said it is ready; until then runs wait here, and start from this process if it never is. */
  private ready = false;
  private readonly queued: number[] = [];
  alive = true;

  get pid(): number | undefined {
    return this.child.pid;
  }

  constructor(script: string) {
    this.child = fork(script, [HELPER_FLAG], {
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      detached: true,
      // Every program the helper starts copies its page tables (fork), and tears the copy down
      // again when it execs: the helper is kept small. A young generation of 1 MB (it allocates
      // little), and its large buffers (the known prefixes it compares) on transparent huge
      // pages, unless GLIBC_TUNABLES is set already. Measured on 200-site batches: 5 to 10 %
      // less wall time, about 5 core-ms less a site (the programs' own CPU included).
      execArgv: ['--max-semi-space-size=1'],
      env: { ...process.env, GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.hugetlb=1' },
    });
    this.child.on('message', (m: HelperMessage) => {
      if (m.t === 'ready') {
        this.ready = true;
        for (const id of this.queued.splice(0)) this.send(id);
        return;
      }
      if (m.t === 'hashed') {
        const h = this.hashes.get(m.id);
        if (!h) return;
        this.hashes.delete(m.id);
        this.idle();
        if (m.error) h.fail(Object.assign(new Error(m.error.message), { code: m.error.code }));
        else h.done({ sha256: m.sha256 ?? '', size: m.size ?? 0, ...(m.shared ? { shared: m.shared } : {}) });
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.t === 'pid') {
        p.pid = m.pid;
        return;
      }
      this.pending.delete(m.id);
      this.idle();
      p.resolve(
        m.error
          ? { error: m.error }
          : {
              code: m.code ?? null,
              signal: m.signal ?? null,
              timedOut: Boolean(m.timedOut),
              stdout: Buffer.from(m.stdout ?? []),
              stderr: Buffer.from(m.stderr ?? []),
            },
      );
    });
    const gone = () => {
      if (!this.alive) return;
      this.alive = false;
      if (helper === this) helper = undefined;
      this.hashesHere();
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        // never ready: nothing was sent to it, so the program starts here (a helper that cannot
        // start costs no run); once ready, a program it may have started is not run twice
        if (!this.ready) void launchHere(p.launch).then(p.resolve);
        else {
          killGroup(p.pid, 'SIGKILL');
          p.resolve({ error: { code: 'EHELPER', message: 'the spawn helper exited' } });
        }
      }
    };
    this.child.on('exit', gone);
    this.child.on('error', gone);
    this.idle();
  }

  /** The hashes the helper has not answered, computed here (reading a file twice is harmless). */
  private hashesHere(): void {
    for (const [id, h] of this.hashes) {
      this.hashes.delete(id);
      try {
        h.done(hashHere(h.path, h.of));
      } catch (e) {
        h.fail(e as Error);
      }
    }
  }

  /** Not kept alive by the helper while nothing runs. */
  private idle(): void {
    if (this.pending.size > 0 || this.hashes.size > 0) return;
    this.child.unref();
    (this.child.channel as { unref?: () => void } | undefined)?.unref?.();
  }

  launch(l: Program): Promise<Exit> {
    const id = this.nextId++;
    this.child.ref();
    (this.child.channel as { ref?: () => void } | undefined)?.ref?.();
    return new Promise<Exit>((resolve) => {
      const key = {};
      const entry: Pending = {
        launch: l,
        resolve: (e) => {
          unwatch(key);
          resolve(e);
        },
      };
      this.pending.set(id, entry);
      watch(key, (signal) => killGroup(entry.pid, signal));
      if (this.ready) this.send(id);
      else this.queued.push(id);
    });
  }

  /** The SHA-256 of a file, computed by the helper (here, when it is not ready yet). */
  hash(path: string, of?: HashOf): Promise<Hashed> {
    if (!this.ready) return Promise.resolve().then(() => hashHere(path, of));
    const id = this.nextId++;
    this.child.ref();
    (this.child.channel as { ref?: () => void } | undefined)?.ref?.();
    return new Promise((done, fail) => {
      this.hashes.set(id, { path, of, done, fail });
      // a helper that just died: its exit hands this hash back (computed here)
      this.child.send({ t: 'hash', id, path, ...(of ?? {}) }, () => undefined);
    });
  }

  private send(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    const l = p.launch;
    this.child.send(
      {
        t: 'run',
        id,
        file: l.file,
        args: l.args,
        // the helper's own folder is where this process was when it started it
        cwd: l.cwd ?? process.cwd(),
        env: l.env,
        ...(l.input !== undefined ? { input: l.input } : {}),
        timeoutMs: l.timeoutMs,
      },
      () => undefined,
    ); // a helper that just died: its exit fails this run (see gone)
  }

  close(): void {
    this.hashesHere(); // its exit would no longer settle them
    this.alive = false;
    if (helper === this) helper = undefined;
    if (this.child.connected) this.child.disconnect();
  }
}

interface Pending {
  launch: Program;
  resolve: (e: Exit) => void;
  pid?: number;
}

interface PendingHash {
  path: string;
  of: HashOf | undefined;
  done: (r: Hashed) => void;
  fail: (e: Error) => void;
}

interface HelperMessage {
  t: 'ready' | 'pid' | 'done' | 'hashed';
  sha256?: string;
  size?: number;
  shared?: SharedPrefix;
  id: number;
  pid?: number;
  code?: number | null;
  signal?: NodeJS.Signals | null;
  timedOut?: boolean;
  stdout?: Uint8Array;
  stderr?: Uint8Array;
  error?: { code: string; message: string };
}

let helper: SpawnHelper | undefined;
let holders = 0;

/**
 * Routes every SpawnRunner's programs through the spawn helper until the returned release is
 * called (holders are counted). Where the helper cannot run (Windows, no script beside this
 * module), programs start from this process as usual.
 */
export function useSpawnHelper(options: { script?: string } = {}): () => void {
  holders++;
  if (!helper && GROUPS && process.env.SIGNET_SPAWN_HELPER !== '0') {
    const script = options.script ?? siblingScript(import.meta.url, 'spawn-helper');
    if (existsSync(script)) helper = new SpawnHelper(script);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0) helper?.close();
  };
}

/**
 * The SHA-256 and size of a file: on the spawn helper's core while a batch holds the helper, so
 * this process's one thread goes on with the next site; here otherwise.
 */
export function sha256File(path: string, prefix?: KnownPrefix): Promise<Hashed> {
  const h = helper?.alive ? helper : undefined;
  const of = prefix ? { prefix } : undefined;
  return (h ? h.hash(path, of) : Promise.resolve().then(() => hashHere(path, of))).then((r) => {
    fileHashStats.files++;
    fileHashStats.sharedBytes += r.shared?.length ?? 0;
    return r;
  });
}

/** Files sha256File hashed, and the bytes of known prefixes it compared instead (for benches). */
export const fileHashStats = { files: 0, sharedBytes: 0 };

/** What a hash covers: `parts` of the file in order, or the whole file (SHA-256) after a known prefix. */
type HashOf = { algorithm: string; parts: HashPart[] } | { prefix: KnownPrefix };

function hashHere(path: string, of: HashOf | undefined): Hashed {
  if (of && 'parts' in of) return hashPartsSync(path, of.algorithm, of.parts);
  return sha256FileSync(path, of?.prefix);
}

/** The digest (hex) of `parts` of a file in order, where sha256File computes it. */
export function hashFileParts(path: string, algorithm: string, parts: HashPart[]): Promise<string> {
  const h = helper?.alive ? helper : undefined;
  const of = { algorithm, parts };
  return (h ? h.hash(path, of) : Promise.resolve().then(() => hashHere(path, of))).then((r) => r.sha256);
}

/** The spawn helper's process id while programs start from it (for tests and benches). */
export function spawnHelperPid(): number | undefined {
  return helper?.alive ? helper.pid : undefined;
}

export class SpawnRunner implements Runner {
  run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const command = formatCommand(file, args);
    const label = options.label ?? file;
    const timeoutMs = options.timeoutMs ?? 300_000;
    logger.debug(`$ ${command}`);
    const started = performance.now();
    let env: NodeJS.ProcessEnv = process.env;
    if (options.env !== undefined) {
      env = options.extendEnv === false ? { ...options.env } : { ...process.env, ...options.env };
      for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    }
    const launch: Program = {
      file,
      args: [...args],
      cwd: options.cwd,
      env,
      input: options.input,
      timeoutMs,
    };
    const h = helper?.alive ? helper : undefined;
    return (h ? h.launch(launch) : launchHere(launch)).then((exit) => {
      if ('error' in exit) {
        removeOutputs(options.outputs);
        throw exit.error.code === 'ENOENT'
          ? new SignetError('E_TOOL_MISSING', `${label}: program not found: ${file}`, {
              details: { program: file },
            })
          : new SignetError('E_TOOL_FAILED', `${label}: cannot start: ${redact(exit.error.message)}`, {
              details: { command },
            });
      }
      const stderr = redact(exit.stderr.toString('utf8'));
      const result: RunResult = {
        exitCode: exit.code ?? (exit.signal ? 128 : -1),
        stdout: options.binary ? '' : redact(exit.stdout.toString('utf8')),
        stderr,
        durationMs: performance.now() - started,
        command,
      };
      if (options.binary) result.stdoutBytes = new Uint8Array(exit.stdout);
      if (exit.timedOut) {
        removeOutputs(options.outputs);
        throw new SignetError('E_TOOL_TIMEOUT', `${label}: timed out after ${timeoutMs} ms`, {
          details: { command },
        });
      }
      if (result.exitCode !== 0) {
        removeOutputs(options.outputs);
        if (options.allowFailure) return result;
        const tail = (stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
        throw new SignetError(
          'E_TOOL_FAILED',
          `${label} exited with ${result.exitCode}${tail ? `:\n${tail}` : ''}`,
          { details: { command, exitCode: result.exitCode } },
        );
      }
      return result;
    });
  }
}

export const defaultRunner: Runner = new SpawnRunner();
