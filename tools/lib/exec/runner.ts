/**
 * The one way Signet runs an external program: an argv array (never a shell string), a timeout,
 * redaction of known secrets in everything it logs or throws, and deletion of declared outputs
 * when the program fails (osslsigncode, for one, can exit 1 and still leave a full-size output).
 */
import { rmSync } from 'node:fs';
import { execa } from 'execa';
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

export function formatCommand(file: string, args: readonly string[]): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return redact([file, ...args].map(q).join(' '));
}

function removeOutputs(outputs: string[] | undefined): void {
  for (const p of outputs ?? []) rmSync(p, { force: true, recursive: true });
}

export class ExecaRunner implements Runner {
  async run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const command = formatCommand(file, args);
    const label = options.label ?? file;
    logger.debug(`$ ${command}`);
    const started = performance.now();
    const result = await execa(file, args as string[], {
      cwd: options.cwd,
      env: options.env,
      extendEnv: options.extendEnv ?? true,
      input: options.input,
      timeout: options.timeoutMs ?? 300_000,
      reject: false,
      stripFinalNewline: false,
      encoding: options.binary ? 'buffer' : 'utf8',
      maxBuffer: 1024 * 1024 * 1024,
    });
    const durationMs = performance.now() - started;
    const stdoutRaw = result.stdout as unknown;
    const stdoutBytes = stdoutRaw instanceof Uint8Array ? stdoutRaw : undefined;
    const stdout = stdoutBytes ? '' : redact(String(stdoutRaw ?? ''));
    const stderrRaw = result.stderr as unknown;
    const stderr = redact(
      stderrRaw instanceof Uint8Array ? Buffer.from(stderrRaw).toString('utf8') : String(stderrRaw ?? ''),
    );
    const base: RunResult = { exitCode: result.exitCode ?? -1, stdout, stderr, durationMs, command };
    if (stdoutBytes) base.stdoutBytes = stdoutBytes;

    const errno = (result as { code?: string }).code;
    if (
      errno === 'ENOENT' ||
      (result.failed && /ENOENT/.test(String(result.message)) && result.exitCode === undefined)
    ) {
      removeOutputs(options.outputs);
      throw new SignetError('E_TOOL_MISSING', `${label}: program not found: ${file}`, {
        details: { program: file },
      });
    }
    if (result.timedOut) {
      removeOutputs(options.outputs);
      throw new SignetError(
        'E_TOOL_TIMEOUT',
        `${label}: timed out after ${options.timeoutMs ?? 300_000} ms`,
        {
          details: { command },
        },
      );
    }
    if (base.exitCode !== 0) {
      removeOutputs(options.outputs);
      if (options.allowFailure) return base;
      const tail = (stderr || stdout).trim().split('\n').slice(-15).join('\n');
      throw new SignetError(
        'E_TOOL_FAILED',
        `${label} exited with ${base.exitCode}${tail ? `:\n${tail}` : ''}`,
        {
          details: { command, exitCode: base.exitCode },
        },
      );
    }
    return base;
  }
}

export const defaultRunner: Runner = new ExecaRunner();
