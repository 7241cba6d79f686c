/**
 * Links in release notes. The web URL of the repository comes from the config or from the git
 * remote (https, ssh `git@host:owner/repo.git`, `ssh://git@host:port/owner/repo.git`), with any
 * credentials dropped. GitHub and Gitea share the route shapes for commits, compares, tags and
 * issues; they differ in host detection (github.com / *.ghe.com vs anything else) and in where
 * release pages live, so each has its own format object.
 */
export type ForgeKind = 'github' | 'gitea';

export interface LinkFormat {
  kind: ForgeKind;
  commit(repo: string, sha: string): string;
  compare(repo: string, from: string, to: string): string;
  tag(repo: string, tag: string): string;
  issue(repo: string, n: string): string;
}

const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');

export const LINK_FORMATS: Record<ForgeKind, LinkFormat> = {
  github: {
    kind: 'github',
    commit: (r, sha) => `${r}/commit/${sha}`,
    compare: (r, a, b) => `${r}/compare/${enc(a)}...${enc(b)}`,
    tag: (r, t) => `${r}/releases/tag/${enc(t)}`,
    issue: (r, n) => `${r}/issues/${n}`,
  },
  gitea: {
    kind: 'gitea',
    commit: (r, sha) => `${r}/commit/${sha}`,
    compare: (r, a, b) => `${r}/compare/${enc(a)}...${enc(b)}`,
    tag: (r, t) => `${r}/src/tag/${enc(t)}`,
    issue: (r, n) => `${r}/issues/${n}`,
  },
};

export interface RepoLink {
  /** https://host/owner/repo (no trailing slash, no .git, no credentials). */
  url: string;
  host: string;
  kind: ForgeKind;
}

/** Web URL of a git remote URL, or undefined for local paths and unknown forms. */
export function webUrlOfRemote(remote: string): { url: string; host: string } | undefined {
  const r = remote.trim();
  let host: string;
  let path: string;
  let scheme = 'https';
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(.+)$/.exec(r);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(r)) {
    let u: URL;
    try {
      u = new URL(r);
    } catch {
      return undefined;
    }
    if (u.protocol === 'file:') return undefined;
    host = u.hostname;
    if (u.protocol === 'http:' && u.port) host = `${u.hostname}:${u.port}`;
    else if (u.protocol === 'https:' && u.port) host = `${u.hostname}:${u.port}`;
    if (u.protocol === 'http:') scheme = 'http';
    path = decodeURIComponent(u.pathname);
  } else if (scp && !/^[A-Za-z]$/.test(scp[1]!)) {
    host = scp[1]!;
    path = scp[2]!;
  } else return undefined;
  path = path
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
  if (!host || !path.includes('/')) return undefined;
  return { url: `${scheme}://${host}/${path}`, host: host.replace(/:\d+$/, '') };
}

export function detectKind(host: string): ForgeKind {
  return host === 'github.com' || host.endsWith('.ghe.com') || host.startsWith('github.')
    ? 'github'
    : 'gitea';
}

/** Config wins; otherwise the remote decides. */
export function resolveRepoLink(
  config: { repoUrl?: string | undefined; host?: ForgeKind | undefined },
  remote: string | undefined,
): RepoLink | undefined {
  if (config.repoUrl) {
    const url = config.repoUrl.replace(/\/+$/, '').replace(/\.git$/, '');
    const host = new URL(url).hostname;
    return { url, host, kind: config.host ?? detectKind(host) };
  }
  const w = remote ? webUrlOfRemote(remote) : undefined;
  if (!w) return undefined;
  return { url: w.url, host: w.host, kind: config.host ?? detectKind(w.host) };
}
