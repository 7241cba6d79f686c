/**
 * One HTTP exchange with the callback: the forge transport's retry policy (5xx, 408, 429 with
 * Retry-After, network errors), a bounded read of the answer, and the final failure as a coded
 * error — 401/403 at once (E_DELIVER_AUTH), a redirect refused (never followed: the token goes to
 * the callback's origin only), an untrusted TLS certificate not retried.
 */
import { SignetError } from '../errors.ts';
import { HttpError, headersOf, isRetryable, type RetryOptions, withRetry } from '../forge/http.ts';
import { redact } from '../redact.ts';

export interface Ctx {
  callback: URL;
  token: string;
  requestId: string;
  ca: Buffer | undefined;
  idleTimeoutMs: number;
  retry: RetryOptions;
}

/** One HTTP exchange with the forge retry policy; the final failure as a coded error. */
export async function send(ctx: Ctx, what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await withRetry(what, ctx.retry, async () => {
      try {
        await fn();
      } catch (e) {
        throw tlsError(ctx, what, e) ?? e;
      }
    });
  } catch (e) {
    if (e instanceof SignetError) throw e;
    const status = e instanceof HttpError ? e.status : 0;
    const why =
      e instanceof HttpError
        ? `HTTP ${status}${e.body ? ` — ${e.body.slice(0, 200)}` : ''}`
        : `network error: ${causeMessage(e)}`;
    const tries = isRetryable(e) ? ` after ${ctx.retry.retries + 1} attempts` : '';
    throw new SignetError('E_DELIVER_FAILED', `${what} to ${ctx.callback.origin} failed${tries}: ${why}`, {
      details: { origin: ctx.callback.origin, status },
      cause: e,
    });
  }
}

/** Reads a bounded answer; a non-2xx answer becomes an HttpError (retried) or a coded error. */
export async function answer(ctx: Ctx, what: string, res: Response): Promise<string> {
  const text = await boundedText(res);
  const s = res.status;
  if (s >= 200 && s < 300) return text;
  const h = headersOf(res);
  if (s >= 300 && s < 400) {
    const to = h['location'] ? safeOrigin(h['location'], ctx.callback) : 'nowhere';
    throw new SignetError(
      'E_DELIVER_FAILED',
      `${what}: ${ctx.callback.origin} answered a redirect (HTTP ${s} to ${to}); redirects are not followed, so the token goes only to the callback's origin`,
      { details: { status: s }, hint: 'Give the final URL as the callback.' },
    );
  }
  if (s === 401 || s === 403)
    throw new SignetError('E_DELIVER_AUTH', `${what}: ${ctx.callback.origin} refused the token (HTTP ${s})`, {
      details: { status: s, origin: ctx.callback.origin },
    });
  throw new HttpError(what, s, h, redact(text.slice(0, 300)).trim());
}

async function boundedText(res: Response, limit = 65_536): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size < limit) parts.push(value);
    size += value.length;
  }
  return Buffer.concat(parts).toString('utf8').slice(0, limit);
}

function safeOrigin(location: string, base: URL): string {
  try {
    return new URL(location, base).origin;
  } catch {
    return 'an invalid location';
  }
}

/** A certificate the callback's TLS does not prove is not worth retrying: name the fix instead. */
function tlsError(ctx: Ctx, what: string, e: unknown): SignetError | undefined {
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code))
      return new SignetError(
        'E_DELIVER_FAILED',
        `${what}: the TLS certificate of ${ctx.callback.origin} is not trusted (${code}); nothing was sent`,
        {
          details: { origin: ctx.callback.origin, tls: code },
          hint: 'Give the CA that issued the callback server certificate with --ca-file (action input ca-file), or use a publicly trusted certificate.',
        },
      );
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function causeMessage(e: unknown): string {
  let cur: unknown = e;
  let last = String(e);
  for (let depth = 0; cur && depth < 4; depth++) {
    last = (cur as Error).message ?? last;
    cur = (cur as { cause?: unknown }).cause;
  }
  return redact(last);
}
