/**
 * The routes that stream files: a site's installer (token), a download link (no token), and
 * /v1/sign — the remote signing backend's protocol (tools/lib/sign/remote.ts): the file as an
 * octet-stream body with `x-signet-file-name` (URI-encoded), `x-signet-nest: 1`, the signed file
 * as the 200 body, any failure a coded JSON error (401/403 are "token rejected" to the backend).
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Channel, OutputKind } from '../../lib/service-store/types.ts';
import type { RouteContext } from '../app.ts';
import { contentDisposition, sendInstaller } from '../download.ts';
import { HttpError } from '../errors.ts';
import { binary, errorResponse, installerParams, installerQuery, LINK_TOKEN_PATTERN } from '../schemas.ts';
import { authErrors, limitStream, meta } from './v1.ts';

const downloadHeaders = {
  ETag: { type: 'string', description: '"<sha256 of the file>"' },
  'Content-Disposition': { type: 'string', description: 'attachment; the fingerprinted file name' },
  'Accept-Ranges': { type: 'string' },
};

function downloadResponses(extra: Record<string, unknown>) {
  return {
    200: { ...binary('The installer'), headers: downloadHeaders },
    206: { ...binary('The requested byte range (Content-Range)'), headers: downloadHeaders },
    304: { description: 'Not modified (If-None-Match matched the ETag)', type: 'null' },
    416: errorResponse('The range is outside the file (Content-Range: bytes */SIZE)'),
    ...extra,
  };
}

/** The file name the signing backend sent, as a plain base name. */
export function signFileName(header: string | string[] | undefined): string {
  const raw = Array.isArray(header) ? header[0] : header;
  let name: string;
  try {
    name = decodeURIComponent(raw ?? '');
  } catch {
    throw new HttpError('E_INPUT_INVALID', 'x-signet-file-name is not URI-encoded', {
      details: { field: 'headers.x-signet-file-name' },
    });
  }
  if (!name || name.length > 255 || /[/\\\u0000-\u001f\u007f]/.test(name) || name === '.' || name === '..')
    throw new HttpError(
      'E_INPUT_INVALID',
      'x-signet-file-name must be a plain file name (no folders, 1–255 characters)',
      {
        details: { field: 'headers.x-signet-file-name' },
      },
    );
  return name;
}

export function downloadRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { api } = ctx;

  const installer = async (request: FastifyRequest, reply: FastifyReply) => {
    const { siteCode, kind } = request.params as { siteCode: string; kind: OutputKind };
    const q = request.query as { channel: Channel; version?: string };
    const file = await api.installer(ctx.actor(request), {
      siteCode,
      kind,
      channel: q.channel,
      ...(q.version ? { version: q.version } : {}),
    });
    return sendInstaller(request, reply, file);
  };
  for (const method of ['GET', 'HEAD'] as const)
    app.route({
      method,
      url: '/v1/sites/:siteCode/installers/:kind',
      config: { ...meta({ scope: 'installers:read' }), swagger: { exposeHeadRoute: true } },
      schema: {
        operationId: method === 'GET' ? 'getInstaller' : 'headInstaller',
        tags: ['installers'],
        summary:
          method === 'GET'
            ? 'The site’s signed installer for the current (or given) release, built on demand; Range and If-None-Match supported'
            : 'The installer’s headers (size, ETag, file name) without the body',
        params: installerParams,
        querystring: installerQuery,
        response: downloadResponses({
          ...authErrors,
          404: errorResponse('No such site, or no release on the channel'),
          422: errorResponse('The built installer failed a check'),
        }),
      },
      handler: installer,
    });

  const byLink = async (request: FastifyRequest, reply: FastifyReply) => {
    const { linkToken } = request.params as { linkToken: string };
    const file = await api.installerByLink(linkToken, request.ip);
    return sendInstaller(request, reply, file);
  };
  for (const method of ['GET', 'HEAD'] as const)
    app.route({
      method,
      url: '/dl/:linkToken',
      config: { ...meta({ public: true }), swagger: { exposeHeadRoute: true } },
      schema: {
        operationId: method === 'GET' ? 'downloadLink' : 'headLink',
        tags: ['installers'],
        summary: 'Download through a link (no token: the link is the credential); every download is audited',
        params: {
          type: 'object',
          required: ['linkToken'],
          properties: { linkToken: { type: 'string', pattern: LINK_TOKEN_PATTERN } },
          additionalProperties: false,
        },
        response: downloadResponses({
          400: errorResponse('Not a link token'),
          404: errorResponse('Unknown link, or the site’s key rotated'),
          410: errorResponse('The link expired'),
          429: errorResponse('Rate limited (see Retry-After)'),
          500: errorResponse('Internal error'),
          503: errorResponse('Not available'),
        }),
      },
      handler: byLink,
    });

  app.post(
    '/v1/sign',
    {
      config: meta({ scope: 'sign', body: 'octet' }),
      schema: {
        operationId: 'sign',
        tags: ['signing'],
        summary:
          'Sign, timestamp and verify a PE or MSI under the service’s profile; the answer is the signed file (never the input)',
        headers: {
          type: 'object',
          required: ['x-signet-file-name'],
          properties: {
            'x-signet-file-name': {
              type: 'string',
              minLength: 1,
              maxLength: 1024,
              description: 'URI-encoded file name',
            },
            'x-signet-nest': {
              type: 'string',
              enum: ['0', '1'],
              description: '1: add a signature beside an existing one',
            },
            'x-signet-digest': { type: 'string', maxLength: 32 },
          },
        },
        response: {
          200: {
            ...binary('The signed, timestamped, verified file'),
            headers: { 'x-signet-sha256': { type: 'string', description: 'SHA-256 of the signed file' } },
          },
          ...authErrors,
          413: errorResponse('Over service.maxUploadBytes'),
          422: errorResponse('The signature did not verify (the signed file is never returned then)'),
        },
      },
    },
    async (request, reply) => {
      const fileName = signFileName(request.headers['x-signet-file-name']);
      if (!request.body) throw new HttpError('E_INPUT_INVALID', 'the file is missing (send it as the body)');
      const up = limitStream(request.body as Readable, ctx.options.maxUploadBytes);
      let signed: Awaited<ReturnType<typeof api.sign>>;
      try {
        signed = await api.sign(ctx.actor(request), {
          fileName,
          body: up.stream,
          ...(request.headers['x-signet-nest'] === '1' ? { nest: true } : {}),
        });
      } catch (e) {
        if (up.over())
          throw new HttpError(
            'E_TOO_LARGE',
            `the file is over the ${ctx.options.maxUploadBytes}-byte limit`,
            {
              headers: { connection: 'close' },
            },
          );
        throw e;
      }
      let cleaned = false;
      const cleanup = () => {
        if (cleaned) return;
        cleaned = true;
        signed.cleanup();
      };
      try {
        const stream = createReadStream(signed.path);
        stream.on('close', cleanup);
        reply.raw.on('close', () => {
          if (!stream.destroyed) stream.destroy();
          cleanup();
        });
        return reply
          .code(200)
          .type('application/octet-stream')
          .header('content-length', String(signed.size))
          .header('x-signet-sha256', signed.sha256)
          .header('content-disposition', contentDisposition(fileName))
          .header('cache-control', 'no-store')
          .send(stream);
      } catch (e) {
        cleanup();
        throw e;
      }
    },
  );
}
