/** Operations: liveness, readiness, Prometheus metrics, the OpenAPI document. No token needed. */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { RouteContext } from '../app.ts';
import { errorResponse, ref } from '../schemas.ts';
import { meta } from './v1.ts';

export function opsRoutes(app: FastifyInstance, ctx: RouteContext, registry: Registry): void {
  const { api } = ctx;
  const health =
    (which: 'health' | 'readiness') => async (_request: unknown, reply: import('fastify').FastifyReply) => {
      const h = await api[which]();
      return reply.code(h.ok ? 200 : 503).send(h);
    };

  app.get(
    '/healthz',
    {
      config: meta({ public: true }),
      schema: {
        operationId: 'healthz',
        tags: ['operations'],
        summary: 'Liveness: the process answers and its own checks pass',
        response: { 200: ref('Health'), 503: ref('Health'), 429: errorResponse('Rate limited') },
      },
    },
    health('health'),
  );

  app.get(
    '/readyz',
    {
      config: meta({ public: true }),
      schema: {
        operationId: 'readyz',
        tags: ['operations'],
        summary: 'Readiness: database, blob store, signer and tools; 503 when not ready',
        response: { 200: ref('Health'), 503: ref('Health'), 429: errorResponse('Rate limited') },
      },
    },
    health('readiness'),
  );

  app.get(
    '/metrics',
    {
      config: meta({ public: true }),
      schema: {
        operationId: 'metrics',
        tags: ['operations'],
        summary: 'Prometheus text: HTTP requests and durations by route and status, builds, queue, cache',
        response: {
          200: {
            description: 'Prometheus text exposition',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
          429: errorResponse('Rate limited'),
        },
      },
    },
    async (_request, reply) => {
      const own = await registry.metrics();
      const theirs = await api.metrics();
      const text = `${own.trimEnd()}\n${theirs.text.trimEnd()}\n`;
      return reply.code(200).type(registry.contentType).send(text);
    },
  );

  app.get(
    '/v1/openapi.json',
    {
      config: meta({ public: true }),
      schema: {
        operationId: 'openapi',
        tags: ['operations'],
        summary: 'This document (OpenAPI 3.1)',
        response: {
          200: {
            description: 'The OpenAPI document',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
          429: errorResponse('Rate limited'),
        },
      },
    },
    async (_request, reply) =>
      reply.type('application/json; charset=utf-8').send(JSON.stringify(app.swagger())),
  );
}
