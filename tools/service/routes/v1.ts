/**
 * The JSON routes of v1: token status, releases, sites, links, batch builds, audit, webhook
 * deliveries. Each parses (its schema did the validating), calls one use case, renders.
 */
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LinkView } from '../../lib/app/service/types.ts';
import { redact } from '../../lib/redact.ts';
import type { AuditEntry, Channel, DeliveryRecord, OutputKind } from '../../lib/service-store/types.ts';
import type { RouteContext, RouteMeta } from '../app.ts';
import { HttpError } from '../errors.ts';
import {
  buildBody,
  errorResponse,
  linkBody,
  page,
  pageQuery,
  ref,
  releaseQuery,
  siteCodeParam,
  siteInputBody,
} from '../schemas.ts';

export const meta = (m: RouteMeta) => ({ signet: m });

/** The error answers every authenticated route may give. */
export const authErrors = {
  400: errorResponse('Invalid input (E_INPUT_INVALID names the field)'),
  401: errorResponse('Missing, unknown, expired or revoked token'),
  403: errorResponse('The token lacks the scope'),
  415: errorResponse('Wrong content type'),
  429: errorResponse('Rate limited (see Retry-After)'),
  500: errorResponse('Internal error'),
  503: errorResponse('Not available (shutting down, or something the service needs is missing)'),
};

const ms = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `"1h"`, `"90m"`, `"7d"` or seconds → milliseconds; at most 30 days, at least a minute. */
export function expiresInMs(v: string | number): number {
  const out = typeof v === 'number' ? v * 1000 : Number(v.slice(0, -1)) * ms[v.slice(-1) as keyof typeof ms];
  if (!Number.isSafeInteger(out) || out < 60_000 || out > 30 * ms.d)
    throw new HttpError('E_INPUT_INVALID', 'body.expiresIn must be between one minute and 30 days', {
      details: { field: 'body.expiresIn' },
    });
  return out;
}

/** Counts the bytes of an upload and fails the stream past the limit. */
export function limitStream(src: Readable, limit: number): { stream: Readable; over: () => boolean } {
  let n = 0;
  let over = false;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > limit) {
        over = true;
        cb(new HttpError('E_TOO_LARGE', `the body is over the ${limit}-byte limit`, { details: { limit } }));
      } else cb(null, chunk);
    },
  });
  src.on('error', (e) => t.destroy(e));
  return { stream: src.pipe(t), over: () => over };
}

export function absoluteUrl(ctx: RouteContext, request: FastifyRequest, url: string): string {
  if (!url.startsWith('/')) return url;
  const base = ctx.options.publicUrl ?? `${request.protocol}://${request.host}`;
  return `${base.replace(/\/+$/, '')}${url}`;
}

const iso = (n: number | null) => (n === null ? null : new Date(n).toISOString());

export function auditView(e: AuditEntry) {
  return { ...e, at: new Date(e.at).toISOString() };
}

export function deliveryView(d: DeliveryRecord) {
  return {
    id: d.id,
    event: d.event,
    url: redact(d.url),
    attempts: d.attempts,
    state: d.state,
    lastStatus: d.lastStatus,
    lastError: d.lastError === null ? null : redact(d.lastError),
    nextAt: new Date(d.nextAt).toISOString(),
    createdAt: new Date(d.createdAt).toISOString(),
    deliveredAt: iso(d.deliveredAt),
  };
}

export function v1Routes(app: FastifyInstance, ctx: RouteContext): void {
  const { api } = ctx;

  app.get(
    '/v1/token',
    {
      config: meta({}),
      schema: {
        operationId: 'getToken',
        tags: ['tokens'],
        summary: 'The calling token’s status (any valid token)',
        response: { 200: ref('TokenStatus'), ...authErrors },
      },
    },
    async (request) => api.tokenStatus(ctx.token(request)),
  );

  app.post(
    '/v1/releases',
    {
      config: meta({ scope: 'releases:write', body: 'octet' }),
      schema: {
        operationId: 'uploadRelease',
        tags: ['releases'],
        summary: 'Upload a signed agent; it is verified with the service’s signing profile (pins included)',
        querystring: releaseQuery,
        response: {
          201: ref('Release'),
          ...authErrors,
          409: errorResponse('This version exists with another agent'),
          413: errorResponse('Over service.maxUploadBytes'),
          422: errorResponse('The agent did not verify (unsigned, wrong signer, no timestamp, …)'),
        },
      },
    },
    async (request, reply) => {
      const q = request.query as { version: string; channel: Channel };
      if (!request.body) throw new HttpError('E_INPUT_INVALID', 'the agent is missing (send it as the body)');
      const up = limitStream(request.body as Readable, ctx.options.maxUploadBytes);
      try {
        const release = await api.uploadRelease(ctx.actor(request), {
          version: q.version,
          channel: q.channel,
          body: up.stream,
        });
        return reply.code(201).send(release);
      } catch (e) {
        if (up.over())
          throw new HttpError(
            'E_TOO_LARGE',
            `the agent is over the ${ctx.options.maxUploadBytes}-byte limit`,
            {
              headers: { connection: 'close' },
            },
          );
        throw e;
      }
    },
  );

  app.get(
    '/v1/releases',
    {
      config: meta({}),
      schema: {
        operationId: 'listReleases',
        tags: ['releases'],
        summary: 'Every release (any valid token); `current` marks each channel’s newest verified one',
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: ref('Release') } },
            additionalProperties: false,
          },
          ...authErrors,
        },
      },
    },
    async () => ({ items: await api.listReleases() }),
  );

  app.put(
    '/v1/sites/:siteCode',
    {
      config: meta({ scope: 'sites:write', body: 'json' }),
      schema: {
        operationId: 'putSite',
        tags: ['sites'],
        summary: 'Create or update a site; a new enrollment key needs keyVersion + 1 (rotation)',
        params: siteCodeParam,
        body: siteInputBody,
        response: {
          200: siteResult('The site was updated'),
          201: siteResult('The site was created'),
          ...authErrors,
          409: errorResponse(
            'E_KEY_VERSION: an older or skipped key version, or a rotation without a new key',
          ),
          413: errorResponse('Body over 1 MiB'),
        },
      },
    },
    async (request, reply) => {
      const { siteCode } = request.params as { siteCode: string };
      const r = await api.putSite(ctx.actor(request), siteCode, request.body as never);
      return reply.code(r.created ? 201 : 200).send(r);
    },
  );

  app.get(
    '/v1/sites/:siteCode',
    {
      config: meta({ scope: 'sites:read' }),
      schema: {
        operationId: 'getSite',
        tags: ['sites'],
        summary: 'A site (never its enrollment key)',
        params: siteCodeParam,
        response: { 200: ref('Site'), ...authErrors, 404: errorResponse('No such site') },
      },
    },
    async (request) => api.getSite((request.params as { siteCode: string }).siteCode),
  );

  app.delete(
    '/v1/sites/:siteCode',
    {
      config: meta({ scope: 'sites:write' }),
      schema: {
        operationId: 'deleteSite',
        tags: ['sites'],
        summary: 'Delete a site (its links stop working)',
        params: siteCodeParam,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...authErrors,
          404: errorResponse('No such site'),
        },
      },
    },
    async (request, reply) => {
      await api.deleteSite(ctx.actor(request), (request.params as { siteCode: string }).siteCode);
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/sites',
    {
      config: meta({ scope: 'sites:read' }),
      schema: {
        operationId: 'listSites',
        tags: ['sites'],
        summary: 'Sites by site code, a page at a time (pass `next` back as `cursor`)',
        querystring: pageQuery,
        response: { 200: page('Site'), ...authErrors },
      },
    },
    async (request) => {
      const q = request.query as { cursor?: string; limit: number };
      return api.listSites(q.cursor ?? null, q.limit);
    },
  );

  app.post(
    '/v1/sites/:siteCode/links',
    {
      config: meta({ scope: 'sites:write', body: 'json' }),
      schema: {
        operationId: 'createLink',
        tags: ['installers'],
        summary: 'An unauthenticated download link that expires, and stops working when the key rotates',
        params: siteCodeParam,
        body: linkBody,
        response: {
          201: ref('Link'),
          ...authErrors,
          404: errorResponse('No such site or release'),
          413: errorResponse('Body over 1 MiB'),
        },
      },
    },
    async (request, reply) => {
      const { siteCode } = request.params as { siteCode: string };
      const b = request.body as {
        kind: OutputKind;
        channel?: Channel;
        version?: string;
        expiresIn: string | number;
      };
      const link: LinkView = await api.createLink(ctx.actor(request), siteCode, {
        kind: b.kind,
        ...(b.channel ? { channel: b.channel } : {}),
        ...(b.version ? { version: b.version } : {}),
        expiresInMs: expiresInMs(b.expiresIn),
      });
      return reply.code(201).send({ ...link, url: absoluteUrl(ctx, request, link.url) });
    },
  );

  app.post(
    '/v1/builds',
    {
      config: meta({ scope: 'releases:write', body: 'json' }),
      schema: {
        operationId: 'startBuild',
        tags: ['builds'],
        summary: 'Build the installers of many sites in the background; poll GET /v1/builds/{id}',
        body: buildBody,
        response: {
          202: ref('Build'),
          ...authErrors,
          404: errorResponse('No such release or site'),
          413: errorResponse('Body over 1 MiB'),
        },
      },
    },
    async (request, reply) => {
      const b = request.body as { channel?: Channel; version?: string; sites: string[] | 'all' };
      const build = await api.startBuild(ctx.actor(request), {
        ...(b.channel ? { channel: b.channel } : {}),
        ...(b.version ? { version: b.version } : {}),
        sites: b.sites,
      });
      return reply
        .code(202)
        .header('location', `/v1/builds/${encodeURIComponent(build.id)}`)
        .send(build);
    },
  );

  app.get(
    '/v1/builds/:id',
    {
      config: meta({ scope: 'installers:read' }),
      schema: {
        operationId: 'getBuild',
        tags: ['builds'],
        summary: 'A batch build’s progress and per-site results',
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' } },
          additionalProperties: false,
        },
        response: { 200: ref('Build'), ...authErrors, 404: errorResponse('No such build') },
      },
    },
    async (request) => api.getBuild((request.params as { id: string }).id),
  );

  app.get(
    '/v1/audit',
    {
      config: meta({ scope: 'admin' }),
      schema: {
        operationId: 'listAudit',
        tags: ['operations'],
        summary: 'The audit log, newest first: token or link, source address, action, site, result',
        querystring: pageQuery,
        response: { 200: page('AuditEntry'), ...authErrors },
      },
    },
    async (request) => {
      const q = request.query as { cursor?: string; limit: number };
      const p = await api.audit(q.cursor ?? null, q.limit);
      return { items: p.items.map(auditView), next: p.next };
    },
  );

  app.get(
    '/v1/webhooks/deliveries',
    {
      config: meta({ scope: 'admin' }),
      schema: {
        operationId: 'listDeliveries',
        tags: ['operations'],
        summary: 'Webhook deliveries, newest first, with their attempts and last result',
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: ref('Delivery') } },
            additionalProperties: false,
          },
          ...authErrors,
        },
      },
    },
    async (request) => ({
      items: (await api.deliveries((request.query as { limit: number }).limit)).map(deliveryView),
    }),
  );
}

function siteResult(description: string) {
  return {
    description,
    type: 'object',
    required: ['site', 'created', 'rotated'],
    properties: { site: ref('Site'), created: { type: 'boolean' }, rotated: { type: 'boolean' } },
    additionalProperties: false,
  };
}
