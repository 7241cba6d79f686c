/** The CLI's first-use paths through the real process: version, usage errors, shell completion. */
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { packageVersion } from '../lib/paths.ts';

const BIN = join(import.meta.dirname, 'bin.ts');

function signet(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The documented error shape, with every field. */
function errorOf(stdout: string) {
  const j = JSON.parse(stdout) as { error: Record<string, unknown> };
  expect(Object.keys(j)).toEqual(['error']);
  expect(Object.keys(j.error).sort()).toEqual(['code', 'details', 'hint', 'message']);
  return j.error as { code: string; message: string; hint: string; details: Record<string, unknown> };
}

describe('signet --version', () => {
  it('prints the package version and exits 0 (plain and --json)', () => {
    const plain = signet(['--version']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(`${packageVersion()}\n`);
    const json = signet(['--json', '--version']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ version: packageVersion() });
  });

  it('leaves a command option of the same name alone (changelog --version X)', () => {
    const r = signet(['changelog', '--version', '1.0.0', '--cwd', tempDir(), '--json']);
    expect(r.stdout).not.toBe(`${packageVersion()}\n`);
    expect(errorOf(r.stdout).code).toBe('E_NOT_A_GIT_REPO');
  });
});

describe('usage errors are E_USAGE, exit 2, with the full error shape', () => {
  it('no command: help on stderr, then the coded error', () => {
    const r = signet([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('signet <command> [options]');
    expect(r.stderr).toContain('site-installers');
    expect(r.stderr).toMatch(/\[E_USAGE\] no command given\n\s+hint: .*signet --help/);
    expect(r.stderr).not.toContain('E_INTERNAL');
    expect(r.stdout).toBe('');
    const j = signet(['--json']);
    expect(j.code).toBe(2);
    expect(errorOf(j.stdout)).toMatchObject({ code: 'E_USAGE', details: { command: null } });
  });

  it('a mistyped command names the nearest one in the hint', () => {
    const r = signet(['sgn', '--json']);
    expect(r.code).toBe(2);
    const e = errorOf(r.stdout);
    expect(e).toMatchObject({
      code: 'E_USAGE',
      message: 'unknown command "sgn"',
      details: { command: 'sgn', suggestion: 'sign' },
    });
    expect(e.hint).toContain('`signet sign`');
    expect(r.stderr).not.toContain('E_INTERNAL');
  });

  it('an unknown command without a near one points at --help', () => {
    const r = signet(['xyzzy-frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\[E_USAGE\] unknown command "xyzzy-frobnicate"\n\s+hint: .*signet --help/);
  });

  it("an unknown option names the option, never its value, and the command's help", () => {
    const r = signet(['version', '--bogus=hunter2-secret', '--json']);
    expect(r.code).toBe(2);
    const e = errorOf(r.stdout);
    expect(e).toMatchObject({ code: 'E_USAGE', message: 'unknown option --bogus' });
    expect(e.hint).toContain('signet version --help');
    const root = signet(['--frob=hunter2-secret']);
    expect(root.code).toBe(2);
    expect(root.stderr).toContain('[E_USAGE] unknown option --frob');
    expect(root.stdout + root.stderr).not.toContain('hunter2');
  });

  it('a missing argument or an invalid choice is E_USAGE with the command help in the hint', () => {
    const missing = signet(['sign', '--json']);
    expect(missing.code).toBe(2);
    expect(errorOf(missing.stdout).hint).toContain('signet sign --help');
    const choice = signet(['version', '--channel', 'nightly', '--json']);
    expect(choice.code).toBe(2);
    expect(errorOf(choice.stdout)).toMatchObject({ code: 'E_USAGE', details: { command: 'version' } });
  });
});

describe('signet completion', () => {
  it('prints a valid bash script whose completions of `signet si` are sign and site-installers', () => {
    const r = signet(['completion'], { SHELL: '/bin/bash' });
    expect(r.code).toBe(0);
    const dir = tempDir('signet-completion-');
    const script = join(dir, 'signet-completion.sh');
    writeFileSync(script, r.stdout);
    const syntax = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);

    // the script calls `signet --get-yargs-completions …`: put a `signet` on PATH that runs this CLI
    const shim = join(dir, 'signet');
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(shim, 0o755);
    const complete = spawnSync(
      'bash',
      [
        '-c',
        `source "${script}"; COMP_WORDS=(signet si); COMP_CWORD=1; _signet_yargs_completions; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env['PATH']}` } },
    );
    expect(complete.status, complete.stderr).toBe(0);
    expect(complete.stdout.trim().split('\n').sort()).toEqual(['sign', 'site-installers']);
  });

  it('answers the yargs completion protocol directly', () => {
    const r = signet(['--get-yargs-completions', 'signet', 'si']);
    expect(r.code).toBe(0);
    const words = r.stdout.trim().split('\n');
    expect(words).toContain('sign');
    expect(words).toContain('site-installers');
    expect(words).toContain('init');
  });
});
