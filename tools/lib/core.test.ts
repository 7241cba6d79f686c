import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { loadConfig } from './config/load.ts';
import { ERRORS, EXIT, SignetError } from './errors.ts';
import { SpawnRunner } from './exec/runner.ts';
import { clearSecrets, redact, registerSecret } from './redact.ts';
import { parseSecretRef, resolveSecret } from './secrets.ts';

afterEach(() => clearSecrets());

describe('redact', () => {
  it('masks registered secrets and their encodings everywhere', () => {
    registerSecret('canary-S3cr3t/+=');
    const b64 = Buffer.from('canary-S3cr3t/+=').toString('base64');
    const out = redact(`a canary-S3cr3t/+= b ${encodeURIComponent('canary-S3cr3t/+=')} c ${b64}`);
    expect(out).toBe('a *** b *** c ***');
  });
  it('leaves text alone when nothing is registered', () => {
    expect(redact('hello')).toBe('hello');
  });
});

describe('SignetError', () => {
  it('carries code, hint and exit class, and redacts its message and details', () => {
    registerSecret('pin-123456');
    const e = new SignetError('E_SIGN_BAD_SECRET', 'PIN pin-123456 incorrect', {
      details: { pin: 'pin-123456' },
    });
    expect(e.message).toBe('PIN *** incorrect');
    expect(JSON.stringify(e.toJSON())).not.toContain('pin-123456');
    expect(e.exitCode).toBe(EXIT.refused);
    expect(e.hint).toBe(ERRORS.E_SIGN_BAD_SECRET.hint);
  });
});

describe('secrets', () => {
  it('refuses literals and resolves env: and file: references, registering the value', () => {
    expect(() => parseSecretRef('hunter2-literal', 'signing.password')).toThrow(/env:NAME or file:PATH/);
    expect(resolveSecret('env:CANARY_X', 'f', { CANARY_X: 'canary-env-value' })).toBe('canary-env-value');
    expect(redact('x canary-env-value')).toBe('x ***');
    const dir = tempDir();
    writeFileSync(join(dir, 's'), 'canary-file-value\n');
    expect(resolveSecret(`file:${join(dir, 's')}`, 'f')).toBe('canary-file-value');
    expect(() => resolveSecret('env:NOPE_NOT_SET', 'signing.pin', {})).toThrow(
      /signing.pin: environment variable NOPE_NOT_SET/,
    );
  });
});

describe('SpawnRunner', () => {
  const runner = new SpawnRunner();
  it('runs argv arrays without a shell', async () => {
    const r = await runner.run('printf', ['%s', '$(echo no) ; `x`']);
    expect(r.stdout).toBe('$(echo no) ; `x`');
  });
  it('throws a coded, redacted error and deletes declared outputs on failure', async () => {
    registerSecret('canary-out-secret');
    const dir = tempDir();
    const out = join(dir, 'out.bin');
    const err = await runner
      .run('sh', ['-c', `echo canary-out-secret > ${out}; echo canary-out-secret >&2; exit 3`], {
        outputs: [out],
      })
      .catch((e: unknown) => e as SignetError);
    expect(err).toBeInstanceOf(SignetError);
    expect((err as SignetError).code).toBe('E_TOOL_FAILED');
    expect((err as SignetError).message).not.toContain('canary-out-secret');
    expect(existsSync(out)).toBe(false);
  });
  it('reports a missing program and a timeout with their own codes', async () => {
    await expect(runner.run('signet-no-such-tool', [])).rejects.toMatchObject({ code: 'E_TOOL_MISSING' });
    await expect(runner.run('sleep', ['5'], { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'E_TOOL_TIMEOUT',
    });
  });
});

describe('config', () => {
  it('uses defaults without a file and names every bad field', () => {
    const dir = tempDir();
    expect(loadConfig(dir).config.version.tagPrefix).toBeUndefined(); // the lenient default 'v'
    writeFileSync(
      join(dir, 'signet.config.yaml'),
      'version:\n  tagPrefix: 3\n  breakingInZeroMajor: huge\nbogus: 1\n',
    );
    let err: SignetError | undefined;
    try {
      loadConfig(dir);
    } catch (e) {
      err = e as SignetError;
    }
    expect(err?.code).toBe('E_CONFIG_INVALID');
    expect(err?.message).toMatch(/version\.tagPrefix/);
    expect(err?.message).toMatch(/version\.breakingInZeroMajor/);
    expect(err?.message).toMatch(/bogus/);
  });
});
