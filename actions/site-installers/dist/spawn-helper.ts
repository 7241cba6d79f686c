/**
 * The spawn helper: a small Node process that starts programs for a large one. Starting a program
 * copies the caller's page tables (fork); from a batch process of ~200 MB that cost 13 ms of its
 * main thread a spawn on a 2-core machine, four spawns a site. From this process (~45 MB) it costs
 * about 2 ms, and off the batch's thread.
 *
 * Dependency-free (it runs by path, next to the sources, the built package or a bundled action).
 * Protocol over the IPC channel (advanced serialization, so bytes travel as bytes):
 *   ← { t: 'ready' }               once, when it listens (runs wait for it in the caller)
 *   → { t: 'run', id, file, args, cwd?, env, input?, timeoutMs }
 *   ← { t: 'pid', id, pid }        as soon as the program runs (the caller may signal its group)
 *   ← { t: 'done', id, code, signal, timedOut, stdout, stderr }  or  { t: 'done', id, error: { code, message } }
 * Each program runs in its own process group. The helper ignores the terminal's signals (it is in
 * a group of its own); when its caller goes away (the channel closes), every group it started is
 * killed and the helper exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';

interface RunMessage {
  t: 'run';
  id: number;
  file: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  input?: string | Uint8Array;
  timeoutMs: number;
}

const MAX_OUTPUT = 1024 * 1024 * 1024;
const running = new Map<number, ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

function reply(message: object): void {
  if (process.connected) process.send?.(message);
}

function run(m: RunMessage): void {
  const child = spawn(m.file, m.args, {
    cwd: m.cwd,
    env: m.env,
    stdio: [m.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outLen = 0;
  let errLen = 0;
  let timedOut = false;
  if (child.pid !== undefined) {
    running.set(m.id, child);
    reply({ t: 'pid', id: m.id, pid: child.pid });
  }
  child.stdout?.on('data', (c: Buffer) => {
    if (outLen < MAX_OUTPUT) out.push(c);
    outLen += c.length;
  });
  child.stderr?.on('data', (c: Buffer) => {
    if (errLen < MAX_OUTPUT) err.push(c);
    errLen += c.length;
  });
  if (m.input !== undefined && child.stdin) {
    child.stdin.on('error', () => undefined);
    child.stdin.end(m.input);
  }
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child, 'SIGKILL');
  }, m.timeoutMs);
  child.on('error', (e: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    running.delete(m.id);
    reply({ t: 'done', id: m.id, error: { code: e.code ?? '', message: e.message } });
  });
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    running.delete(m.id);
    // whatever the program left running in its group does not outlive it
    if (timedOut || code !== 0) killGroup(child, 'SIGKILL');
    reply({
      t: 'done',
      id: m.id,
      code,
      signal,
      timedOut,
      stdout: Buffer.concat(out),
      stderr: Buffer.concat(err),
    });
  });
}

for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => undefined);
process.on('message', (m: RunMessage) => {
  if (m?.t === 'run') run(m);
});
process.on('disconnect', () => {
  for (const c of running.values()) killGroup(c, 'SIGKILL');
  process.exit(0);
});
reply({ t: 'ready' });
