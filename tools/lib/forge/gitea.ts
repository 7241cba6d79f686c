/**
 * Gitea / Forgejo (REST API v1, `Authorization: token …`). JSON calls go through fetch with
 * retries; uploads stream the file as multipart/form-data (field `attachment`, accepted by every
 * Gitea and Forgejo version) with an exact Content-Length, so memory stays flat.
 */
import { randomBytes } from 'node:crypto';
import { registerSecret } from '../redact.ts';
import {
  DEFAULT_RETRY,
  DEFAULT_TIMEOUTS,
  forgeError,
  HttpError,
  headersOf,
  type RetryOptions,
  type Timeouts,
  withRetry,
} from './http.ts';
import { downloadHashed, FileBody, sendFile } from './transport.ts';
import type {
  CreateReleaseInput,
  Forge,
  ReleaseFields,
  RemoteAsset,
  RemoteRelease,
  UploadedAsset,
  UploadInput,
} from './types.ts';

export interface GiteaOptions {
  /** Instance URL or API base (https://git.example.com or https://git.example.com/api/v1). */
  apiUrl: string;
  owner: string;
  repo: string;
  token: string;
  retry?: Partial<RetryOptions>;
  timeouts?: Partial<Timeouts> | undefined;
}

interface GiteaAttachment {
  id: number;
  name: string;
  size: number;
  browser_download_url?: string;
}
interface GiteaRelease {
  id: number;
  tag_name: string;
  name?: string;
  body?: string;
  draft?: boolean;
  prerelease?: boolean;
  html_url?: string;
  assets?: GiteaAttachment[];
}

/** https://host[/sub] or https://host[/sub]/api/v1 → https://host[/sub]/api/v1 */
export function giteaApiBase(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return /\/api\/v1$/.test(trimmed) ? trimmed : `${trimmed}/api/v1`;
}

function toAsset(a: GiteaAttachment): RemoteAsset {
  return { id: a.id, name: a.name, size: a.size, downloadUrl: a.browser_download_url };
}

function toRelease(r: GiteaRelease): RemoteRelease {
  return {
    id: r.id,
    tag: r.tag_name,
    title: r.name ?? '',
    body: r.body ?? '',
    draft: Boolean(r.draft),
    prerelease: Boolean(r.prerelease),
    url: r.html_url ?? '',
    assets: (r.assets ?? []).map(toAsset),
  };
}

export class GiteaForge implements Forge {
  readonly kind = 'gitea' as const;
  readonly description: string;
  readonly #base: string;
  readonly #repoPath: string;
  readonly #token: string;
  readonly #retry: RetryOptions;
  readonly #timeouts: Timeouts;
  readonly #slug: string;

  constructor(options: GiteaOptions) {
    registerSecret(options.token);
    this.#base = giteaApiBase(options.apiUrl);
    this.#slug = `${options.owner}/${options.repo}`;
    this.#repoPath = `/repos/${encodeURIComponent(options.owner)}/${encodeURIComponent(options.repo)}`;
    this.#token = options.token;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.description = `gitea ${this.#base} ${this.#slug}`;
  }

  /**
   * The token goes only to the API's own origin: an attachment's `browser_download_url` is data
   * from the server and may name any host (a CDN, or one an attacker chose).
   */
  #auth(url: string): Record<string, string> {
    return new URL(url).origin === new URL(this.#base).origin
      ? { authorization: `token ${this.#token}` }
      : {};
  }

  #transfer(signal: AbortSignal) {
    return { signal, connectTimeoutMs: this.#timeouts.connectMs, idleTimeoutMs: this.#timeouts.idleMs };
  }

  /** One API call (retried), its whole answer read inside the attempt so a stalled body is retried too. */
  async #send(
    operation: string,
    method: string,
    path: string,
    init: { json?: unknown; file?: FileBody; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; text: string }> {
    const url = `${this.#base}${path}`;
    try {
      return await withRetry(
        operation,
        { ...this.#retry, deadlineMs: this.#timeouts.deadlineMs },
        async (_attempt, signal) => {
          const headers: Record<string, string> = {
            ...this.#auth(url),
            accept: 'application/json',
            ...init.headers,
          };
          let body: FileBody | Buffer | undefined = init.file;
          if (init.json !== undefined) {
            headers['content-type'] = 'application/json';
            body = Buffer.from(JSON.stringify(init.json));
          }
          let res: Response;
          let text: string;
          try {
            res = await sendFile(url, { method, headers, body, ...this.#transfer(signal) });
            text = await res.text();
          } catch (e) {
            throw new HttpError(operation, 0, {}, '', e);
          }
          if (!res.ok) throw new HttpError(operation, res.status, headersOf(res), text);
          return { status: res.status, text };
        },
      );
    } catch (e) {
      throw forgeError('gitea', this.#slug, e);
    }
  }

  #parse<T>(operation: string, text: string): T {
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw forgeError('gitea', this.#slug, new HttpError(operation, 200, {}, `not JSON: ${text}`, e));
    }
  }

  async #json<T>(operation: string, method: string, path: string, json?: unknown): Promise<T> {
    const res = await this.#send(operation, method, path, json === undefined ? {} : { json });
    if (res.status === 204 || !res.text) return undefined as T;
    return this.#parse<T>(operation, res.text);
  }

  async findReleases(tag: string): Promise<RemoteRelease[]> {
    const out: RemoteRelease[] = [];
    for (let page = 1; ; page++) {
      const list = await this.#json<GiteaRelease[]>(
        'list releases',
        'GET',
        `${this.#repoPath}/releases?page=${page}&limit=50`,
      );
      for (const r of list) if (r.tag_name === tag) out.push(toRelease(r));
      if (list.length < 50) break;
    }
    return out.sort((a, b) => a.id - b.id);
  }

  async createRelease(input: CreateReleaseInput): Promise<RemoteRelease> {
    const body: Record<string, unknown> = {
      tag_name: input.tag,
      name: input.title,
      body: input.body,
      draft: input.draft,
      prerelease: input.prerelease,
    };
    if (input.target) body['target_commitish'] = input.target;
    return toRelease(
      await this.#json<GiteaRelease>('create release', 'POST', `${this.#repoPath}/releases`, body),
    );
  }

  async updateRelease(release: RemoteRelease, fields: Partial<ReleaseFields>): Promise<RemoteRelease> {
    const body: Record<string, unknown> = {};
    if (fields.title !== undefined) body['name'] = fields.title;
    if (fields.body !== undefined) body['body'] = fields.body;
    if (fields.draft !== undefined) body['draft'] = fields.draft;
    if (fields.prerelease !== undefined) body['prerelease'] = fields.prerelease;
    return toRelease(
      await this.#json<GiteaRelease>(
        'edit release',
        'PATCH',
        `${this.#repoPath}/releases/${release.id}`,
        body,
      ),
    );
  }

  async deleteRelease(release: RemoteRelease): Promise<void> {
    await this.#send('delete release', 'DELETE', `${this.#repoPath}/releases/${release.id}`);
  }

  async listAssets(release: RemoteRelease): Promise<RemoteAsset[]> {
    const list = await this.#json<GiteaAttachment[]>(
      'list assets',
      'GET',
      `${this.#repoPath}/releases/${release.id}/assets`,
    );
    return list.map(toAsset);
  }

  async uploadAsset(release: RemoteRelease, input: UploadInput): Promise<UploadedAsset> {
    const boundary = `signet-${randomBytes(12).toString('hex')}`;
    const safeName = input.name.replace(/["\\\r\n]/g, '_');
    const pre = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="${safeName}"\r\nContent-Type: ${input.contentType}\r\n\r\n`,
    );
    const post = Buffer.from(`\r\n--${boundary}--\r\n`);
    const file = new FileBody(input.path, input.size, pre, post);
    const res = await this.#send(
      `upload ${input.name}`,
      'POST',
      `${this.#repoPath}/releases/${release.id}/assets?name=${encodeURIComponent(input.name)}`,
      {
        file,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      },
    );
    const asset = toAsset(this.#parse<GiteaAttachment>(`upload ${input.name}`, res.text));
    if (!file.sentSha256)
      throw forgeError(
        'gitea',
        this.#slug,
        new Error(`upload of ${input.name} ended before the whole file was sent`),
      );
    return { ...asset, sentSha256: file.sentSha256 };
  }

  async deleteAsset(release: RemoteRelease, asset: RemoteAsset): Promise<void> {
    await this.#send(
      `delete asset ${asset.name}`,
      'DELETE',
      `${this.#repoPath}/releases/${release.id}/assets/${asset.id}`,
    );
  }

  async renameAsset(release: RemoteRelease, asset: RemoteAsset, name: string): Promise<RemoteAsset> {
    return toAsset(
      await this.#json<GiteaAttachment>(
        `rename asset ${asset.name}`,
        'PATCH',
        `${this.#repoPath}/releases/${release.id}/assets/${asset.id}`,
        { name },
      ),
    );
  }

  async readBackSha256(release: RemoteRelease, asset: RemoteAsset): Promise<string> {
    return (await this.#fetchAsset(release, asset)).sha256;
  }

  async download(
    release: RemoteRelease,
    asset: RemoteAsset,
    dest: string,
  ): Promise<{ sha256: string; size: number }> {
    return this.#fetchAsset(release, asset, dest);
  }

  async #fetchAsset(
    release: RemoteRelease,
    asset: RemoteAsset,
    dest?: string,
  ): Promise<{ sha256: string; size: number }> {
    const url = asset.downloadUrl;
    if (!url)
      throw forgeError(
        'gitea',
        this.#slug,
        new Error(`asset ${asset.name} of release ${release.tag} has no download URL`),
      );
    const operation = `download ${asset.name}`;
    try {
      return await withRetry(
        operation,
        { ...this.#retry, deadlineMs: this.#timeouts.deadlineMs },
        async (_a, signal) => {
          let r: Awaited<ReturnType<typeof downloadHashed>>;
          try {
            r = await downloadHashed(
              url,
              { ...this.#auth(url), accept: 'application/octet-stream' },
              dest,
              this.#transfer(signal),
            );
          } catch (e) {
            throw new HttpError(operation, 0, {}, '', e);
          }
          if (r.sha256 === undefined) throw new HttpError(operation, r.status, r.headers, r.text ?? '');
          return { sha256: r.sha256, size: r.size! };
        },
      );
    } catch (e) {
      throw forgeError('gitea', this.#slug, e);
    }
  }
}
