/**
 * A Runner over node:child_process for git's short calls: the same contract as ExecaRunner
 * (argv arrays only, timeout, redaction of everything logged or thrown, coded errors, outputs
 * deleted on failure) without loading execa, which costs ~90 ms of start-up for `signet version`.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { SignetError } from '../errors.ts';
import type { Runner, RunOptions, RunResult } from '../exec/runner.ts';
import { logger } from '../log.ts';
import { redact } from '../redact.ts';

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

export function formatArgv(file: string, args: readonly string[]): string {
  return redact([file, ...args].map(quote).join(' '));
}

export class SpawnRunner implements Runner {
  run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const command = formatArgv(file, args);
    const label = options.label ?? file;
    const timeoutMs = options.timeoutMs ?? 300_000;
    logger.debug(`$ ${command}`);
    const started = performance.now();
    const removeOutputs = () => {
      for (const p of options.outputs ?? []) rmSync(p, { force: true, recursive: true });
    };
    return new Promise((resolvePromise, reject) => {
      const env = options.extendEnv === false ? { ...options.env } : { ...process.env, ...options.env };
      for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
      const child = spawn(file, args as string[], {
        cwd: options.cwd,
        env: env as NodeJS.ProcessEnv,
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout!.on('data', (b: Buffer) => out.push(b));
      child.stderr!.on('data', (b: Buffer) => err.push(b));
      if (options.input !== undefined) child.stdin!.end(options.input);
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        removeOutputs();
        reject(
          e.code === 'ENOENT'
            ? new SignetError('E_TOOL_MISSING', `${label}: program not found: ${file}`, {
                details: { program: file },
              })
            : new SignetError('E_TOOL_FAILED', `${label}: ${redact(e.message)}`, { details: { command } }),
        );
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const stdoutBytes = Buffer.concat(out);
        const stderr = redact(Buffer.concat(err).toString('utf8'));
        const result: RunResult = {
          exitCode: code ?? -1,
          stdout: options.binary ? '' : redact(stdoutBytes.toString('utf8')),
          stderr,
          durationMs: performance.now() - started,
          command,
        };
        if (options.binary) result.stdoutBytes = new Uint8Array(stdoutBytes);
        if (timedOut) {
          removeOutputs();
          return reject(
            new SignetError('E_TOOL_TIMEOUT', `${label}: timed out after ${timeoutMs} ms`, {
              details: { command },
            }),
          );
        }
        if (result.exitCode !== 0) {
          removeOutputs();
          if (options.allowFailure) return resolvePromise(result);
          const tail = (stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
          return reject(
            new SignetError(
              'E_TOOL_FAILED',
              `${label} exited with ${result.exitCode}${tail ? `:\n${tail}` : ''}`,
              {
                details: { command, exitCode: result.exitCode },
              },
            ),
          );
        }
        resolvePromise(result);
      });
    });
  }
}

export const spawnRunner: Runner = new SpawnRunner();
