/**
 * A fresh 64-bit Wine prefix for end-to-end installer tests (~8 s to create; reuse one per test
 * file). Runs with WINEDEBUG=-all and no display. `stop()` shuts the prefix's wineserver down and
 * the directory is removed after the test file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRunner, type RunResult } from '../../tools/lib/exec/runner.ts';
import { tempDir } from './tmp.ts';

export interface WinePrefix {
  dir: string;
  env: Record<string, string>;
  /** drive_c on the host. */
  driveC: string;
  /** Runs a Windows program (exit code returned, never thrown). */
  run(program: string, args?: string[], timeoutMs?: number): Promise<RunResult>;
  /** Host path of a C:\ path. */
  hostPath(windowsPath: string): string;
  /** The state of a service per `sc query` (RUNNING, STOPPED…), or undefined when it does not exist. */
  serviceState(name: string): Promise<string | undefined>;
  readText(windowsPath: string): string | undefined;
  stop(): Promise<void>;
}

export function wineAvailable(): boolean {
  return ['/usr/bin/wine', '/usr/lib/wine/wine64'].some((p) => existsSync(p));
}

/** `parent`: where to create it (default: a temp dir removed after the test file). */
export async function makeWinePrefix(parent?: string): Promise<WinePrefix> {
  const dir = join(parent ?? tempDir('signet-wine-'), 'prefix');
  const env = {
    WINEPREFIX: dir,
    WINEARCH: 'win64',
    WINEDEBUG: '-all',
    WINEDLLOVERRIDES: 'mscoree,mshtml=', // no Mono/Gecko install prompts
    DISPLAY: '',
  };
  await defaultRunner.run('wine', ['wineboot', '--init'], { env, timeoutMs: 180_000, label: 'wineboot' });
  const driveC = join(dir, 'drive_c');
  const hostPath = (p: string) => join(driveC, ...p.replace(/^[A-Za-z]:\\/, '').split('\\'));
  const run = (program: string, args: string[] = [], timeoutMs = 120_000) =>
    defaultRunner.run('wine', [program, ...args], {
      env,
      timeoutMs,
      allowFailure: true,
      label: `wine ${program}`,
    });
  return {
    dir,
    env,
    driveC,
    run,
    hostPath,
    async serviceState(name) {
      const r = await run('sc', ['query', name]);
      if (r.exitCode !== 0) return undefined;
      return /STATE\s*:\s*\d+\s+(\w+)/.exec(r.stdout)?.[1];
    },
    readText(p) {
      const h = hostPath(p);
      return existsSync(h) ? readFileSync(h, 'utf8') : undefined;
    },
    async stop() {
      await defaultRunner.run('wineserver', ['-k'], { env, allowFailure: true, timeoutMs: 30_000 });
    },
  };
}
