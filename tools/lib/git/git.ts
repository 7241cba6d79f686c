/**
 * Running git: every call goes through the Runner (argv arrays, timeouts, redaction), with an
 * environment that never prompts and never reads the user's pager or colour settings. A huge
 * `git log` is streamed instead (see log.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { SignetError } from '../errors.ts';
import {
  type Runner,
  type RunOptions,
  type RunResult,
  defaultRunner as spawnRunner,
} from '../exec/runner.ts';

/** Environment for every git process: no prompts, no pager, stable messages. */
export const GIT_ENV: Record<string, string> = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_PAGER: 'cat',
  PAGER: 'cat',
  LC_ALL: 'C',
  GIT_OPTIONAL_LOCKS: '0',
};

/** Config flags put before every subcommand: output we parse must not depend on user config. */
export const GIT_BASE_ARGS: readonly string[] = [
  '-c',
  'core.quotepath=off',
  '-c',
  'log.showSignature=false',
  '-c',
  'color.ui=false',
];

export interface GitOptions extends Omit<RunOptions, 'cwd'> {
  runner?: Runner;
}

export async function git(
  cwd: string,
  args: readonly string[],
  options: GitOptions = {},
): Promise<RunResult> {
  const { runner = spawnRunner, env, ...rest } = options;
  return runner.run('git', [...GIT_BASE_ARGS, ...args], {
    timeoutMs: 120_000,
    label: `git ${args[0] ?? ''}`,
    ...rest,
    cwd,
    env: { ...GIT_ENV, ...env },
  });
}

/** stdout of a git command without the final newline. */
export async function gitOut(
  cwd: string,
  args: readonly string[],
  options: GitOptions = {},
): Promise<string> {
  return (await git(cwd, args, options)).stdout.replace(/\n$/, '');
}

export interface HeadInfo {
  /** Full commit id of HEAD. */
  sha: string;
  /** Branch name, or undefined on a detached HEAD. */
  branch: string | undefined;
  /** Full message of HEAD (empty when read with `message: false`). */
  message: string;
}

export interface RepoInfo {
  /** Absolute path of the work tree's top level. */
  root: string;
  shallow: boolean;
  head: HeadInfo;
}

/**
 * Checks that `cwd` is inside a git work tree with at least one commit and returns where HEAD is.
 * One `git rev-parse` plus one `git log -1` (and a symbolic-ref check).
 */
export async function repoInfo(
  cwd: string,
  options: GitOptions & { message?: boolean } = {},
): Promise<RepoInfo> {
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) {
    throw new SignetError('E_NOT_A_GIT_REPO', `not a directory: ${cwd}`, { details: { cwd } });
  }
  const probe = await git(
    cwd,
    ['rev-parse', '--show-toplevel', '--is-shallow-repository', 'HEAD', '--abbrev-ref', 'HEAD'],
    { ...options, allowFailure: true },
  );
  if (probe.exitCode !== 0) {
    if (/not a git repository/i.test(probe.stderr)) {
      throw new SignetError('E_NOT_A_GIT_REPO', `not a git repository: ${cwd}`, { details: { cwd } });
    }
    if (/ambiguous argument 'HEAD'|unknown revision/i.test(probe.stderr)) {
      throw new SignetError('E_INPUT_INVALID', `the repository at ${cwd} has no commits yet`, {
        hint: 'Make a first commit, then run again.',
        details: { cwd },
      });
    }
    throw new SignetError('E_NOT_A_GIT_REPO', `git cannot read ${cwd}: ${probe.stderr.trim()}`, {
      details: { cwd },
    });
  }
  const [root = cwd, shallow, headSha = '', abbrev] = probe.stdout.trim().split('\n');
  let sha = headSha;
  let message = '';
  if (options.message !== false) {
    const log = await git(
      root,
      ['log', '-1', '--no-color', '--encoding=UTF-8', '--format=%H%x00%B'],
      options,
    );
    const nul = log.stdout.indexOf('\0');
    sha = log.stdout.slice(0, nul);
    message = log.stdout.slice(nul + 1).replace(/\n+$/, '');
  }
  return {
    root,
    shallow: shallow === 'true',
    head: { sha, branch: abbrev && abbrev !== 'HEAD' ? abbrev : undefined, message },
  };
}

/** True when tracked files differ from HEAD (index or work tree). Untracked files do not count. */
export async function isDirty(cwd: string, options: GitOptions = {}): Promise<string[]> {
  const out = await gitOut(cwd, ['status', '--porcelain=v1', '-z', '--untracked-files=no'], options);
  return out
    .split('\0')
    .filter(Boolean)
    .map((l) => l.slice(3));
}

/** URL of a remote, or undefined when it does not exist. */
export async function remoteUrl(
  cwd: string,
  remote: string,
  options: GitOptions = {},
): Promise<string | undefined> {
  const r = await git(cwd, ['remote', 'get-url', remote], { ...options, allowFailure: true });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}
