/**
 * A lean Runner for the signing hot path, with the same contract as exec/runner.ts (argv arrays,
 * time limit, redaction of everything logged or thrown, outputs deleted on failure, coded
 * E_TOOL_* errors) but built directly on child_process.spawn: execa costs ~9 ms of CPU per run,
 * raw spawn ~1.3 ms, and signing runs two programs per file (measured in bench/sign.ts).
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { SignetError } from '../errors.ts';
import type { Runner, RunOptions, RunResult } from '../exec/runner.ts';
import { logger } from '../log.ts';
import { redact } from '../redact.ts';
import { trackChild } from './cleanup.ts';

const MAX_OUTPUT = 16 * 1024 * 1024;

/** Same quoting as exec/runner.ts formatCommand (kept here so this module does not load execa). */
function formatCommand(file: string, args: readonly string[]): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return redact([file, ...args].map(q).join(' '));
}

function removeOutputs(outputs: string[] | undefined): void {
  for (const p of outputs ?? []) rmSync(p, { force: true, recursive: true });
}

export class SpawnRunner implements Runner {
  run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const command = formatCommand(file, args);
    const label = options.label ?? file;
    const timeoutMs = options.timeoutMs ?? 300_000;
    logger.debug(`$ ${command}`);
    const started = performance.now();
    const env =
      options.env === undefined
        ? process.env
        : options.extendEnv === false
          ? options.env
          : { ...process.env, ...options.env };
    return new Promise<RunResult>((resolve, reject) => {
      const child = spawn(file, args as string[], {
        cwd: options.cwd,
        env: env as NodeJS.ProcessEnv,
        stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      trackChild(child);
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
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        removeOutputs(options.outputs);
        if (e.code === 'ENOENT') {
          reject(
            new SignetError('E_TOOL_MISSING', `${label}: program not found: ${file}`, {
              details: { program: file },
            }),
          );
        } else {
          reject(
            new SignetError('E_TOOL_FAILED', `${label}: cannot start: ${e.message}`, {
              details: { command },
            }),
          );
        }
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const durationMs = performance.now() - started;
        const stdoutBuf = Buffer.concat(out);
        const stderr = redact(Buffer.concat(err).toString('utf8'));
        const result: RunResult = {
          exitCode: code ?? (signal ? 128 : -1),
          stdout: options.binary ? '' : redact(stdoutBuf.toString('utf8')),
          stderr,
          durationMs,
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
          if (options.allowFailure) {
            resolve(result);
            return;
          }
          const tail = (stderr || result.stdout).trim().split('\n').slice(-15).join('\n');
          reject(
            new SignetError(
              'E_TOOL_FAILED',
              `${label} exited with ${result.exitCode}${tail ? `:\n${tail}` : ''}`,
              {
                details: { command, exitCode: result.exitCode },
              },
            ),
          );
          return;
        }
        resolve(result);
      });
    });
  }
}

export const signingRunner: Runner = new SpawnRunner();
