/**
 * Canary scanning for signing tests: records every argv a Runner is given, every log line and
 * anything else handed to `seen`, then asserts that no planted secret appears anywhere —
 * including inside the files a test produced.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { defaultRunner, type Runner, type RunOptions, type RunResult } from '../../tools/lib/exec/runner.ts';
import { logger } from '../../tools/lib/log.ts';

export class RecordingRunner implements Runner {
  readonly calls: { file: string; args: string[]; env?: Record<string, string | undefined> }[] = [];
  readonly outputs: string[] = [];
  private readonly inner: Runner;
  constructor(inner: Runner = defaultRunner) {
    this.inner = inner;
  }
  async run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ file, args: [...args], ...(options.env ? { env: options.env } : {}) });
    try {
      const r = await this.inner.run(file, args, options);
      this.outputs.push(r.stdout, r.stderr);
      return r;
    } catch (e) {
      this.outputs.push(String((e as Error).message), JSON.stringify(e));
      throw e;
    }
  }
}

export class CanaryScanner {
  readonly texts: string[] = [];
  private readonly original = logger.sink;
  readonly canaries: string[];
  constructor(canaries: string[]) {
    this.canaries = canaries;
    logger.sink = {
      write: (line) => {
        this.texts.push(line);
      },
    };
  }
  seen(...values: unknown[]): void {
    for (const v of values)
      this.texts.push(typeof v === 'string' ? v : JSON.stringify(v, Object.getOwnPropertyNames(v ?? {})));
  }
  restore(): void {
    logger.sink = this.original;
  }
  /** Asserts no canary in anything seen, in the runner's argv/outputs, nor in any file under `dirs`. */
  assertClean(runner?: RecordingRunner, dirs: string[] = []): void {
    const corpus = [...this.texts];
    if (runner) {
      for (const c of runner.calls) corpus.push(c.file, ...c.args);
      corpus.push(...runner.outputs);
    }
    const files: string[] = [];
    const walk = (d: string) => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    for (const d of dirs) walk(d);
    for (const canary of this.canaries) {
      for (const t of corpus) expect(t.includes(canary), `canary in output: ${t.slice(0, 200)}`).toBe(false);
      for (const f of files) {
        expect(readFileSync(f).includes(Buffer.from(canary)), `canary in file ${f}`).toBe(false);
      }
    }
  }
}
