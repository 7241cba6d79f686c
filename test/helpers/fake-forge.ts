/**
 * A fake forge: one local HTTP server that implements the release endpoints of GitHub (REST,
 * uploads on /uploads, downloads by 302 redirect) or Gitea (REST v1, multipart or raw uploads,
 * /attachments downloads). Every request (path and query parameters, JSON bodies, content types)
 * and every response it sends (status and JSON body) is checked against the real specs — GitHub's
 * from @octokit/openapi, Gitea's release subset in test/fixtures/forge — and each mismatch is
 * recorded in `violations`. Uploads stream to disk (hashed on the way), so the server costs the
 * client no memory. Faults can be injected per operation: an HTTP status (with Retry-After), a
 * connection reset before, in the middle of, or after handling a request.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveRef, type Schema, validate, validateParam } from './openapi-validate.ts';

export type Flavor = 'github' | 'gitea';
export type ForgeOp =
  | 'version'
  | 'list-releases'
  | 'create-release'
  | 'get-release'
  | 'update-release'
  | 'delete-release'
  | 'list-assets'
  | 'upload'
  | 'get-asset'
  | 'update-asset'
  | 'delete-asset'
  | 'download';

export type FaultAction =
  | { status: number; retryAfter?: string; body?: unknown }
  | { reset: 'before' | 'mid' | 'after' };

export interface FaultRule {
  op?: ForgeOp;
  method?: string;
  /** Matched against the request path (without query). */
  path?: RegExp;
  /** Only for uploads: match this asset name (query `name`). */
  name?: string | RegExp;
  /** Let this many matching requests through before firing. */
  skip?: number;
  /** How many times to fire (default 1; Infinity = until cleared). */
  times?: number;
  action: FaultAction;
}

interface Asset {
  id: number;
  uuid: string;
  name: string;
  size: number;
  sha256: string;
  contentType: string;
  state: 'uploaded' | 'open';
  file: string;
  createdAt: string;
  updatedAt: string;
}

interface Release {
  id: number;
  tag: string;
  target: string;
  name: string;
  body: string;
  draft: boolean;
  prerelease: boolean;
  createdAt: string;
  publishedAt: string | null;
  /** GitHub immutable releases: a published immutable release refuses asset changes (422). */
  immutable?: boolean;
  assets: Asset[];
}

export interface FakeForgeOptions {
  flavor: Flavor;
  owner?: string;
  repo?: string;
  token?: string;
  /** GitHub: report `digest` on assets (default true; false = older assets, forcing download read-back). */
  digests?: boolean;
  /** Gitea: reject a duplicate asset name with 422 like GitHub does (default false: Gitea allows duplicates). */
  giteaRejectDuplicates?: boolean;
}

export interface RequestRecord {
  method: string;
  path: string;
  op: ForgeOp | 'unknown';
  status: number | 'reset';
  fault: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
let githubSpec: Schema | undefined;
let giteaSpec: Schema | undefined;

function specFor(flavor: Flavor): Schema {
  if (flavor === 'github') {
    githubSpec ??= JSON.parse(
      readFileSync(require.resolve('@octokit/openapi/generated/api.github.com.json'), 'utf8'),
    );
    return githubSpec;
  }
  giteaSpec ??= JSON.parse(
    readFileSync(join(here, '..', 'fixtures', 'forge', 'gitea-release-api.swagger.json'), 'utf8'),
  );
  return giteaSpec;
}

function templateRegex(template: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const re = new RegExp(
    `^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([^}]+)\\?\}/g, (_m, n: string) => {
      names.push(n);
      return '([^/]+)';
    })}$`,
  );
  return { re, names };
}

const USER_GITHUB = {
  login: 'signet-bot',
  id: 1,
  node_id: 'MDQ6VXNlcjE=',
  avatar_url: 'https://avatars.example.invalid/u/1',
  gravatar_id: '',
  url: 'https://api.example.invalid/users/signet-bot',
  html_url: 'https://example.invalid/signet-bot',
  followers_url: 'https://api.example.invalid/users/signet-bot/followers',
  following_url: 'https://api.example.invalid/users/signet-bot/following{/other_user}',
  gists_url: 'https://api.example.invalid/users/signet-bot/gists{/gist_id}',
  starred_url: 'https://api.example.invalid/users/signet-bot/starred{/owner}{/repo}',
  subscriptions_url: 'https://api.example.invalid/users/signet-bot/subscriptions',
  organizations_url: 'https://api.example.invalid/users/signet-bot/orgs',
  repos_url: 'https://api.example.invalid/users/signet-bot/repos',
  events_url: 'https://api.example.invalid/users/signet-bot/events{/privacy}',
  received_events_url: 'https://api.example.invalid/users/signet-bot/received_events',
  type: 'Bot',
  site_admin: false,
};

export class FakeForge {
  readonly flavor: Flavor;
  readonly owner: string;
  readonly repo: string;
  readonly token: string;
  readonly violations: string[] = [];
  readonly requests: RequestRecord[] = [];
  readonly storage: string;
  #server: Server;
  #origin = '';
  #releases: Release[] = [];
  #nextId = 1;
  #faults: { rule: FaultRule; seen: number; fired: number }[] = [];
  #options: FakeForgeOptions;
  #ops: { method: string; re: RegExp; names: string[]; template: string; op: ForgeOp; spec: Schema }[] = [];

  private constructor(options: FakeForgeOptions) {
    this.#options = options;
    this.flavor = options.flavor;
    this.owner = options.owner ?? 'acme';
    this.repo = options.repo ?? 'agent';
    this.token = options.token ?? 'fake-token-0123456789';
    this.storage = mkdtempSync(join(tmpdir(), `fake-${options.flavor}-`));
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((e) => {
        this.violations.push(`internal: ${(e as Error).stack}`);
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    this.#buildRoutes();
  }

  static async start(options: FakeForgeOptions): Promise<FakeForge> {
    const forge = new FakeForge(options);
    await new Promise<void>((r) => forge.#server.listen(0, '127.0.0.1', r));
    forge.#origin = `http://127.0.0.1:${(forge.#server.address() as AddressInfo).port}`;
    return forge;
  }

  /** What a client uses as its API URL: the origin (GitHub, like GHES minus /api/v3) or the Gitea instance URL. */
  get apiUrl(): string {
    return this.#origin;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
    rmSync(this.storage, { recursive: true, force: true });
  }

  addFault(rule: FaultRule): void {
    this.#faults.push({ rule, seen: 0, fired: 0 });
  }

  clearFaults(): void {
    this.#faults = [];
  }

  /** Snapshot for assertions. */
  releases(): {
    id: number;
    tag: string;
    target: string;
    name: string;
    body: string;
    draft: boolean;
    prerelease: boolean;
    assets: { id: number; name: string; size: number; sha256: string; state: string }[];
  }[] {
    return this.#releases.map((r) => ({
      id: r.id,
      tag: r.tag,
      target: r.target,
      name: r.name,
      body: r.body,
      draft: r.draft,
      prerelease: r.prerelease,
      assets: r.assets.map((a) => ({
        id: a.id,
        name: a.name,
        size: a.size,
        sha256: a.sha256,
        state: a.state,
      })),
    }));
  }

  /** Seeds a release directly (e.g. a published one from an earlier run). */
  seedRelease(r: {
    tag: string;
    name?: string;
    body?: string;
    draft?: boolean;
    prerelease?: boolean;
    immutable?: boolean;
  }): number {
    const now = new Date().toISOString();
    const id = this.#nextId++;
    this.#releases.push({
      id,
      tag: r.tag,
      target: 'main',
      name: r.name ?? r.tag,
      body: r.body ?? '',
      draft: r.draft ?? false,
      prerelease: r.prerelease ?? false,
      createdAt: now,
      publishedAt: r.draft ? null : now,
      immutable: Boolean(r.immutable),
      assets: [],
    });
    return id;
  }

  /** Seeds an asset with the given content. */
  seedAsset(releaseId: number, name: string, content: Buffer | string): void {
    const rel = this.#releases.find((r) => r.id === releaseId)!;
    const id = this.#nextId++;
    const file = join(this.storage, String(id));
    const buf = Buffer.from(content);
    require('node:fs').writeFileSync(file, buf);
    const now = new Date().toISOString();
    rel.assets.push({
      id,
      uuid: randomUUID(),
      name,
      size: buf.length,
      sha256: createHash('sha256').update(buf).digest('hex'),
      contentType: 'application/octet-stream',
      state: 'uploaded',
      file,
      createdAt: now,
      updatedAt: now,
    });
  }

  assertClean(): void {
    if (this.violations.length)
      throw new Error(`fake ${this.flavor} saw spec violations:\n${this.violations.join('\n')}`);
  }

  // ---- routing -------------------------------------------------------------------------------

  #buildRoutes(): void {
    const spec = specFor(this.flavor);
    const table: [string, string, ForgeOp][] =
      this.flavor === 'github'
        ? [
            ['get', '/repos/{owner}/{repo}/releases', 'list-releases'],
            ['post', '/repos/{owner}/{repo}/releases', 'create-release'],
            ['get', '/repos/{owner}/{repo}/releases/{release_id}', 'get-release'],
            ['patch', '/repos/{owner}/{repo}/releases/{release_id}', 'update-release'],
            ['delete', '/repos/{owner}/{repo}/releases/{release_id}', 'delete-release'],
            ['get', '/repos/{owner}/{repo}/releases/{release_id}/assets', 'list-assets'],
            ['post', '/repos/{owner}/{repo}/releases/{release_id}/assets', 'upload'],
            ['get', '/repos/{owner}/{repo}/releases/assets/{asset_id}', 'get-asset'],
            ['patch', '/repos/{owner}/{repo}/releases/assets/{asset_id}', 'update-asset'],
            ['delete', '/repos/{owner}/{repo}/releases/assets/{asset_id}', 'delete-asset'],
          ]
        : [
            ['get', '/version', 'version'],
            ['get', '/repos/{owner}/{repo}/releases', 'list-releases'],
            ['post', '/repos/{owner}/{repo}/releases', 'create-release'],
            ['get', '/repos/{owner}/{repo}/releases/{id}', 'get-release'],
            ['patch', '/repos/{owner}/{repo}/releases/{id}', 'update-release'],
            ['delete', '/repos/{owner}/{repo}/releases/{id}', 'delete-release'],
            ['get', '/repos/{owner}/{repo}/releases/{id}/assets', 'list-assets'],
            ['post', '/repos/{owner}/{repo}/releases/{id}/assets', 'upload'],
            ['get', '/repos/{owner}/{repo}/releases/{id}/assets/{attachment_id}', 'get-asset'],
            ['patch', '/repos/{owner}/{repo}/releases/{id}/assets/{attachment_id}', 'update-asset'],
            ['delete', '/repos/{owner}/{repo}/releases/{id}/assets/{attachment_id}', 'delete-asset'],
          ];
    for (const [method, template, op] of table) {
      const opSpec = spec.paths[template]?.[method];
      if (!opSpec) throw new Error(`spec has no ${method.toUpperCase()} ${template}`);
      this.#ops.push({
        method: method.toUpperCase(),
        ...templateRegex(template),
        template,
        op,
        spec: opSpec,
      });
    }
  }

  #route(
    method: string,
    path: string,
  ): { op: ForgeOp; params: Record<string, string>; spec: Schema; template: string } | undefined {
    let apiPath: string | undefined;
    if (this.flavor === 'github')
      apiPath = path.startsWith('/uploads/') ? path.slice('/uploads'.length) : path;
    else if (path.startsWith('/api/v1/')) apiPath = path.slice('/api/v1'.length);
    if (!apiPath) return undefined;
    if (this.flavor === 'github' && path.startsWith('/uploads/') && method !== 'POST') return undefined;
    if (
      this.flavor === 'github' &&
      !path.startsWith('/uploads/') &&
      method === 'POST' &&
      /\/assets$/.test(apiPath)
    ) {
      this.violations.push(`POST ${path}: GitHub uploads go to the upload_url host, not the API`);
    }
    for (const o of this.#ops) {
      if (o.method !== method) continue;
      const m = o.re.exec(apiPath);
      if (!m) continue;
      const params: Record<string, string> = {};
      o.names.forEach((n, i) => {
        params[n] = decodeURIComponent(m[i + 1]!);
      });
      return { op: o.op, params, spec: o.spec, template: o.template };
    }
    return undefined;
  }

  #validateRequest(
    label: string,
    route: { spec: Schema; params: Record<string, string> },
    url: URL,
    req: IncomingMessage,
  ): void {
    const spec = specFor(this.flavor);
    const declared = new Map<string, Schema>();
    for (const p0 of route.spec.parameters ?? []) {
      const p = p0.$ref ? resolveRef(spec, p0.$ref) : p0;
      declared.set(`${p.in}:${p.name}`, p);
    }
    for (const [name, value] of Object.entries(route.params)) {
      const p = declared.get(`path:${name}`);
      if (!p) this.violations.push(`${label}: undeclared path parameter ${name}`);
      else
        this.violations.push(...validateParam(value, p.schema ?? p, { root: spec }, `${label} path.${name}`));
    }
    for (const [name, value] of url.searchParams) {
      const p = declared.get(`query:${name}`);
      if (!p) this.violations.push(`${label}: undeclared query parameter ${name}`);
      else
        this.violations.push(
          ...validateParam(value, p.schema ?? p, { root: spec }, `${label} query.${name}`),
        );
    }
    for (const p of declared.values())
      if (p.required && p.in === 'query' && !url.searchParams.has(p.name))
        this.violations.push(`${label}: missing required query parameter ${p.name}`);
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const consumes: string[] =
      this.flavor === 'github'
        ? Object.keys(route.spec.requestBody?.content ?? {})
        : (route.spec.consumes ?? []);
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'];
    if (
      hasBody &&
      consumes.length &&
      !consumes.includes(ct) &&
      !(this.flavor === 'github' && route.spec.operationId === 'repos/upload-release-asset')
    )
      this.violations.push(`${label}: content-type ${ct || '(none)'} not in ${consumes.join(', ')}`);
    if (this.flavor === 'github' && route.spec.operationId === 'repos/upload-release-asset') {
      if (!req.headers['content-type']) this.violations.push(`${label}: upload without Content-Type`);
      if (!req.headers['content-length']) this.violations.push(`${label}: upload without Content-Length`);
    }
  }

  #validateJsonBody(label: string, route: { spec: Schema }, body: unknown): void {
    const spec = specFor(this.flavor);
    let schema: Schema;
    if (this.flavor === 'github') schema = route.spec.requestBody?.content?.['application/json']?.schema;
    else schema = (route.spec.parameters ?? []).find((p: Schema) => p.in === 'body')?.schema;
    if (!schema) {
      this.violations.push(`${label}: operation takes no JSON body`);
      return;
    }
    this.violations.push(...validate(body, schema, { root: spec, strictProperties: true }, `${label} body`));
  }

  #validateResponse(label: string, route: { spec: Schema }, status: number, body: unknown): void {
    const spec = specFor(this.flavor);
    let resp = route.spec.responses?.[String(status)];
    if (!resp) {
      this.violations.push(`${label}: status ${status} is not a documented response`);
      return;
    }
    if (resp.$ref) resp = resolveRef(spec, resp.$ref);
    const schema = this.flavor === 'github' ? resp.content?.['application/json']?.schema : resp.schema;
    if (schema && body !== undefined)
      this.violations.push(...validate(body, schema, { root: spec }, `${label} response ${status}`));
    else if (schema && body === undefined) this.violations.push(`${label}: response ${status} needs a body`);
  }

  // ---- handling ------------------------------------------------------------------------------

  #fault(
    op: ForgeOp | 'unknown',
    method: string,
    path: string,
    name: string | null,
  ): FaultAction | undefined {
    for (const f of this.#faults) {
      const r = f.rule;
      if (r.op && r.op !== op) continue;
      if (r.method && r.method !== method) continue;
      if (r.path && !r.path.test(path)) continue;
      if (r.name !== undefined && !(typeof r.name === 'string' ? r.name === name : r.name.test(name ?? '')))
        continue;
      f.seen++;
      if (f.seen <= (r.skip ?? 0)) continue;
      if (f.fired >= (r.times ?? 1)) continue;
      f.fired++;
      return r.action;
    }
    return undefined;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.#origin);
    const method = req.method ?? 'GET';
    const label = `${method} ${url.pathname}`;
    const record: RequestRecord = { method, path: url.pathname, op: 'unknown', status: 0, fault: false };
    this.requests.push(record);

    // downloads (no API spec: browser_download_url / objects host)
    const dl =
      this.flavor === 'github'
        ? /^\/download\/(\d+)\/[^/]+$/.exec(url.pathname)
        : /^\/attachments\/([0-9a-f-]+)$/.exec(url.pathname);
    if (dl && method === 'GET') {
      record.op = 'download';
      const fault = this.#fault('download', method, url.pathname, null);
      if (fault) return this.#applyFault(fault, req, res, record);
      const asset = this.#releases
        .flatMap((r) => r.assets)
        .find((a) => (this.flavor === 'github' ? String(a.id) === dl[1] : a.uuid === dl[1]));
      if (!asset) return this.#send(res, record, 404, undefined);
      if (this.flavor === 'gitea' && !this.#authorized(req)) return this.#send(res, record, 401, undefined);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(asset.size),
      });
      record.status = 200;
      createReadStream(asset.file).pipe(res);
      return;
    }

    const route = this.#route(method, url.pathname);
    if (!route) {
      this.violations.push(`${label}: no such operation in the ${this.flavor} spec`);
      return this.#send(res, record, 404, { message: 'Not Found' });
    }
    record.op = route.op;
    this.#validateRequest(label, route, url, req);
    const fault = this.#fault(route.op, method, url.pathname, url.searchParams.get('name'));
    if (
      fault &&
      !('reset' in fault && fault.reset === 'after') &&
      !('reset' in fault && fault.reset === 'mid' && route.op === 'upload')
    )
      return this.#applyFault(fault, req, res, record);

    if (!this.#authorized(req)) {
      await drain(req);
      return this.#send(res, record, 401, {
        message: 'Bad credentials',
        documentation_url: 'https://docs.github.com/rest',
      });
    }
    const p = route.params;
    if (p['owner'] !== this.owner || p['repo'] !== this.repo) {
      await drain(req);
      return this.#reply(res, record, route, label, 404, this.#notFound());
    }

    if (route.op === 'upload') return this.#upload(req, res, record, route, label, url, fault);

    let json: unknown;
    const raw = await readSmall(req);
    if (raw.length) {
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        this.violations.push(`${label}: body is not JSON`);
      }
      if (json !== undefined) this.#validateJsonBody(label, route, json);
    } else if (method === 'POST' || (method === 'PATCH' && this.flavor === 'gitea')) {
      this.violations.push(`${label}: missing JSON body`);
    }
    const [status, body, headers] = this.#dispatch(
      route.op,
      p,
      url,
      json as Record<string, unknown> | undefined,
      req,
    );
    if (fault && 'reset' in fault) {
      record.status = 'reset';
      record.fault = true;
      req.socket.destroy();
      return;
    }
    if (status === 302) {
      record.status = 302;
      this.#validateResponse(label, route, 302, undefined);
      res.writeHead(302, { location: headers?.['location'] ?? '' }).end();
      return;
    }
    this.#reply(res, record, route, label, status, body);
  }

  #authorized(req: IncomingMessage): boolean {
    const auth = req.headers.authorization ?? '';
    if (this.flavor === 'github') return auth === `token ${this.token}` || auth === `Bearer ${this.token}`;
    return auth === `token ${this.token}`;
  }

  #notFound(): unknown {
    return this.flavor === 'github'
      ? { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' }
      : undefined;
  }

  #applyFault(fault: FaultAction, req: IncomingMessage, res: ServerResponse, record: RequestRecord): void {
    record.fault = true;
    if ('reset' in fault) {
      record.status = 'reset';
      req.socket.destroy();
      return;
    }
    record.status = fault.status;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
    const body = JSON.stringify(fault.body ?? { message: `injected ${fault.status}` });
    // Answer without reading an upload body: like a proxy rejecting early; close the connection.
    headers['connection'] = 'close';
    res.writeHead(fault.status, headers).end(body);
    req.resume();
  }

  #send(res: ServerResponse, record: RequestRecord, status: number, body: unknown): void {
    record.status = status;
    if (body === undefined) res.writeHead(status).end();
    else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  #reply(
    res: ServerResponse,
    record: RequestRecord,
    route: { spec: Schema },
    label: string,
    status: number,
    body: unknown,
  ): void {
    this.#validateResponse(label, route, status, body);
    this.#send(res, record, status, body);
  }

  #releaseById(id: string | undefined): Release | undefined {
    return this.#releases.find((r) => String(r.id) === id);
  }

  #dispatch(
    op: ForgeOp,
    p: Record<string, string>,
    url: URL,
    json: Record<string, unknown> | undefined,
    req: IncomingMessage,
  ): [number, unknown, Record<string, string>?] {
    const gh = this.flavor === 'github';
    const relId = gh ? p['release_id'] : p['id'];
    const now = new Date().toISOString();
    switch (op) {
      case 'version':
        return [200, { version: '1.24.0' }];
      case 'list-releases': {
        const sorted = [...this.#releases].sort((a, b) => b.id - a.id);
        const per = Number(url.searchParams.get(gh ? 'per_page' : 'limit') ?? (gh ? 30 : 30));
        const page = Number(url.searchParams.get('page') ?? 1);
        return [200, sorted.slice((page - 1) * per, page * per).map((r) => this.#releaseJson(r))];
      }
      case 'create-release': {
        const tag = String(json?.['tag_name'] ?? '');
        if (!tag)
          return gh ? [422, validationFailed('Release', 'tag_name', 'missing_field')] : [422, undefined];
        const published = this.#releases.find((r) => r.tag === tag && !r.draft);
        if (published && !json?.['draft'])
          return gh ? [422, validationFailed('Release', 'tag_name', 'already_exists')] : [409, undefined];
        const r: Release = {
          id: this.#nextId++,
          tag,
          target: String(json?.['target_commitish'] ?? 'main'),
          name: String(json?.['name'] ?? tag),
          body: String(json?.['body'] ?? ''),
          draft: Boolean(json?.['draft']),
          prerelease: Boolean(json?.['prerelease']),
          createdAt: now,
          publishedAt: json?.['draft'] ? null : now,
          assets: [],
        };
        this.#releases.push(r);
        return [201, this.#releaseJson(r)];
      }
      case 'get-release': {
        const r = this.#releaseById(relId);
        return r ? [200, this.#releaseJson(r)] : [404, this.#notFound()];
      }
      case 'update-release': {
        const r = this.#releaseById(relId);
        if (!r) return [404, this.#notFound()];
        if (json?.['name'] !== undefined) r.name = String(json['name']);
        if (json?.['body'] !== undefined) r.body = String(json['body']);
        if (json?.['prerelease'] !== undefined) r.prerelease = Boolean(json['prerelease']);
        if (json?.['tag_name'] !== undefined) r.tag = String(json['tag_name']);
        if (json?.['draft'] !== undefined) {
          if (r.draft && !json['draft']) r.publishedAt = now;
          r.draft = Boolean(json['draft']);
        }
        return [200, this.#releaseJson(r)];
      }
      case 'delete-release': {
        const r = this.#releaseById(relId);
        if (!r) return [404, this.#notFound()];
        for (const a of r.assets) rmSync(a.file, { force: true });
        this.#releases = this.#releases.filter((x) => x !== r);
        return [204, undefined];
      }
      case 'list-assets': {
        const r = this.#releaseById(relId);
        if (!r) return [404, this.#notFound()];
        const visible = r.assets.filter((a) => a.state === 'uploaded' || gh);
        if (gh) {
          const per = Number(url.searchParams.get('per_page') ?? 30);
          const page = Number(url.searchParams.get('page') ?? 1);
          return [200, visible.slice((page - 1) * per, page * per).map((a) => this.#assetJson(a))];
        }
        return [200, visible.map((a) => this.#assetJson(a))];
      }
      case 'get-asset':
      case 'update-asset':
      case 'delete-asset': {
        const assetId = gh ? p['asset_id'] : p['attachment_id'];
        const rel = gh
          ? this.#releases.find((r) => r.assets.some((a) => String(a.id) === assetId))
          : this.#releaseById(relId);
        const asset = rel?.assets.find((a) => String(a.id) === assetId);
        if (!rel || !asset) return [404, this.#notFound()];
        if (op === 'get-asset') {
          if (gh && (req.headers.accept ?? '').includes('application/octet-stream'))
            return [
              302,
              undefined,
              { location: `${this.#origin}/download/${asset.id}/${encodeURIComponent(asset.name)}` },
            ];
          return [200, this.#assetJson(asset)];
        }
        if (op === 'delete-asset') {
          rmSync(asset.file, { force: true });
          rel.assets = rel.assets.filter((a) => a !== asset);
          return [204, undefined];
        }
        const name = json?.['name'];
        if (typeof name === 'string' && name !== asset.name) {
          if (
            rel.assets.some((a) => a.name === name && a !== asset) &&
            (gh || this.#options.giteaRejectDuplicates)
          )
            return [422, gh ? validationFailed('ReleaseAsset', 'name', 'already_exists') : undefined];
          asset.name = name;
          asset.updatedAt = now;
        }
        return [gh ? 200 : 201, this.#assetJson(asset)];
      }
      default:
        return [500, undefined];
    }
  }

  async #upload(
    req: IncomingMessage,
    res: ServerResponse,
    record: RequestRecord,
    route: { spec: Schema },
    label: string,
    url: URL,
    fault: FaultAction | undefined,
  ): Promise<void> {
    const gh = this.flavor === 'github';
    const rel = this.#releaseById(
      gh
        ? this.#route('POST', url.pathname)?.params['release_id']
        : this.#route('POST', url.pathname)?.params['id'],
    );
    if (!rel) {
      await drain(req);
      return this.#reply(res, record, route, label, 404, this.#notFound());
    }
    if (gh && rel.immutable && !rel.draft) {
      await drain(req);
      return this.#reply(res, record, route, label, 422, validationFailed('Release', 'immutable', 'invalid'));
    }
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const multipart = !gh && ct === 'multipart/form-data';
    let name = url.searchParams.get('name') ?? '';
    if (gh && rel.assets.some((a) => a.name === name)) {
      await drain(req);
      return this.#reply(
        res,
        record,
        route,
        label,
        422,
        validationFailed('ReleaseAsset', 'name', 'already_exists'),
      );
    }
    if (!gh && name && this.#options.giteaRejectDuplicates && rel.assets.some((a) => a.name === name)) {
      await drain(req);
      record.fault = true; // 422 is not a documented Gitea upload answer: only with the option
      record.status = 422;
      res
        .writeHead(422, { 'content-type': 'application/json' })
        .end(JSON.stringify({ message: 'attachment name exists' }));
      return;
    }
    const id = this.#nextId++;
    const file = join(this.storage, String(id));
    mkdirSync(dirname(file), { recursive: true });
    const out = createWriteStream(file);
    const hash = createHash('sha256');
    let size = 0;
    const now = new Date().toISOString();
    const asset: Asset = {
      id,
      uuid: randomUUID(),
      name,
      size: 0,
      sha256: '',
      contentType: ct,
      state: 'open',
      file,
      createdAt: now,
      updatedAt: now,
    };
    // GitHub shows a half-uploaded asset (state "open" / "starter") until it is deleted.
    if (gh) rel.assets.push(asset);
    const expected = Number(req.headers['content-length'] ?? -1);
    const resetAt =
      fault && 'reset' in fault && fault.reset === 'mid' ? Math.max(1, Math.floor(expected / 2)) : -1;
    const write = (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      return out.write(chunk);
    };
    let received = 0;
    let aborted = false;
    try {
      const parser = multipart ? new MultipartFile(boundaryOf(req.headers['content-type'] ?? '')) : undefined;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (resetAt > 0 && received >= resetAt) {
          aborted = true;
          record.status = 'reset';
          record.fault = true;
          req.socket.destroy();
          break;
        }
        const pieces = parser ? parser.push(chunk) : [chunk];
        for (const piece of pieces) if (!write(piece)) await new Promise<void>((r) => out.once('drain', r));
      }
      if (parser && !aborted) {
        if (!parser.done) this.violations.push(`${label}: multipart body has no closing boundary`);
        if (parser.field !== 'attachment')
          this.violations.push(`${label}: multipart field is ${parser.field}, expected attachment`);
        if (!name) name = parser.filename ?? '';
      }
    } catch {
      aborted = true;
    }
    await new Promise<void>((r) => out.end(r));
    if (aborted || req.readableAborted || (expected >= 0 && received !== expected)) {
      asset.size = size;
      asset.sha256 = hash.digest('hex');
      if (!gh) rmSync(file, { force: true });
      if (record.status === 0) record.status = 'reset';
      return;
    }
    asset.name = name;
    asset.size = size;
    asset.sha256 = hash.digest('hex');
    asset.state = 'uploaded';
    if (!gh) rel.assets.push(asset);
    if (fault && 'reset' in fault && fault.reset === 'after') {
      record.status = 'reset';
      record.fault = true;
      req.socket.destroy();
      return;
    }
    this.#reply(res, record, route, label, 201, this.#assetJson(asset));
  }

  #releaseJson(r: Release): unknown {
    const base = `${this.#origin}/repos/${this.owner}/${this.repo}/releases/${r.id}`;
    if (this.flavor === 'github')
      return {
        url: base,
        html_url: `${this.#origin}/${this.owner}/${this.repo}/releases/tag/${encodeURIComponent(r.tag)}`,
        assets_url: `${base}/assets`,
        upload_url: `${this.#origin}/uploads/repos/${this.owner}/${this.repo}/releases/${r.id}/assets{?name,label}`,
        tarball_url: `${this.#origin}/repos/${this.owner}/${this.repo}/tarball/${r.tag}`,
        zipball_url: `${this.#origin}/repos/${this.owner}/${this.repo}/zipball/${r.tag}`,
        id: r.id,
        node_id: `RE_${r.id}`,
        tag_name: r.tag,
        target_commitish: r.target,
        name: r.name,
        body: r.body,
        draft: r.draft,
        prerelease: r.prerelease,
        immutable: Boolean(r.immutable),
        created_at: r.createdAt,
        published_at: r.publishedAt,
        author: USER_GITHUB,
        assets: r.assets.map((a) => this.#assetJson(a)),
      };
    return {
      id: r.id,
      tag_name: r.tag,
      target_commitish: r.target,
      name: r.name,
      body: r.body,
      url: `${this.#origin}/api/v1/repos/${this.owner}/${this.repo}/releases/${r.id}`,
      html_url: `${this.#origin}/${this.owner}/${this.repo}/releases/tag/${encodeURIComponent(r.tag)}`,
      tarball_url: `${this.#origin}/${this.owner}/${this.repo}/archive/${r.tag}.tar.gz`,
      zipball_url: `${this.#origin}/${this.owner}/${this.repo}/archive/${r.tag}.zip`,
      upload_url: `${this.#origin}/api/v1/repos/${this.owner}/${this.repo}/releases/${r.id}/assets`,
      draft: r.draft,
      prerelease: r.prerelease,
      created_at: r.createdAt,
      published_at: r.publishedAt ?? r.createdAt,
      author: { id: 1, login: 'signet-bot', full_name: '', email: 'bot@example.invalid' },
      assets: r.assets.filter((a) => a.state === 'uploaded').map((a) => this.#assetJson(a)),
    };
  }

  #assetJson(a: Asset): unknown {
    if (this.flavor === 'github')
      return {
        url: `${this.#origin}/repos/${this.owner}/${this.repo}/releases/assets/${a.id}`,
        browser_download_url: `${this.#origin}/download/${a.id}/${encodeURIComponent(a.name)}`,
        id: a.id,
        node_id: `RA_${a.id}`,
        name: a.name,
        label: null,
        state: a.state,
        content_type: a.contentType,
        size: a.size,
        digest: this.#options.digests === false || a.state !== 'uploaded' ? null : `sha256:${a.sha256}`,
        download_count: 0,
        created_at: a.createdAt,
        updated_at: a.updatedAt,
        uploader: USER_GITHUB,
      };
    return {
      id: a.id,
      name: a.name,
      size: a.size,
      download_count: 0,
      created_at: a.createdAt,
      uuid: a.uuid,
      browser_download_url: `${this.#origin}/attachments/${a.uuid}`,
    };
  }

  /** Test helper: the stored bytes of an asset (small assets only). */
  assetContent(name: string, tag?: string): Buffer {
    const rel = this.#releases.find((r) => !tag || r.tag === tag);
    const a = rel?.assets.find((x) => x.name === name);
    if (!a) throw new Error(`no asset ${name}`);
    return readFileSync(a.file);
  }

  assetFileSize(name: string): number {
    const a = this.#releases.flatMap((r) => r.assets).find((x) => x.name === name);
    return a ? statSync(a.file).size : -1;
  }
}

function validationFailed(resource: string, field: string, code: string): unknown {
  return {
    message: 'Validation Failed',
    errors: [{ resource, code, field }],
    documentation_url: 'https://docs.github.com/rest',
  };
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
  }
}

async function readSmall(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > 4 << 20) throw new Error('JSON body over 4 MiB');
    parts.push(c);
  }
  return Buffer.concat(parts);
}

function boundaryOf(contentType: string): string {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw new Error('multipart without boundary');
  return m[1] ?? m[2]!;
}

/** Streams the first file part of a multipart/form-data body, holding back only a delimiter's worth. */
class MultipartFile {
  readonly #delimiter: Buffer;
  #buf: Buffer = Buffer.alloc(0);
  #state: 'preamble' | 'headers' | 'body' | 'done' = 'preamble';
  field: string | undefined;
  filename: string | undefined;
  constructor(boundary: string) {
    this.#delimiter = Buffer.from(`\r\n--${boundary}`);
    // The first delimiter has no leading CRLF; prepend one so one search finds all.
    this.#buf = Buffer.from('\r\n');
  }
  get done(): boolean {
    return this.#state === 'done';
  }
  push(chunk: Buffer): Buffer[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out: Buffer[] = [];
    for (;;) {
      if (this.#state === 'preamble') {
        const i = this.#buf.indexOf(this.#delimiter);
        if (i < 0) return out;
        this.#buf = this.#buf.subarray(i + this.#delimiter.length);
        this.#state = 'headers';
      } else if (this.#state === 'headers') {
        const i = this.#buf.indexOf('\r\n\r\n');
        if (i < 0) return out;
        const head = this.#buf.subarray(0, i).toString('utf8');
        this.field = /name="([^"]*)"/.exec(head)?.[1];
        this.filename = /filename="([^"]*)"/.exec(head)?.[1];
        this.#buf = this.#buf.subarray(i + 4);
        this.#state = 'body';
      } else if (this.#state === 'body') {
        const i = this.#buf.indexOf(this.#delimiter);
        if (i >= 0) {
          out.push(Buffer.from(this.#buf.subarray(0, i)));
          this.#buf = Buffer.alloc(0);
          this.#state = 'done';
          return out;
        }
        const keep = this.#delimiter.length;
        if (this.#buf.length > keep) {
          out.push(this.#buf.subarray(0, this.#buf.length - keep));
          this.#buf = Buffer.from(this.#buf.subarray(this.#buf.length - keep));
        }
        return out;
      } else return out;
    }
  }
}
