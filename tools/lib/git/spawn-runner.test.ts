import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, registerSecret } from '../redact.ts';
import { SpawnRunner } from './spawn-runner.ts';

afterEach(() => clearSecrets());

describe('SpawnRunner', () => {
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
});
