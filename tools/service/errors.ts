/**
 * Every failure the service answers is `{error: {code, message, hint}}` with one of Signet's
 * error codes and an HTTP status chosen from the code: a few codes by name, the rest by their exit
 * class (usage → 400, refused → 422, environment → 503, failed → 500). Fastify's own errors
 * (validation, body limits, content types, JSON syntax) are translated to the same shape. An
 * unexpected error is E_INTERNAL with a generic message: its text goes to the log, not the client.
 */
import { ERRORS } from '../lib/errors.ts';
import { redact } from '../lib/redact.ts';

export interface ErrorBody {
  error: { code: string; message: string; hint: string; details?: Record<string, unknown> };
}

/** The status of the codes whose meaning is an HTTP status. */
const STATUS_BY_CODE: Record<string, number> = {
  E_AUTH_MISSING: 401,
  E_AUTH_INVALID: 401,
  E_AUTH_SCOPE: 403,
  E_NOT_FOUND: 404,
  E_NO_RELEASE: 404,
  E_LINK_INVALID: 404,
  E_LINK_EXPIRED: 410,
  E_CONFLICT: 409,
  E_KEY_VERSION: 409,
  E_TOO_LARGE: 413,
  E_UNSUPPORTED_MEDIA: 415,
  E_RANGE_UNSATISFIABLE: 416,
  E_RATE_LIMITED: 429,
  E_SERVICE_CLOSING: 503,
  E_INTERNAL: 500,
};

const STATUS_BY_EXIT: Record<string, number> = {
  usage: 400,
  refused: 422,
  environment: 503,
  failed: 500,
  partial: 500,
};

/** Hints for the codes the adapter itself raises (used when the error table has none). */
const ADAPTER_HINTS: Record<string, string> = {
  E_AUTH_MISSING: 'Send `Authorization: Bearer <token>`; `signet serve token create` makes one.',
  E_AUTH_INVALID: 'The token is unknown, expired or revoked: ask the service admin for a new one.',
  E_AUTH_SCOPE:
    'The token lacks the scope this route needs (docs/service.md lists them); use a token that has it.',
  E_NOT_FOUND: 'Check the path: GET /v1/openapi.json lists every route.',
  E_LINK_INVALID:
    'The link is unknown, or stopped working because the site’s key rotated: ask for a new link.',
  E_LINK_EXPIRED: 'The link expired: ask for a new link.',
  E_TOO_LARGE: 'Send a smaller body: JSON bodies up to 1 MiB, files up to service.maxUploadBytes.',
  E_UNSUPPORTED_MEDIA:
    'Send the Content-Type the route documents (application/json or application/octet-stream).',
  E_RANGE_UNSATISFIABLE: 'Ask for a byte range inside the file (its size is in Content-Range: bytes */SIZE).',
  E_RATE_LIMITED: 'Too many requests for this token or address: wait the Retry-After seconds, then retry.',
  E_INPUT_INVALID: 'Fix the named input field and send again.',
  E_SERVICE_CLOSING: 'The service is shutting down: retry shortly.',
  E_INTERNAL: 'This is a bug in Signet; the service log has the details (report it).',
};

type Definition = { exit: string; hint: string };
const TABLE = ERRORS as unknown as Record<string, Definition | undefined>;

/** An expired link answers 410 Gone (the technician asks for a new one); unknown, revoked, rotated → 404. */
function linkExpired(details?: Record<string, unknown>, message?: string): boolean {
  return details?.['reason'] === 'expired' || /\(expired\)/.test(message ?? '');
}

export function statusOf(code: string, details?: Record<string, unknown>, message?: string): number {
  if (code === 'E_LINK_INVALID' && linkExpired(details, message)) return 410;
  const named = STATUS_BY_CODE[code];
  if (named) return named;
  const def = TABLE[code];
  return def ? (STATUS_BY_EXIT[def.exit] ?? 500) : 500;
}

export function hintOf(code: string): string {
  return TABLE[code]?.hint ?? ADAPTER_HINTS[code] ?? ADAPTER_HINTS['E_INTERNAL']!;
}

/** An error the adapter raises itself (its code may be one the error table does not list yet). */
export class HttpError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly hint: string;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string>;
  constructor(
    code: string,
    message: string,
    options: {
      status?: number;
      hint?: string;
      details?: Record<string, unknown>;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(redact(message));
    this.name = 'HttpError';
    this.code = code;
    this.statusCode = options.status ?? statusOf(code, options.details);
    this.hint = options.hint ?? hintOf(code);
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

/** Details worth showing a client: which field, which scope, which limit. Nothing else travels. */
const SAFE_DETAILS = new Set(['field', 'fields', 'scope', 'limit', 'reason', 'expected', 'have']);

function safeDetails(d: unknown): Record<string, unknown> | undefined {
  if (!d || typeof d !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d as Record<string, unknown>))
    if (SAFE_DETAILS.has(k) && (typeof v !== 'object' || Array.isArray(v))) out[k] = v;
  return Object.keys(out).length ? out : undefined;
}

export interface Rendered {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** Log this (an unexpected error): the client got a generic message. */
  internal: boolean;
}

interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
  validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
  message?: string;
  hint?: unknown;
  details?: unknown;
  headers?: unknown;
}

function validationMessage(e: FastifyLikeError): { message: string; field: string } {
  const first = e.validation?.[0];
  const where = e.validationContext ?? 'body';
  const prop =
    (first?.params?.['missingProperty'] as string | undefined) ??
    (first?.params?.['additionalProperty'] as string | undefined);
  const path = `${where}${(first?.instancePath ?? '').replace(/\//g, '.')}${prop ? `.${prop}` : ''}`;
  const what = first?.params?.['additionalProperty']
    ? 'is not a known field'
    : (first?.message ?? 'is invalid');
  return { message: `${path} ${what}`, field: path };
}

/** Any thrown value → status, body and headers. */
export function renderError(e: unknown): Rendered {
  const err = (e && typeof e === 'object' ? e : { message: String(e) }) as FastifyLikeError;
  const code = typeof err.code === 'string' ? err.code : '';
  const headers: Record<string, string> =
    err.headers && typeof err.headers === 'object' ? { ...(err.headers as Record<string, string>) } : {};
  const make = (c: string, message: string, status = statusOf(c), details?: Record<string, unknown>) => {
    if (status === 401) headers['www-authenticate'] ??= 'Bearer realm="signet"';
    if (status === 403 && c === 'E_AUTH_SCOPE')
      headers['www-authenticate'] ??= `Bearer realm="signet", error="insufficient_scope"${
        typeof details?.['scope'] === 'string' ? `, scope="${details['scope']}"` : ''
      }`;
    return {
      status,
      headers,
      internal: false,
      body: {
        error: {
          code: c,
          message: redact(message),
          hint: redact(typeof err.hint === 'string' && c === code ? err.hint : hintOf(c)),
          ...(details ? { details: JSON.parse(redact(JSON.stringify(details))) } : {}),
        },
      },
    } satisfies Rendered;
  };

  if (err.validation) {
    const v = validationMessage(err);
    return make('E_INPUT_INVALID', v.message, 400, { field: v.field });
  }
  if (code.startsWith('E_') && (TABLE[code] || STATUS_BY_CODE[code] || e instanceof HttpError)) {
    if (code === 'E_INTERNAL') return internal(headers);
    const details = safeDetails(err.details);
    const status =
      e instanceof HttpError
        ? e.statusCode
        : statusOf(code, err.details as Record<string, unknown>, err.message);
    return make(code, err.message ?? code, status, details);
  }
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return make('E_TOO_LARGE', 'the request body is over the limit', 413);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
        return make('E_UNSUPPORTED_MEDIA', 'this content type is not accepted here', 415);
      return make('E_INPUT_INVALID', 'the Content-Length does not match the body', 400);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return make('E_INPUT_INVALID', 'the JSON body is empty', 400, { field: 'body' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return make('E_INPUT_INVALID', 'the body is not valid JSON', 400, { field: 'body' });
    case 'FST_ERR_NOT_FOUND':
      return make('E_NOT_FOUND', 'no such route', 404);
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (err instanceof SyntaxError || (status === 400 && /JSON/i.test(err.message ?? '')))
    return make('E_INPUT_INVALID', 'the body is not valid JSON', 400, { field: 'body' });
  if (status >= 400 && status < 500)
    return make(status === 404 ? 'E_NOT_FOUND' : 'E_INPUT_INVALID', 'the request was refused', status);
  return internal(headers);
}

function internal(headers: Record<string, string>): Rendered {
  return {
    status: 500,
    headers,
    internal: true,
    body: { error: { code: 'E_INTERNAL', message: 'internal error', hint: hintOf('E_INTERNAL') } },
  };
}
