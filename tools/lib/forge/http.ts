/**
 * What both HTTP forges share: retries with backoff (5xx, 429 with Retry-After, network errors),
 * the mapping of 401/403/404 to coded errors that name the missing scope, and streamed file
 * bodies. Nothing here logs a token: headers are never printed, messages go through the redactor.
 */
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import type { ForgeKind } from './types.ts';

export interface RetryOptions {
  /** Attempts after the first one. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Injected in tests to avoid real waiting; records the delays asked for. */
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 5, baseDelayMs: 500, maxDelayMs: 60_000 };

/** Time limits of forge requests (publish.timeouts in the config). */
export interface Timeouts {
  /** Opening the connection (TCP and TLS). */
  connectMs: number;
  /** No byte sent or received for this long (a server that accepts and never answers). */
  idleMs: number;
  /** One operation, every retry included: no attempt starts or runs past it. */
  deadlineMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 30_000, idleMs: 120_000, deadlineMs: 60 * 60_000 };

/** The error a transfer fails with when a connect or idle timeout fires (a retryable network error). */
export function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

/** A non-2xx answer (or a transport failure, status 0) from a forge. */
export class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly operation: string;
  constructor(
    operation: string,
    status: number,
    headers: Record<string, string>,
    body: string,
    cause?: unknown,
  ) {
    super(`${operation}: HTTP ${status || 'network error'}${body ? ` ${body.slice(0, 300)}` : ''}`, {
      cause,
    });
    this.name = 'HttpError';
    this.status = status;
    this.headers = headers;
    this.body = body;
    this.operation = operation;
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

/** True for transport failures (reset, refused, DNS, timeouts) anywhere in the cause chain. */
export function isNetworkError(e: unknown): boolean {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 6; depth++) {
    const err = cur as { code?: string; name?: string; message?: string; cause?: unknown };
    if (err.code && NETWORK_CODES.has(err.code)) return true;
    if (err.name === 'TypeError' && /fetch failed|terminated|other side closed/i.test(err.message ?? ''))
      return true;
    if (/socket hang up|other side closed|ECONNRESET|terminated/i.test(err.message ?? '')) return true;
    cur = err.cause;
  }
  return false;
}

/** Delay asked for by Retry-After (seconds or an HTTP date), or by GitHub's rate-limit reset. */
export function retryAfterMs(headers: Record<string, string>, now = Date.now()): number | undefined {
  const ra = headers['retry-after'];
  if (ra !== undefined) {
    if (/^\d+(\.\d+)?$/.test(ra.trim())) return Math.ceil(Number(ra) * 1000);
    const at = Date.parse(ra);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  if (headers['x-ratelimit-remaining'] === '0' && headers['x-ratelimit-reset']) {
    const reset = Number(headers['x-ratelimit-reset']) * 1000;
    if (Number.isFinite(reset)) return Math.max(0, reset - now);
  }
  return undefined;
}

export function isRetryable(e: unknown): boolean {
  if (e instanceof HttpError) {
    if (e.status === 0) return true;
    if (e.status >= 500 || e.status === 429 || e.status === 408) return true;
    // GitHub's secondary rate limit answers 403 with Retry-After or an exhausted quota.
    if (e.status === 403 && retryAfterMs(e.headers) !== undefined) return true;
    return false;
  }
  return isNetworkError(e);
}

const SCOPES: Record<ForgeKind, string> = {
  github:
    'a token with `contents: write` on the repository (GITHUB_TOKEN with `permissions: contents: write`, or a fine-grained PAT with Contents read/write)',
  gitea: 'a token with the `write:repository` scope, from an account with write access to the repository',
  dir: 'write access to the folder',
};

/** Maps a final HTTP failure to the coded error a user can act on. */
export function forgeError(kind: ForgeKind, repo: string, e: unknown): SignetError {
  if (e instanceof SignetError) return e;
  if (e instanceof HttpError) {
    const details = { forge: kind, repository: repo, operation: e.operation, status: e.status };
    if (e.status === 401)
      return new SignetError(
        'E_FORGE_AUTH',
        `${kind}: ${e.operation} was refused (401): the token is missing, invalid or expired`,
        {
          details,
          hint: `Provide ${SCOPES[kind]} in the configured token variable.`,
        },
      );
    if (e.status === 403)
      return new SignetError(
        'E_FORGE_AUTH',
        `${kind}: ${e.operation} is forbidden (403) for this token on ${repo}`,
        {
          details,
          hint:
            kind === 'github'
              ? `The token lacks permission: it needs ${SCOPES.github}. In a workflow add \`permissions: { contents: write }\` to the job; for forks or org policies check Settings → Actions → Workflow permissions.`
              : `The token lacks permission: it needs ${SCOPES.gitea}. Also check that releases are enabled for the repository (Settings → Units).`,
        },
      );
    if (e.status === 404)
      return new SignetError('E_FORGE_NOT_FOUND', `${kind}: ${e.operation} found nothing (404) for ${repo}`, {
        details,
        hint:
          kind === 'github'
            ? 'Check owner/name and the API URL (GitHub Enterprise: https://HOST/api/v3). GitHub answers 404, not 403, when the token cannot see a private repository: give it access to this repository.'
            : 'Check owner/name and the API URL (https://HOST/api/v1 or the instance URL), that the repository has releases enabled, and that the token can read it.',
      });
    return new SignetError(
      'E_FORGE_FAILED',
      `${kind}: ${e.operation} failed: HTTP ${e.status || 'network error'}${e.body ? ` — ${e.body.slice(0, 200)}` : ''}`,
      {
        details,
      },
    );
  }
  return new SignetError('E_FORGE_FAILED', `${kind}: ${(e as Error)?.message ?? String(e)}`, {
    details: { forge: kind, repository: repo },
  });
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs `fn` again on retryable failures with exponential backoff (jittered) or the server's Retry-After. */
export async function withRetry<T>(
  operation: string,
  options: RetryOptions & { deadlineMs?: number | undefined },
  fn: (attempt: number, signal: AbortSignal) => Promise<T>,
  onRetry?: (e: unknown, attempt: number) => Promise<void> | void,
): Promise<T> {
  const sleep = options.sleep ?? defaultSleep;
  const deadlineMs = options.deadlineMs;
  const controller = new AbortController();
  const end = deadlineMs === undefined ? Infinity : Date.now() + deadlineMs;
  const timer =
    deadlineMs === undefined
      ? undefined
      : setTimeout(() => controller.abort(timeoutError(`${operation}: deadline passed`)), deadlineMs);
  timer?.unref?.();
  const gaveUp = (e: unknown) =>
    new SignetError(
      'E_FORGE_TIMEOUT',
      `${operation}: no success within ${deadlineMs} ms (every retry included)`,
      {
        details: { operation, deadlineMs },
        cause: e,
      },
    );
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt, controller.signal);
      } catch (e) {
        if (controller.signal.aborted) throw gaveUp(e);
        if (attempt >= options.retries || !isRetryable(e)) throw e;
        const asked = e instanceof HttpError ? retryAfterMs(e.headers) : undefined;
        const backoff = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
        const delay =
          asked !== undefined
            ? Math.min(asked, options.maxDelayMs)
            : backoff / 2 + Math.random() * (backoff / 2);
        const what =
          e instanceof HttpError ? (e.status ? `HTTP ${e.status}` : 'network error') : 'network error';
        if (Date.now() + delay >= end) throw gaveUp(e);
        logger.warn(
          `${operation}: ${what}; retry ${attempt + 1}/${options.retries} in ${Math.round(delay)} ms`,
        );
        await sleep(delay);
        if (onRetry) await onRetry(e, attempt);
      }
    }
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export function headersOf(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    out[k.toLowerCase()] = v;
  });
  return out;
}

const TYPES: Record<string, string> = {
  '.exe': 'application/vnd.microsoft.portable-executable',
  '.dll': 'application/vnd.microsoft.portable-executable',
  '.msi': 'application/x-msi',
  '.zip': 'application/zip',
  '.json': 'application/json',
  '.md': 'text/markdown',
  '.txt': 'text/plain',
  '.sig': 'application/pgp-signature',
};

export function contentTypeFor(name: string): string {
  if (name === 'SHA256SUMS') return 'text/plain';
  const dot = name.lastIndexOf('.');
  return (dot >= 0 && TYPES[name.slice(dot).toLowerCase()]) || 'application/octet-stream';
}
