import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect } from '../../../test/helpers/spawn.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { checkListenPolicy, isLoopback, parseExpires, parseListen } from './serve.ts';

const bin = join(import.meta.dirname, '..', 'bin.ts');
const dir = tempDir('signet-cli-serve-');
writeFileSync(
  join(dir, 'signet.config.yaml'),
  'service:\n  data: ./svc\n  masterKey: env:SIGNET_MASTER_KEY\n',
);
const env = { ...process.env, SIGNET_MASTER_KEY: randomBytes(32).toString('base64') };
const run = (args: string[]) => collect(process.execPath, [bin, ...args], { cwd: dir, env });

describe('signet serve token', () => {
  it('create prints the token once, list never shows it, revoke by name; errors are coded', async () => {
    const made = await run([
      'serve',
      'token',
      'create',
      '--name',
      'django',
      '--scope',
      'sites:write',
      'installers:read',
      '--expires',
      '90d',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const { token, status } = JSON.parse(made.stdout) as {
      token: string;
      status: { scopes: string[]; expiresAt: string };
    };
    expect(token).toMatch(/^sgn_[A-Za-z0-9_-]{40,}$/);
    expect(status.scopes).toEqual(['sites:write', 'installers:read']);
    expect(Date.parse(status.expiresAt) - Date.now()).toBeGreaterThan(89 * 86_400_000);
    const human = await run(['serve', 'token', 'create', '--name', 'ops', '--scope', 'admin']);
    expect(human.stdout).toMatch(/^sgn_\S+\n/);
    expect(human.stdout).toMatch(/only time the token is shown/);
    const list = await run(['serve', 'token', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(
      (JSON.parse(list.stdout) as { tokens: { name: string; active: boolean }[] }).tokens.map((t) => [
        t.name,
        t.active,
      ]),
    ).toEqual([
      ['django', true],
      ['ops', true],
    ]);
    expect(list.stdout + list.stderr).not.toContain(token);
    const revoked = await run(['serve', 'token', 'revoke', 'django']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(/revoked django/);
    const after = await run(['serve', 'token', 'list']);
    expect(after.stdout).toMatch(/revoked\s+django/);
    const dup = await run(['serve', 'token', 'create', '--name', 'ops', '--scope', 'admin']);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toContain('E_CONFLICT');
    const bad = await run(['serve', 'token', 'create', '--name', 'x', '--scope', 'root']);
    expect(bad.code).toBe(2);
    const none = await run(['serve', 'token', 'revoke', 'nope']);
    expect(none.stderr).toContain('E_NOT_FOUND');
  });

  it('refuses plain HTTP on a non-loopback address unless --behind-proxy', async () => {
    const r = await run(['serve', '--listen', '0.0.0.0:8750']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('E_SERVICE_UNSAFE_LISTEN');
  });
});

describe('listen policy helpers', () => {
  it('parses HOST:PORT and [v6]:PORT; loopback is 127/8, ::1, localhost', () => {
    expect(parseListen('127.0.0.1:8750')).toEqual({ host: '127.0.0.1', port: 8750 });
    expect(parseListen('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(() => parseListen('host')).toThrow(/HOST:PORT/);
    expect(() => parseListen('h:70000')).toThrow();
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '::ffff:10.0.0.1'])
      expect(isLoopback(h), h).toBe(false);
    expect(() => checkListenPolicy('0.0.0.0', { tls: false, behindProxy: false })).toThrow(/plain HTTP/);
    expect(() => checkListenPolicy('0.0.0.0', { tls: true, behindProxy: false })).not.toThrow();
    expect(() => checkListenPolicy('0.0.0.0', { tls: false, behindProxy: true })).not.toThrow();
    expect(parseExpires('90d')).toBe(90 * 86_400_000);
    expect(() => parseExpires('soon')).toThrow();
  });
});
