/** Runs the CLI from source as users do (bounded in time) for the fault-injection tier. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', 'tools', 'cli', 'bin.ts');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function signet(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, timeout: timeoutMs, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: Number.isFinite(code) ? code : 1, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

/** The `code` of the error a `--json` run printed (stdout), or of the `[E_…]` line on stderr. */
export function errorCode(r: Run): string | undefined {
  try {
    const j = JSON.parse(r.stdout) as { error?: { code?: string }; code?: string };
    const c = j.error?.code ?? j.code;
    if (c) return c;
  } catch {}
  return /\[(E_[A-Z_]+)\]/.exec(r.stderr)?.[1];
}
