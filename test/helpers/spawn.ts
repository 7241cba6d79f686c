/** Runs a program to completion (tests only), collecting stdout and stderr, and streaming both to `onData` when given. */
import { type SpawnOptions, spawn } from 'node:child_process';

export interface Collected {
  code: number;
  stdout: string;
  stderr: string;
}

export function collect(
  cmd: string,
  args: string[],
  options: SpawnOptions = {},
  onData?: (text: string) => void,
): Promise<Collected> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
      onData?.(String(d));
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
      onData?.(String(d));
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
