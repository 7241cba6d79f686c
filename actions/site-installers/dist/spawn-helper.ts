/**
 * Starting a program, and the spawn helper: a small Node process that starts programs for a large
 * one. Starting a program copies the caller's page tables (fork); from a batch process of ~200 MB
 * that cost 13 ms of its main thread a spawn on a 2-core machine, four spawns a site. From this
 * process (~45 MB) it costs about 3 ms, and off the batch's thread.
 *
 * `startProgram` is the one way a program is started, from Signet's process (exec/runner.ts
 * imports it) or from the helper. Dependency-free: the helper runs by path, next to the sources,
 * the built package or a bundled action, with `--signet-spawn-helper` (a bundle that includes
 * this module does not start a helper inside itself).
 *
 * Protocol over the IPC channel (advanced serialization, so bytes travel as bytes):
 *   ← { t: 'ready' }               once, when it listens (runs wait for it in the caller)
 *   → { t: 'run', id, file, args, cwd?, env, input?, timeoutMs }
 *   ← { t: 'pid', id, pid }        as soon as the program runs (the caller may signal its group)
 *   ← { t: 'done', id, code, signal, timedOut, stdout, stderr }  or  { t: 'done', id, error: { code, message } }
 * The helper ignores the terminal's signals (it is in a group of its own); when its caller goes
 * away (the channel closes), every group it started is killed and the helper exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export const HELPER_FLAG = '--signet-spawn-helper';

export interface Program {
  file: string;
  args: string[];
  cwd?: string | undefined;
  env: NodeJS.ProcessEnv;
  input?: string | Uint8Array | undefined;
  timeoutMs: number;
}

/** How a program ended: its exit, or why it could not start. */
export type Exit =
  | { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; stdout: Buffer; stderr: Buffer }
  | { error: { code: string; message: string } };

/** stdout/stderr kept per stream (the rest is counted, not stored). */
const MAX_OUTPUT = 1024 * 1024 * 1024;

/** Signals a process group (a program and everything it started), else the process itself. */
export function killGroup(
  pid: number | undefined,
  signal: NodeJS.Signals,
  child?: ChildProcess,
  groups = true,
): void {
  try {
    if (groups && pid !== undefined) process.kill(-pid, signal);
    else child?.kill(signal);
  } catch {
    child?.kill(signal); // the group is gone already
  }
}

/**
 * Starts `p` (in its own process group when `groups`), collects its output, kills its group
 * after `timeoutMs` and when it fails (whatever it left running does not outlive it).
 * `started` hears how to signal it, once it runs.
 */
export function startProgram(
  p: Program,
  groups: boolean,
  started?: (kill: (signal: NodeJS.Signals) => void, pid: number | undefined) => void,
): Promise<Exit> {
  return new Promise<Exit>((resolve) => {
    const child = spawn(p.file, p.args, {
      cwd: p.cwd,
      env: p.env,
      stdio: [p.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: groups,
    });
    const kill = (signal: NodeJS.Signals) => killGroup(child.pid, signal, child, groups);
    started?.(kill, child.pid);
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
    if (p.input !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(p.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      kill('SIGKILL');
    }, p.timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error: { code: e.code ?? '', message: e.message } });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut || code !== 0) kill('SIGKILL');
      resolve({ code, signal, timedOut, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
  });
}

function helperMain(): void {
  const running = new Map<number, (signal: NodeJS.Signals) => void>();
  const reply = (message: object) => {
    if (process.connected) process.send?.(message);
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => undefined);
  process.on('message', (m: Program & { t: string; id: number }) => {
    if (m?.t !== 'run') return;
    void startProgram(m, true, (kill, pid) => {
      if (pid === undefined) return;
      running.set(m.id, kill);
      reply({ t: 'pid', id: m.id, pid });
    }).then((exit) => {
      running.delete(m.id);
      reply({ t: 'done', id: m.id, ...exit });
    });
  });
  process.on('disconnect', () => {
    for (const kill of running.values()) kill('SIGKILL');
    process.exit(0);
  });
  reply({ t: 'ready' });
}

if (process.argv.includes(HELPER_FLAG) && process.send) helperMain();
