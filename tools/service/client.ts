/**
 * A small typed client of the Signet service for Node servers (fetch, no dependency):
 *
 *   import { SignetClient } from 'signet-release/client';
 *   const signet = new SignetClient({ baseUrl: 'https://signet.internal:8750', token: process.env.SIGNET_TOKEN! });
 *   const site = await signet.putSite('ACME-HQ', { serverUrl, keyVersion: 1, enrollmentKey });
 *   const res = await signet.installer('ACME-HQ', 'msi');   // a fetch Response: stream res.body
 *
 * Every failure is thrown as a SignetError carrying the server's code, message and hint (its
 * `details.status` is the HTTP status).
 */
import type {
  BuildView,
  Health,
  LinkView,
  ReleaseView,
  SiteInput,
  SiteView,
  TokenStatus,
} from '../lib/app/service/types.ts';
import { type ErrorCode, SignetError } from '../lib/errors.ts';
import type { Channel, OutputKind, Page } from '../lib/service-store/types.ts';

export type { BuildView, Health, LinkView, ReleaseView, SiteInput, SiteView, TokenStatus };

export interface AuditEntryView {
  id?: number;
  at: string;
  actorKind: 'token' | 'link' | 'anonymous';
  actor: string;
  ip: string;
  action: string;
  siteCode: string | null;
  result: string;
  detail: string | null;
}

export interface DeliveryView {
  id: string;
  event: string;
  url: string;
  attempts: number;
  state: 'pending' | 'delivered' | 'failed';
  lastStatus: number | null;
  lastError: string | null;
  nextAt: string;
  createdAt: string;
  deliveredAt: string | null;
}

export interface SignetClientOptions {
  baseUrl: string;
  token: string;
  /** Another fetch (tests, a proxy agent); defaults to the global one. */
  fetch?: typeof fetch;
  /** Per-request timeout (default 5 minutes: a cold installer build takes a while). */
  timeoutMs?: number;
}

type BodyInit = NonNullable<RequestInit['body']>;
type Body = BodyInit | NodeJS.ReadableStream;

export class SignetClient {
  readonly #base: string;
  readonly #token: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;

  constructor(o: SignetClientOptions) {
    this.#base = o.baseUrl.replace(/\/+$/, '');
    this.#token = o.token;
    this.#fetch = o.fetch ?? fetch;
    this.#timeoutMs = o.timeoutMs ?? 300_000;
  }

  /** One request; non-2xx/304 answers become SignetErrors with the server's code. */
  async request(
    method: string,
    path: string,
    o: { json?: unknown; body?: Body; headers?: Record<string, string>; auth?: boolean } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.auth !== false) headers['authorization'] = `Bearer ${this.#token}`;
    let body: BodyInit | undefined;
    if (o.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(o.json);
    } else if (o.body !== undefined) {
      headers['content-type'] ??= 'application/octet-stream';
      body = o.body as BodyInit;
    }
    const res = await this.#fetch(`${this.#base}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(o.body !== undefined && o.json === undefined ? { duplex: 'half' } : {}),
      signal: AbortSignal.timeout(this.#timeoutMs),
    } as RequestInit);
    if (res.ok || res.status === 304) return res;
    throw await errorOf(res);
  }

  async #json<T>(method: string, path: string, json?: unknown): Promise<T> {
    const res = await this.request(method, path, json === undefined ? {} : { json });
    return (await res.json()) as T;
  }

  token(): Promise<TokenStatus> {
    return this.#json('GET', '/v1/token');
  }

  /** Uploads a signed agent; the service verifies it before it counts. */
  async uploadRelease(version: string, channel: Channel, agent: Body): Promise<ReleaseView> {
    const q = new URLSearchParams({ version, channel });
    return (await this.request('POST', `/v1/releases?${q}`, { body: agent })).json() as Promise<ReleaseView>;
  }
  async releases(): Promise<ReleaseView[]> {
    return (await this.#json<{ items: ReleaseView[] }>('GET', '/v1/releases')).items;
  }

  putSite(
    siteCode: string,
    input: SiteInput,
  ): Promise<{ site: SiteView; created: boolean; rotated: boolean }> {
    return this.#json('PUT', `/v1/sites/${enc(siteCode)}`, input);
  }
  site(siteCode: string): Promise<SiteView> {
    return this.#json('GET', `/v1/sites/${enc(siteCode)}`);
  }
  sites(o: { cursor?: string; limit?: number } = {}): Promise<Page<SiteView>> {
    const q = new URLSearchParams();
    if (o.cursor) q.set('cursor', o.cursor);
    if (o.limit) q.set('limit', String(o.limit));
    return this.#json('GET', `/v1/sites${q.size ? `?${q}` : ''}`);
  }
  /** Every site, page by page. */
  async *allSites(limit = 500): AsyncGenerator<SiteView> {
    let cursor: string | undefined;
    do {
      const p = await this.sites({ limit, ...(cursor ? { cursor } : {}) });
      yield* p.items;
      cursor = p.next ?? undefined;
    } while (cursor);
  }
  async deleteSite(siteCode: string): Promise<void> {
    await this.request('DELETE', `/v1/sites/${enc(siteCode)}`);
  }

  /**
   * The installer as a fetch Response (stream `res.body`; `res.headers.get('etag')` is its
   * SHA-256). `ifNoneMatch` → a 304 Response when unchanged; `range` → a 206.
   */
  installer(
    siteCode: string,
    kind: OutputKind,
    o: { channel?: Channel; version?: string; ifNoneMatch?: string; range?: string; head?: boolean } = {},
  ): Promise<Response> {
    const q = new URLSearchParams();
    if (o.channel) q.set('channel', o.channel);
    if (o.version) q.set('version', o.version);
    const headers: Record<string, string> = {};
    if (o.ifNoneMatch) headers['if-none-match'] = o.ifNoneMatch;
    if (o.range) headers['range'] = o.range;
    return this.request(
      o.head ? 'HEAD' : 'GET',
      `/v1/sites/${enc(siteCode)}/installers/${kind}${q.size ? `?${q}` : ''}`,
      {
        headers,
      },
    );
  }

  /** An unauthenticated download link; `expiresIn` is seconds or "1h", "7d", … */
  createLink(
    siteCode: string,
    input: { kind: OutputKind; expiresIn: string | number; channel?: Channel; version?: string },
  ): Promise<LinkView> {
    return this.#json('POST', `/v1/sites/${enc(siteCode)}/links`, input);
  }

  startBuild(input: { sites: string[] | 'all'; channel?: Channel; version?: string }): Promise<BuildView> {
    return this.#json('POST', '/v1/builds', input);
  }
  build(id: string): Promise<BuildView> {
    return this.#json('GET', `/v1/builds/${enc(id)}`);
  }

  /** Signs a PE or MSI; the Response body is the signed file (x-signet-sha256 its hash). */
  sign(fileName: string, file: Body, o: { nest?: boolean } = {}): Promise<Response> {
    return this.request('POST', '/v1/sign', {
      body: file,
      headers: {
        'x-signet-file-name': encodeURIComponent(fileName),
        ...(o.nest ? { 'x-signet-nest': '1' } : {}),
      },
    });
  }

  audit(o: { cursor?: string; limit?: number } = {}): Promise<Page<AuditEntryView>> {
    const q = new URLSearchParams();
    if (o.cursor) q.set('cursor', o.cursor);
    if (o.limit) q.set('limit', String(o.limit));
    return this.#json('GET', `/v1/audit${q.size ? `?${q}` : ''}`);
  }
  async deliveries(limit?: number): Promise<DeliveryView[]> {
    return (
      await this.#json<{ items: DeliveryView[] }>(
        'GET',
        `/v1/webhooks/deliveries${limit ? `?limit=${limit}` : ''}`,
      )
    ).items;
  }

  /** Readiness (no token needed); resolves with the checks whether ready or not. */
  async ready(): Promise<Health> {
    const res = await this.#fetch(`${this.#base}/readyz`, { signal: AbortSignal.timeout(this.#timeoutMs) });
    if (res.status !== 200 && res.status !== 503) throw await errorOf(res);
    return (await res.json()) as Health;
  }
}

const enc = encodeURIComponent;

async function errorOf(res: Response): Promise<SignetError> {
  let e: { code?: string; message?: string; hint?: string; details?: Record<string, unknown> } = {};
  try {
    e = ((await res.json()) as { error?: typeof e }).error ?? {};
  } catch {
    // not JSON (a proxy's page): the status says it
  }
  const code = (e.code && /^E_[A-Z0-9_]+$/.test(e.code) ? e.code : 'E_INTERNAL') as ErrorCode;
  const known = (await import('../lib/errors.ts')).ERRORS as Record<string, unknown>;
  return new SignetError(
    (code in known ? code : 'E_INTERNAL') as ErrorCode,
    e.message ?? `the service answered HTTP ${res.status}`,
    {
      ...(e.hint ? { hint: e.hint } : {}),
      details: { status: res.status, ...(code in known ? {} : { code }), ...(e.details ?? {}) },
    },
  );
}
