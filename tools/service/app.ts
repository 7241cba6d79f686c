/**
 * The service's HTTP adapter: a Fastify instance whose routes are thin adapters over the
 * `ServiceApi` use cases (tools/lib/app/service). This file holds what every route shares —
 * authentication and scopes in one hook, per-token rate limits, content types and body limits,
 * the error shape, logging with secrets redacted, request metrics — and the OpenAPI plugin that
 * documents the routes from their own schemas. The routes are in ./routes.
 */

import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { Actor, ServiceApi } from '../lib/app/service/types.ts';
import { redact } from '../lib/redact.ts';
import type { Scope, TokenRecord } from '../lib/service-store/types.ts';
import { HttpError, renderError } from './errors.ts';
import { downloadRoutes } from './routes/downloads.ts';
import { opsRoutes } from './routes/ops.ts';
import { v1Routes } from './routes/v1.ts';
import { SHARED } from './schemas.ts';

export interface ServiceAppOptions {
  /** Base URL clients reach the service at; relative link URLs are made absolute on it. */
  publicUrl?: string;
  /** Largest agent (POST /v1/releases) or file (POST /v1/sign) accepted, in bytes. */
  maxUploadBytes: number;
  /** Requests per token (or per address without one) per window. */
  rateLimit: { max: number; windowMs: number };
  /** A proxy is in front: take the client address and protocol from X-Forwarded-*. */
  trustProxy: boolean;
  /** TLS: the certificate chain and key (PEM). */
  https?: { cert: Buffer; key: Buffer };
  /** Fastify's (pino) logger: false for none; a stream captures the JSON lines. */
  logger?: false | { level?: string; stream?: { write(line: string): void } };
}

/** What a route declares about itself (route `config.signet`). */
export interface RouteMeta {
  /** No token needed (health, metrics, the document, download links). */
  public?: boolean;
  /** The scope the token needs; undefined on an authenticated route = any valid token. */
  scope?: Scope;
  /** The body the route takes. */
  body?: 'json' | 'octet';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    signet?: RouteMeta;
  }
}

interface RequestState {
  actor: Actor;
  token?: TokenRecord;
  authError?: unknown;
}

export interface RouteContext {
  api: ServiceApi;
  options: ServiceAppOptions;
  /** The caller as authenticated by the hook (anonymous on public routes). */
  actor(request: FastifyRequest): Actor;
  token(request: FastifyRequest): TokenRecord;
}

export const JSON_BODY_LIMIT = 1024 * 1024;
export const MAX_JSON_DEPTH = 32;

/** Paths whose last segment is a credential (download links): never logged as sent. */
export function safeUrl(url: string): string {
  return redact(url.replace(/^\/dl\/[^/?#]*/, '/dl/***'));
}

/** Deepest nesting of `[`/`{` in a JSON text, scanning once (strings skipped); stops past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 93 || c === 125) depth--;
  }
  return max;
}

function bearerOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? m[1] : '';
}

function mediaType(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function hasBody(request: FastifyRequest): boolean {
  const len = request.headers['content-length'];
  return (len !== undefined && len !== '0') || request.headers['transfer-encoding'] !== undefined;
}

export async function buildServiceApp(api: ServiceApi, options: ServiceAppOptions): Promise<FastifyInstance> {
  const logger =
    options.logger === false || options.logger === undefined
      ? false
      : {
          level: options.logger.level ?? 'info',
          ...(options.logger.stream ? { stream: options.logger.stream } : {}),
          redact: {
            paths: ['req.headers.authorization', 'headers.authorization', 'req.headers.cookie'],
            censor: '***',
          },
          serializers: {
            req: (req: { method?: string; url?: string; ip?: string; hostname?: string }) => ({
              method: req.method,
              url: safeUrl(req.url ?? ''),
              remoteAddress: req.ip,
            }),
          },
        };
  const app = Fastify({
    logger,
    ...(options.https ? { https: options.https } : {}),
    bodyLimit: JSON_BODY_LIMIT,
    trustProxy: options.trustProxy,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 256 },
    // a path that does not decode (`%C0%AF`) is refused before routing: same error shape
    frameworkErrors: (_error, _request, reply) => {
      const r = renderError(
        new HttpError('E_INPUT_INVALID', 'the path is not a valid URL', { details: { field: 'path' } }),
      );
      (reply as FastifyReply).code(400).type('application/json; charset=utf-8').send(r.body);
    },
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: 'array',
        useDefaults: true,
        allowUnionTypes: true,
      },
    },
  });

  const states = new WeakMap<FastifyRequest, RequestState>();
  const stateOf = (request: FastifyRequest): RequestState => {
    let s = states.get(request);
    if (!s) {
      s = { actor: { kind: 'anonymous', name: '-', ip: request.ip, scopes: [] } };
      states.set(request, s);
    }
    return s;
  };
  const metaOf = (request: FastifyRequest): RouteMeta | undefined =>
    (request.routeOptions.config as { signet?: RouteMeta } | undefined)?.signet;

  // metrics: per app (never the global registry), labelled by route template, never by raw URL
  const registry = new Registry();
  // the process's own: resident memory, heap, event loop lag, GC, open handles (prom-client's set)
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'signet_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'signet_http_request_duration_seconds',
    help: 'HTTP request durations (to the last byte sent), by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  for (const s of SHARED) app.addSchema(structuredClone(s) as unknown as { $id: string });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Signet service',
        version: '1',
        description:
          'Per-site installers on demand, download links, batch builds and a signing endpoint for the vendor’s server. Every error is `{error: {code, message, hint}}`. See docs/service.md.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      tags: [
        { name: 'tokens' },
        { name: 'releases' },
        { name: 'sites' },
        { name: 'installers' },
        { name: 'builds' },
        { name: 'signing' },
        { name: 'operations' },
      ],
    },
    refResolver: {
      buildLocalReference: (json: { $id?: unknown }, _base: unknown, _fragment: unknown, i: number) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    transform: ({ schema, url, route }) => {
      const meta = (route.config as { signet?: RouteMeta } | undefined)?.signet;
      const out: Record<string, unknown> = { ...(schema as Record<string, unknown>) };
      if (meta && !meta.public) out['security'] = [{ bearer: meta.scope ? [meta.scope] : [] }];
      if (meta?.body === 'octet') {
        out['body'] = { type: 'string', format: 'binary' };
        out['consumes'] = ['application/octet-stream'];
      }
      return { schema: out as typeof schema, url };
    },
  });

  await app.register(rateLimit, {
    global: true,
    max: options.rateLimit.max,
    timeWindow: options.rateLimit.windowMs,
    keyGenerator: (request) => {
      const token = stateOf(request).token;
      return token ? `token:${token.id}` : `ip:${request.ip}`;
    },
    errorResponseBuilder: (_request, ctx) =>
      new HttpError(
        'E_RATE_LIMITED',
        `rate limit exceeded: ${ctx.max} requests per window, retry in ${ctx.after}`,
        {
          status: 429,
          headers: { 'retry-after': String(Math.max(1, Math.ceil(ctx.ttl / 1000))) },
        },
      ),
  });

  // bodies: JSON (depth-checked, the default parser's prototype-poisoning guards kept) and raw streams
  app.removeAllContentTypeParsers();
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: JSON_BODY_LIMIT },
    (req, body, done) => {
      const text = body as string;
      if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
        done(
          new HttpError('E_INPUT_INVALID', `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`, {
            details: { field: 'body' },
          }),
          undefined,
        );
        return;
      }
      defaultJson(req, text, done);
    },
  );
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  // authentication (no throw yet, so that failures are rate-limited by address too)
  app.addHook('onRequest', async (request) => {
    const meta = metaOf(request);
    const state = stateOf(request);
    if (!meta || meta.public) return;
    try {
      const bearer = bearerOf(request.headers.authorization);
      const { actor, token } = await api.authenticate(bearer, request.ip);
      state.actor = actor;
      state.token = token;
    } catch (e) {
      state.authError = e;
    }
  });

  // scope, content type and declared size, before any body is read
  app.addHook('preParsing', async (request, _reply, payload) => {
    const meta = metaOf(request);
    if (!meta) return payload; // no such route: the not-found handler answers
    const state = stateOf(request);
    if (state.authError) throw state.authError;
    if (!meta.public && meta.scope) api.requireScope(state.actor, meta.scope);
    if (meta.body && hasBody(request)) {
      const want = meta.body === 'json' ? 'application/json' : 'application/octet-stream';
      if (mediaType(request) !== want)
        throw new HttpError(
          'E_UNSUPPORTED_MEDIA',
          `this route takes ${want}, not ${mediaType(request) || 'no type'}`,
        );
      const limit = meta.body === 'json' ? JSON_BODY_LIMIT : options.maxUploadBytes;
      const declared = Number(request.headers['content-length']);
      if (Number.isFinite(declared) && declared > limit)
        throw new HttpError('E_TOO_LARGE', `the body (${declared} bytes) is over the ${limit}-byte limit`, {
          details: { limit },
          headers: { connection: 'close' },
        });
    } else if (!meta.body && hasBody(request) && request.method !== 'GET' && request.method !== 'HEAD') {
      throw new HttpError('E_UNSUPPORTED_MEDIA', 'this route takes no body');
    }
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    };
    requests.inc(labels);
    durations.observe(labels, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error, request, reply: FastifyReply) => {
    const r = renderError(error);
    if (r.internal)
      request.log.error(
        { code: (error as { code?: unknown }).code },
        redact(`internal error: ${(error as Error)?.stack ?? String(error)}`),
      );
    else if (r.status >= 500) request.log.warn({ code: r.body.error.code }, r.body.error.message);
    for (const [k, v] of Object.entries(r.headers)) reply.header(k, v);
    // a HEAD request keeps its headers and status; the error body is dropped by the server
    return reply.code(r.status).type('application/json; charset=utf-8').send(r.body);
  });

  app.setNotFoundHandler((request, reply) => {
    const r = renderError(
      new HttpError('E_NOT_FOUND', `no route ${request.method} ${safeUrl(request.url.split('?')[0]!)}`, {
        hint: 'Check the method and path: GET /v1/openapi.json lists every route.',
      }),
    );
    return reply.code(404).type('application/json; charset=utf-8').send(r.body);
  });

  const ctx: RouteContext = {
    api,
    options,
    actor: (request) => stateOf(request).actor,
    token: (request) => {
      const t = stateOf(request).token;
      if (!t) throw new HttpError('E_AUTH_MISSING', 'this route needs a bearer token');
      return t;
    },
  };
  v1Routes(app, ctx);
  downloadRoutes(app, ctx);
  opsRoutes(app, ctx, registry);
  return app;
}
