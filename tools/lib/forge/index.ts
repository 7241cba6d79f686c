/**
 * Choosing and opening a forge: `dir:PATH`, `github`, `gitea` or `auto` (Actions environment
 * variables — GitHub's, Gitea act_runner's GITEA_ACTIONS, Forgejo's FORGEJO_ACTIONS — then the
 * configured API URL or the git remote, probing `/api/v1/version` to tell Gitea from GitHub).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { SignetError } from '../errors.ts';
import { parseSecretRef, resolveSecret, type SecretRef } from '../secrets.ts';
import type { PublishConfig } from './config.ts';
import { DirForge } from './dir.ts';
import { GiteaForge, giteaApiBase } from './gitea.ts';
import { GitHubForge } from './github.ts';
import type { RetryOptions, Timeouts } from './http.ts';
import type { Forge } from './types.ts';

export type { Forge, RemoteAsset, RemoteRelease } from './types.ts';

export type ForgeTarget =
  | { kind: 'dir'; path: string }
  | { kind: 'github' | 'gitea'; apiUrl: string; owner: string; repo: string; token: SecretRef };

export interface ResolveTargetInput {
  /** `dir:PATH`, `github`, `gitea` or `auto` (CLI --to / action input `to`). */
  to?: string | undefined;
  repository?: string | undefined;
  apiUrl?: string | undefined;
  /** env:NAME or file:PATH */
  token?: string | undefined;
  config?: Partial<PublishConfig> | undefined;
  cwd?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Probe used for auto-detection (tests inject one); default GETs `<url>/api/v1/version`. */
  probeGitea?: ((apiBase: string) => Promise<boolean>) | undefined;
}

export async function probeGitea(apiBase: string): Promise<boolean> {
  try {
    const res = await fetch(`${giteaApiBase(apiBase)}/version`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return false;
    const data = (await res.json()) as { version?: unknown };
    return typeof data.version === 'string';
  } catch {
    return false;
  }
}

/** owner/repo and host from a git remote URL (https, ssh, scp-like). */
export function parseRemote(
  url: string,
): { host: string; scheme: string; owner: string; repo: string } | undefined {
  const m =
    /^(https?):\/\/(?:[^@/]+@)?([^/]+)\/(?:(.+)\/)?([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url) ??
    /^ssh:\/\/(?:[^@/]+@)?([^/:]+)(?::\d+)?\/(?:(.+)\/)?([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url);
  if (m?.[0].startsWith('http'))
    return { scheme: m[1]!, host: m[2]! + (m[3] ? `/${m[3]}` : ''), owner: m[4]!, repo: m[5]! };
  if (m) return { scheme: 'https', host: m[1]!, owner: m[3]!, repo: m[4]! };
  const scp = /^(?:[^@]+@)?([^:/]+):([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url);
  if (scp) return { scheme: 'https', host: scp[1]!, owner: scp[2]!, repo: scp[3]! };
  return undefined;
}

function gitRemote(cwd: string): string | undefined {
  try {
    return execFileSync('git', ['remote', 'get-url', 'origin'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

function splitRepo(slug: string): { owner: string; repo: string } {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(slug);
  if (!m)
    throw new SignetError('E_INPUT_INVALID', `repository must be owner/name, got ${JSON.stringify(slug)}`);
  return { owner: m[1]!, repo: m[2]! };
}

export async function resolveForgeTarget(input: ResolveTargetInput): Promise<ForgeTarget> {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  const config = input.config ?? {};
  const to = input.to ?? config.forge ?? 'auto';
  if (to.startsWith('dir:')) {
    const path = to.slice(4);
    if (!path) throw new SignetError('E_INPUT_INVALID', 'dir: needs a folder, e.g. dir:./release');
    return { kind: 'dir', path: resolve(cwd, path) };
  }
  if (to === 'dir') throw new SignetError('E_INPUT_INVALID', 'dir needs a folder: --to dir:./release');
  if (!['auto', 'github', 'gitea'].includes(to))
    throw new SignetError(
      'E_INPUT_INVALID',
      `unknown publish target ${JSON.stringify(to)}: use dir:PATH, github, gitea or auto`,
    );

  const inGitea = env['GITEA_ACTIONS'] === 'true' || env['FORGEJO_ACTIONS'] === 'true';
  const inGitHub = env['GITHUB_ACTIONS'] === 'true' && !inGitea;
  const remote = parseRemote(gitRemote(cwd) ?? '');
  const slug =
    input.repository ??
    config.repository ??
    env['GITHUB_REPOSITORY'] ??
    (remote ? `${remote.owner}/${remote.repo}` : undefined);
  if (!slug)
    throw new SignetError('E_INPUT_INVALID', 'cannot tell which repository to publish to', {
      hint: 'Pass --repo owner/name, set publish.repository, or run inside a clone with an origin remote.',
    });
  const { owner, repo } = splitRepo(slug);

  let kind = to === 'auto' ? undefined : (to as 'github' | 'gitea');
  let apiUrl = input.apiUrl ?? config.apiUrl;
  if (!kind) {
    if (inGitea) kind = 'gitea';
    else if (inGitHub) kind = 'github';
  }
  if (!apiUrl) {
    if (kind === 'gitea' || inGitea) apiUrl = env['GITHUB_SERVER_URL'] ?? env['GITEA_SERVER_URL'];
    else if (inGitHub || kind === 'github') apiUrl = env['GITHUB_API_URL'] ?? 'https://api.github.com';
    else if (remote)
      apiUrl = remote.host === 'github.com' ? 'https://api.github.com' : `${remote.scheme}://${remote.host}`;
  }
  if (!kind) {
    if (!apiUrl)
      throw new SignetError('E_INPUT_INVALID', 'cannot tell which forge to publish to', {
        hint: 'Pass --to github|gitea|dir:PATH, or set publish.forge / publish.apiUrl.',
      });
    const host = new URL(apiUrl).host;
    if (host === 'api.github.com' || host === 'github.com' || /\/api\/v3\/?$/.test(apiUrl)) kind = 'github';
    else if (await (input.probeGitea ?? probeGitea)(apiUrl)) kind = 'gitea';
    else
      throw new SignetError(
        'E_INPUT_INVALID',
        `${apiUrl} answers neither as GitHub nor as Gitea (no /api/v1/version)`,
        {
          hint: 'Pass --to github (GitHub Enterprise: --api-url https://HOST/api/v3) or --to gitea.',
        },
      );
  }
  if (!apiUrl) {
    if (kind === 'github') apiUrl = 'https://api.github.com';
    else
      throw new SignetError('E_INPUT_INVALID', 'gitea needs its URL', {
        hint: 'Pass --api-url https://git.example.com or set publish.apiUrl.',
      });
  }
  if (kind === 'github' && new URL(apiUrl).host === 'github.com') apiUrl = 'https://api.github.com';

  let token: SecretRef;
  if (input.token) token = parseSecretRef(input.token, 'token');
  else {
    const candidates = [
      config.tokenEnv ?? 'SIGNET_FORGE_TOKEN',
      kind === 'gitea' ? 'GITEA_TOKEN' : 'GITHUB_TOKEN',
      'GITHUB_TOKEN',
    ];
    const name = candidates.find((n) => env[n]) ?? candidates[0]!;
    token = `env:${name}`;
  }
  return { kind, apiUrl, owner, repo, token };
}

export interface OpenForgeOptions {
  env?: NodeJS.ProcessEnv | undefined;
  retry?: Partial<RetryOptions> | undefined;
  /** publish.timeouts of the config. */
  timeouts?: Partial<Timeouts> | undefined;
}

export function openForge(target: ForgeTarget, options: OpenForgeOptions = {}): Forge {
  if (target.kind === 'dir') return new DirForge(target.path);
  const token = resolveSecret(target.token, 'token', options.env ?? process.env);
  const common = {
    owner: target.owner,
    repo: target.repo,
    token,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  };
  return target.kind === 'github'
    ? new GitHubForge({ apiUrl: target.apiUrl, ...common })
    : new GiteaForge({ apiUrl: target.apiUrl, ...common });
}
