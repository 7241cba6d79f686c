/**
 * The workflow harness itself, on small synthetic workflows: the runner-file semantics
 * (GITHUB_ENV, GITHUB_OUTPUT with heredocs, GITHUB_PATH, GITHUB_STEP_SUMMARY), job `needs`, `if:`,
 * outputs and results, status functions, secret-bearing outputs dropped, and the restricted PATH
 * that makes a forgotten `apt-get install` fail.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './tmp.ts';
import { runWorkflow } from './workflow-harness.ts';

function origin(): string {
  const dir = tempDir('signet-harness-repo-');
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'D',
    GIT_AUTHOR_EMAIL: 'd@x',
    GIT_COMMITTER_NAME: 'D',
    GIT_COMMITTER_EMAIL: 'd@x',
  };
  execFileSync('git', ['init', '-q', '-b', 'main', dir]);
  writeFileSync(join(dir, 'hello.txt'), 'hello\n');
  execFileSync('git', ['add', '.'], { cwd: dir });
  execFileSync('git', ['commit', '-qm', 'init'], { cwd: dir, env });
  return dir;
}

async function run(yaml: string, inputs: Record<string, string> = {}, secrets: Record<string, string> = {}) {
  const dir = tempDir('signet-harness-');
  const wf = join(dir, 'wf.yml');
  writeFileSync(wf, yaml);
  return runWorkflow({
    workflow: wf,
    event: { name: 'workflow_dispatch', inputs },
    origin: origin(),
    repository: 'acme/x',
    secrets,
    forge: {
      flavor: 'github',
      serverUrl: 'http://127.0.0.1:9',
      apiUrl: 'http://127.0.0.1:9',
      token: 'tok-harness-1',
    },
    actionRepos: {},
    workDir: dir,
  });
}

describe('workflow harness', () => {
  it('GITHUB_ENV, GITHUB_OUTPUT (heredoc), GITHUB_PATH and the summary behave as on a runner', async () => {
    const r = await run(
      `
on:
  workflow_dispatch:
    inputs:
      who: { type: string, default: world }
jobs:
  a:
    runs-on: ubuntu-latest
    outputs:
      greeting: \${{ steps.one.outputs.greeting }}
      multi: \${{ steps.one.outputs.multi }}
    steps:
      - id: one
        run: |
          echo "greeting=hello \${{ inputs.who }}" >> "$GITHUB_OUTPUT"
          { echo "multi<<EOF"; echo "line 1"; echo "line 2"; echo "EOF"; } >> "$GITHUB_OUTPUT"
          echo "FROM_ENV=set by one" >> "$GITHUB_ENV"
          mkdir -p "$RUNNER_TEMP/tools" && printf '#!/bin/sh\\necho tool ran\\n' > "$RUNNER_TEMP/tools/mytool" && chmod +x "$RUNNER_TEMP/tools/mytool"
          echo "$RUNNER_TEMP/tools" >> "$GITHUB_PATH"
          echo "### summary of one" >> "$GITHUB_STEP_SUMMARY"
          test -z "$FROM_ENV"
      - id: two
        run: |
          test "$FROM_ENV" = "set by one"
          mytool
          test "\${{ env.FROM_ENV }}" = "set by one"
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: test "\${{ needs.a.outputs.greeting }}" = "hello there" && test "\${{ needs.a.result }}" = success
`,
      { who: 'there' },
    );
    expect(r.failures()).toBe('');
    expect(r.jobs['a']!.outputs).toEqual({ greeting: 'hello there', multi: 'line 1\nline 2' });
    expect(r.jobs['a']!.steps[0]!.summary).toBe('### summary of one\n');
    expect(r.jobs['a']!.steps[1]!.log).toContain('tool ran');
    expect(r.jobs['b']!.result).toBe('success');
  });

  it('a failing step fails its job, skips the rest unless always()/failure(), and skips the jobs that need it', async () => {
    const r = await run(`
on: workflow_dispatch
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - id: bad
        run: exit 3
      - id: skipped
        run: echo never
      - id: cleanup
        if: always()
        run: echo cleaned
      - id: notice
        if: failure() && steps.bad.outcome == 'failure'
        run: echo noticed
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: echo never
  c:
    needs: [a]
    if: always() && needs.a.result == 'failure'
    runs-on: ubuntu-latest
    steps:
      - run: echo reported
  d:
    needs: b
    runs-on: ubuntu-latest
    steps:
      - run: echo never
`);
    expect(r.jobs['a']!.result).toBe('failure');
    expect(r.jobs['a']!.steps.map((s) => s.outcome)).toEqual(['failure', 'skipped', 'success', 'success']);
    expect(r.jobs['b']!.result).toBe('skipped');
    expect(r.jobs['c']!.result).toBe('success');
    expect(r.jobs['d']!.result).toBe('skipped');
  });

  it('drops an output that contains a secret, and hides ::add-mask:: lines', async () => {
    const r = await run(
      `
on: workflow_dispatch
jobs:
  a:
    runs-on: ubuntu-latest
    outputs:
      leaked: \${{ steps.s.outputs.leaked }}
    steps:
      - id: s
        env:
          S: \${{ secrets.MY_SECRET }}
        run: |
          echo "::add-mask::$S"
          echo "leaked=x$S" >> "$GITHUB_OUTPUT"
`,
      {},
      { MY_SECRET: 'canary-harness-secret-1' },
    );
    expect(r.failures()).toBe('');
    expect(r.jobs['a']!.outputs).toEqual({});
    expect(r.text()).not.toContain('canary-harness-secret-1');
  });

  it('a fresh runner has only the image’s tools: a program nobody installed is not found', async () => {
    const r = await run(`
on: workflow_dispatch
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: command -v git && ! command -v osslsigncode
      - run: sudo apt-get update -qq && sudo apt-get install -y --no-install-recommends osslsigncode
      - run: osslsigncode --version
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
      - run: test "$(cat hello.txt)" = hello && test "$(git rev-list --count HEAD)" = 1
`);
    expect(r.failures()).toBe('');
  });

  it('an undeclared dispatch input and an unmodelled action are errors, not silent passes', async () => {
    await expect(
      run('on: workflow_dispatch\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: "true"\n', {
        nope: '1',
      }),
    ).rejects.toThrow(/not declared/);
    const r = await run(
      'on: workflow_dispatch\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: actions/cache@v4\n',
    );
    expect(r.jobs['a']!.result).toBe('failure');
    expect(r.failures()).toMatch(/not modelled/);
  });
});
