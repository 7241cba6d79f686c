/**
 * The one way Signet runs an external program, on node:child_process (execa cost ~9 ms of CPU a
 * spawn against ~1.3 ms raw, and signing runs two programs per file): an argv array (never a
 * shell string), a time limit that kills the program's whole process group, stdin input,
 * redaction of known secrets in everything it logs or throws, coded E_TOOL_* errors, and deletion
 * of declared outputs when the program fails (osslsigncode, for one, can exit 1 and still leave a
 * full-size output). A program runs in its own process group; a SIGINT/SIGTERM/SIGHUP that
 * ends Signet while programs run is passed on to their groups.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { redact } from '../redact.ts';

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

/** stdout/stderr kept per stream (the rest is counted, not stored). */
const MAX_OUTPUT = 1024 * 1024 * 1024;
const GROUPS = process.platform !== 'win32';

export function formatCommand(file: string, args: readonly string[]): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return redact([file, ...args].map(q).join(' '));
}

function removeOutputs(outputs: string[] | undefined): void {
  for (const p of outputs ?? []) rmSync(p, { force: true, recursive: true });
}

/** Signals the program and everything it started (its process group). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (GROUPS && child.pid !== undefined) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    child.kill(signal); // the group is gone already
  }
}

// Running programs, and the signal forwarding that is installed while there are any.
const running = new Set<ChildProcess>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/**
 * Only when no one else handles the signal: pass it on to the programs' groups, then the default
 * behaviour (exit by the signal) as if we had not listened. A handler of Signet's own (the
 * service's drain, the signing cleanup, the release guard) decides for itself; the cleanup
 * re-raises the signal, which then lands here.
 */
function forward(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  for (const c of running) killGroup(c, signal);
  unwatch();
  process.kill(process.pid, signal);
}
function watch(child: ChildProcess): void {
  if (running.size === 0) for (const s of SIGNALS) process.on(s, forward);
  running.add(child);
}
function unwatch(child?: ChildProcess): void {
  if (child && !running.delete(child)) return;
  if (running.size === 0 || !child) for (const s of SIGNALS) process.off(s, forward);
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
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn(file, args as string[], {
        cwd: options.cwd,
        env,
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        detached: GROUPS,
      });
      watch(child);
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
      if (options.input !== undefined && child.stdin) {
        child.stdin.on('error', () => undefined);
        child.stdin.end(options.input);
      }
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child, 'SIGKILL');
      }, timeoutMs);
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        unwatch(child);
        removeOutputs(options.outputs);
        reject(
          e.code === 'ENOENT'
            ? new SignetError('E_TOOL_MISSING', `${label}: program not found: ${file}`, {
                details: { program: file },
              })
            : new SignetError('E_TOOL_FAILED', `${label}: cannot start: ${redact(e.message)}`, {
                details: { command },
              }),
        );
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        unwatch(child);
        // whatever the program left running in its group does not outlive it
        if (timedOut || code !== 0) killGroup(child, 'SIGKILL');
        const stdoutBuf = Buffer.concat(out);
        const stderr = redact(Buffer.concat(err).toString('utf8'));
        const result: RunResult = {
          exitCode: code ?? (signal ? 128 : -1),
          stdout: options.binary ? '' : redact(stdoutBuf.toString('utf8')),
          stderr,
          durationMs: performance.now() - started,
          command,
        };
        if (options.binary) result.stdoutBytes = new Uint8Array(stdoutBuf);
        if (timedOut) {
          removeOutputs(options.outputs);
          reject(
            new SignetError('E_TOOL_TIMEOUT', `${label}: timed out after ${timeoutMs} ms`, {
              details: { command },
            }),
          );
          return;
        }
        if (result.exitCode !== 0) {
          removeOutputs(options.outputs);
          if (options.allowFailure) return resolve(result);
          const tail = (stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
          reject(
            new SignetError(
              'E_TOOL_FAILED',
              `${label} exited with ${result.exitCode}${tail ? `:\n${tail}` : ''}`,
              { details: { command, exitCode: result.exitCode } },
            ),
          );
          return;
        }
        resolve(result);
      });
    });
  }
}

export const defaultRunner: Runner = new SpawnRunner();
