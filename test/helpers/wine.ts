/**
 * A fresh 64-bit Wine prefix for end-to-end installer tests (~8 s to create; reuse one per test
 * file). Runs with WINEDEBUG=-all and no display. `stop()` shuts the prefix's wineserver down and
 * the directory is removed after the test file.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
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
  // The prefix's daemons (wineserver, services.exe, …) outlive the call that starts them and
  // inherit its stdio: started from a call with pipes, they hold those pipes open and every later
  // call waits for them (seconds each). Start them here without pipes, and keep the wineserver up
  // (-p) so later calls find everything running.
  mkdirSync(dir, { recursive: true });
  const quiet = (file: string, args: string[]) =>
    new Promise<void>((ok, fail) => {
      // pipes (drained, never waited for): under Wine 8 a services.exe started with /dev/null
      // as its stdio starts no service at all
      const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      child.stdin?.end();
      child.stdout?.resume();
      child.stderr?.resume();
      const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
      child.on('error', fail);
      child.on('exit', (code) => {
        clearTimeout(timer);
        code === 0 ? ok() : fail(new Error(`${file} ${args.join(' ')} exited with ${code}`));
      });
    });
  await quiet('wine', ['wineboot', '--init']);
  // services started while the prefix is being created start no service (Wine 8): restart them
  await quiet('wineserver', ['-k']).catch(() => undefined);
  await quiet('wineserver', ['-w']).catch(() => undefined);
  await quiet('wineserver', ['-p']);
  await quiet('wine', ['wineboot']);
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
