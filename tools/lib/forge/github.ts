/**
 * GitHub and GitHub Enterprise through Octokit (`@actions/github`'s client, proxy-aware, the same
 * inside Actions and outside). Uploads stream the file to the release's `upload_url` with an exact
 * Content-Length; read-back uses the `digest` GitHub computes for every asset, or a streamed
 * download when an older asset has none.
 */
import { registerSecret } from '../redact.ts';
import {
  DEFAULT_RETRY,
  DEFAULT_TIMEOUTS,
  forgeError,
  HttpError,
  isNetworkError,
  type RetryOptions,
  type Timeouts,
  withRetry,
} from './http.ts';
import { downloadHashed, FileBody, withFileBodies, withTimeouts } from './transport.ts';
import type {
  CreateReleaseInput,
  Forge,
  ReleaseFields,
  RemoteAsset,
  RemoteRelease,
  UploadedAsset,
  UploadInput,
} from './types.ts';

export interface GitHubOptions {
  /** API base: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server. */
  apiUrl?: string | undefined;
  owner: string;
  repo: string;
  token: string;
  retry?: Partial<RetryOptions>;
  timeouts?: Partial<Timeouts> | undefined;
}

interface GhAsset {
  id: number;
  name: string;
  size: number;
  digest?: string | null;
  browser_download_url?: string;
}
interface GhRelease {
  id: number;
  tag_name: string;
  name: string | null;
  body?: string | null;
  draft: boolean;
  prerelease: boolean;
  html_url: string;
  upload_url: string;
  immutable?: boolean;
  assets: GhAsset[];
}

type Request = (
  route: string | Record<string, unknown>,
  params?: Record<string, unknown>,
) => Promise<{ status: number; data: unknown; headers: Record<string, string | number | undefined> }>;

function digestHex(digest: string | null | undefined): string | undefined {
  const m = /^sha256:([0-9a-f]{64})$/i.exec(digest ?? '');
  return m ? m[1]!.toLowerCase() : undefined;
}

function toAsset(a: GhAsset): RemoteAsset {
  return {
    id: a.id,
    name: a.name,
    size: a.size,
    sha256: digestHex(a.digest),
    downloadUrl: a.browser_download_url,
  };
}

function toRelease(r: GhRelease): RemoteRelease {
  return {
    id: r.id,
    tag: r.tag_name,
    title: r.name ?? '',
    body: r.body ?? '',
    draft: r.draft,
    prerelease: r.prerelease,
    url: r.html_url,
    assets: (r.assets ?? []).map(toAsset),
    uploadUrl: r.upload_url,
    immutable: Boolean(r.immutable),
  };
}

/** Turns Octokit's RequestError into our HttpError so retries and coded errors work the same. */
function toHttpError(operation: string, e: unknown): unknown {
  const err = e as {
    status?: number;
    response?: { headers?: Record<string, unknown>; data?: unknown };
    cause?: unknown;
  };
  if (typeof err?.status !== 'number') return isNetworkError(e) ? new HttpError(operation, 0, {}, '', e) : e;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(err.response?.headers ?? {}))
    if (v !== undefined) headers[k.toLowerCase()] = String(v);
  // Octokit reports transport failures as status 500 with the cause attached.
  if (err.status === 500 && !err.response && isNetworkError(err.cause ?? e))
    return new HttpError(operation, 0, {}, '', e);
  const data = err.response?.data;
  const body = typeof data === 'string' ? data : data ? JSON.stringify(data) : '';
  return new HttpError(operation, err.status, headers, body, e);
}

export class GitHubForge implements Forge {
  readonly kind = 'github' as const;
  readonly description: string;
  readonly #owner: string;
  readonly #repo: string;
  readonly #retry: RetryOptions;
  readonly #timeouts: Timeouts;
  readonly #apiUrl: string;
  readonly #token: string;
  #request: Request | undefined;
  /** Octokit's `request` options; given again with each call's signal (Octokit replaces, not merges, them). */
  #requestOptions: Record<string, unknown> = {};

  constructor(options: GitHubOptions) {
    registerSecret(options.token);
    this.#owner = options.owner;
    this.#repo = options.repo;
    this.#token = options.token;
    this.#apiUrl = (options.apiUrl ?? 'https://api.github.com').replace(/\/+$/, '');
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.description = `github ${this.#apiUrl} ${options.owner}/${options.repo}`;
  }

  async #client(): Promise<Request> {
    if (!this.#request) {
      const { getOctokit } = await import('@actions/github');
      const { defaults } = await import('@actions/github/lib/utils');
      const inner = (defaults.request as { fetch?: typeof fetch } | undefined)?.fetch ?? fetch;
      const limits = { connectTimeoutMs: this.#timeouts.connectMs, idleTimeoutMs: this.#timeouts.idleMs };
      // Proxy-aware fetch of @actions/github with connect/idle limits, plus constant-memory
      // streaming of file bodies.
      this.#requestOptions = {
        ...defaults.request,
        fetch: withFileBodies(withTimeouts(inner, limits), limits),
      };
      const octokit = getOctokit(this.#token, {
        request: this.#requestOptions,
        baseUrl: this.#apiUrl,
        log: { debug() {}, info() {}, warn() {}, error() {} },
      });
      this.#request = octokit.request as unknown as Request;
    }
    return this.#request;
  }

  async #call<T>(
    operation: string,
    route: string | Record<string, unknown>,
    params: Record<string, unknown> = {},
  ): Promise<{ status: number; data: T }> {
    const request = await this.#client();
    try {
      const retry = { ...this.#retry, deadlineMs: this.#timeouts.deadlineMs };
      return await withRetry(operation, retry, async (_a, signal): Promise<{ status: number; data: T }> => {
        try {
          // Spread per attempt: a streamed `data` getter yields a fresh file stream each time.
          const merged = {
            owner: this.#owner,
            repo: this.#repo,
            ...params,
            request: { ...this.#requestOptions, signal },
          };
          const res =
            typeof route === 'string' ? await request(route, merged) : await request({ ...route, ...merged });
          return res as unknown as { status: number; data: T };
        } catch (e) {
          throw toHttpError(operation, e);
        }
      });
    } catch (e) {
      throw forgeError('github', `${this.#owner}/${this.#repo}`, e);
    }
  }

  async findReleases(tag: string): Promise<RemoteRelease[]> {
    // GET /releases/tags/{tag} hides drafts, so list (drafts are visible to a token with write access).
    const out: RemoteRelease[] = [];
    for (let page = 1; ; page++) {
      const { data } = await this.#call<GhRelease[]>('list releases', 'GET /repos/{owner}/{repo}/releases', {
        per_page: 100,
        page,
      });
      for (const r of data) if (r.tag_name === tag) out.push(toRelease(r));
      if (data.length < 100) break;
    }
    return out.sort((a, b) => a.id - b.id);
  }

  async createRelease(input: CreateReleaseInput): Promise<RemoteRelease> {
    const params: Record<string, unknown> = {
      tag_name: input.tag,
      name: input.title,
      body: input.body,
      draft: input.draft,
      prerelease: input.prerelease,
    };
    if (input.target) params['target_commitish'] = input.target;
    const { data } = await this.#call<GhRelease>(
      'create release',
      'POST /repos/{owner}/{repo}/releases',
      params,
    );
    return toRelease(data);
  }

  async updateRelease(release: RemoteRelease, fields: Partial<ReleaseFields>): Promise<RemoteRelease> {
    const params: Record<string, unknown> = { release_id: release.id };
    if (fields.title !== undefined) params['name'] = fields.title;
    if (fields.body !== undefined) params['body'] = fields.body;
    if (fields.draft !== undefined) params['draft'] = fields.draft;
    if (fields.prerelease !== undefined) params['prerelease'] = fields.prerelease;
    const { data } = await this.#call<GhRelease>(
      'update release',
      'PATCH /repos/{owner}/{repo}/releases/{release_id}',
      params,
    );
    return toRelease(data);
  }

  async deleteRelease(release: RemoteRelease): Promise<void> {
    await this.#call('delete release', 'DELETE /repos/{owner}/{repo}/releases/{release_id}', {
      release_id: release.id,
    });
  }

  async listAssets(release: RemoteRelease): Promise<RemoteAsset[]> {
    const out: RemoteAsset[] = [];
    for (let page = 1; ; page++) {
      const { data } = await this.#call<GhAsset[]>(
        'list assets',
        'GET /repos/{owner}/{repo}/releases/{release_id}/assets',
        {
          release_id: release.id,
          per_page: 100,
          page,
        },
      );
      out.push(...data.map(toAsset));
      if (data.length < 100) break;
    }
    return out;
  }

  async uploadAsset(release: RemoteRelease, input: UploadInput): Promise<UploadedAsset> {
    let url = release.uploadUrl;
    if (!url) {
      const { data } = await this.#call<GhRelease>(
        'get release',
        'GET /repos/{owner}/{repo}/releases/{release_id}',
        {
          release_id: release.id,
        },
      );
      url = data.upload_url;
    }
    const body = new FileBody(input.path, input.size);
    const { data } = await this.#call<GhAsset>(
      `upload ${input.name}`,
      {
        method: 'POST',
        url,
      },
      {
        name: input.name,
        headers: { 'content-type': input.contentType, 'content-length': input.size },
        // Streamed from disk through two reused buffers (transport.ts); retries re-read the file.
        data: body,
      },
    );
    if (!body.sentSha256)
      throw forgeError(
        'github',
        `${this.#owner}/${this.#repo}`,
        new Error(`upload of ${input.name} ended before the whole file was sent`),
      );
    return { ...toAsset(data), sentSha256: body.sentSha256 };
  }

  async deleteAsset(_release: RemoteRelease, asset: RemoteAsset): Promise<void> {
    await this.#call(
      `delete asset ${asset.name}`,
      'DELETE /repos/{owner}/{repo}/releases/assets/{asset_id}',
      {
        asset_id: asset.id,
      },
    );
  }

  async renameAsset(_release: RemoteRelease, asset: RemoteAsset, name: string): Promise<RemoteAsset> {
    const { data } = await this.#call<GhAsset>(
      `rename asset ${asset.name}`,
      'PATCH /repos/{owner}/{repo}/releases/assets/{asset_id}',
      {
        asset_id: asset.id,
        name,
      },
    );
    return toAsset(data);
  }

  async readBackSha256(release: RemoteRelease, asset: RemoteAsset): Promise<string> {
    if (asset.sha256) return asset.sha256;
    return (await this.download(release, asset)).sha256;
  }

  async download(
    _release: RemoteRelease,
    asset: RemoteAsset,
    dest?: string,
  ): Promise<{ sha256: string; size: number }> {
    // node:http with backpressure (constant memory); the token is dropped on the redirect to the
    // storage host, as fetch would.
    const operation = `download ${asset.name}`;
    const url = `${this.#apiUrl}/repos/${encodeURIComponent(this.#owner)}/${encodeURIComponent(this.#repo)}/releases/assets/${asset.id}`;
    const headers = {
      authorization: `token ${this.#token}`,
      accept: 'application/octet-stream',
      'user-agent': 'signet',
      'x-github-api-version': '2022-11-28',
    };
    try {
      const retry = { ...this.#retry, deadlineMs: this.#timeouts.deadlineMs };
      return await withRetry(operation, retry, async (_a, signal) => {
        let r: Awaited<ReturnType<typeof downloadHashed>>;
        try {
          r = await downloadHashed(url, headers, dest, {
            signal,
            connectTimeoutMs: this.#timeouts.connectMs,
            idleTimeoutMs: this.#timeouts.idleMs,
          });
        } catch (e) {
          throw new HttpError(operation, 0, {}, '', e);
        }
        if (r.sha256 === undefined) throw new HttpError(operation, r.status, r.headers, r.text ?? '');
        return { sha256: r.sha256, size: r.size! };
      });
    } catch (e) {
      throw forgeError('github', `${this.#owner}/${this.#repo}`, e);
    }
  }
}
