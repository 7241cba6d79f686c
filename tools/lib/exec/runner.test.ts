import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { clearSecrets, registerSecret } from '../redact.ts';
import { SpawnRunner } from './runner.ts';

afterEach(() => clearSecrets());

describe('the one runner (exec/runner.ts)', () => {
  const r = new SpawnRunner();
  it('runs argv arrays, passes input and env, returns output', async () => {
    const out = await r.run('sh', ['-c', 'cat; printf "%s" "$X"'], { input: 'in|', env: { X: 'a b' } });
    expect(out).toMatchObject({ exitCode: 0, stdout: 'in|a b' });
  });
  it('coded errors: missing program, failure (redacted), timeout, allowFailure', async () => {
    registerSecret('s3cr3t-value');
    await expect(r.run('no-such-program-xyz', [])).rejects.toMatchObject({ code: 'E_TOOL_MISSING' });
    const e = await r.run('sh', ['-c', 'echo "bad s3cr3t-value" >&2; exit 3']).catch((x) => x);
    expect(e).toMatchObject({ code: 'E_TOOL_FAILED' });
    expect(e.message).toContain('bad ***');
    expect(e.message).not.toContain('s3cr3t-value');
    await expect(r.run('sleep', ['5'], { timeoutMs: 100 })).rejects.toMatchObject({ code: 'E_TOOL_TIMEOUT' });
    expect((await r.run('sh', ['-c', 'exit 4'], { allowFailure: true })).exitCode).toBe(4);
  });
  it('a timeout kills the whole process group, and declared outputs are deleted', async () => {
    const dir = tempDir();
    const out = join(dir, 'partial.bin');
    const pidFile = join(dir, 'grandchild.pid');
    const e = await r
      .run('sh', ['-c', `echo partial > ${out}; sleep 30 & echo $! > ${pidFile}; wait`], {
        timeoutMs: 300,
        outputs: [out],
      })
      .catch((x) => x);
    expect(e).toMatchObject({ code: 'E_TOOL_TIMEOUT' });
    expect(existsSync(out)).toBe(false);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((ok) => setTimeout(ok, 100));
    // the backgrounded sleep is gone too (or a zombie waiting for a reaper that is not us)
    const state = existsSync(`/proc/${pid}/stat`)
      ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0]
      : 'gone';
    expect(['gone', 'Z', 'X']).toContain(state);
  });
  it('binary stdout, env without process.env, and no signal listeners left behind', async () => {
    const b = await r.run('printf', ['\\001\\002'], { binary: true });
    expect([...(b.stdoutBytes ?? [])]).toEqual([1, 2]);
    const env = await r.run('/bin/sh', ['-c', 'printf "%s|%s" "$ONLY" "${HOME:-none}"'], {
      env: { ONLY: 'x' },
      extendEnv: false,
    });
    expect(env.stdout).toBe('x|none');
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });
});
