import { describe, expect, it } from 'vitest';
import { SignetError } from '../errors.ts';
import { clearSecrets, registerSecret } from '../redact.ts';
import { forgeError, HttpError, isNetworkError, isRetryable, retryAfterMs, withRetry } from './http.ts';

describe('retry policy', () => {
  it('reads Retry-After as seconds or as an HTTP date, and GitHub rate-limit resets', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs({ 'retry-after': '3' }, now)).toBe(3000);
    expect(retryAfterMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }, now)).toBe(5000);
    expect(
      retryAfterMs({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 7) }, now),
    ).toBe(7000);
    expect(retryAfterMs({}, now)).toBeUndefined();
  });

  it('retries 5xx, 429, 408, network errors and secondary rate limits; not 4xx', () => {
    const h = (status: number, headers: Record<string, string> = {}) =>
      new HttpError('op', status, headers, '');
    for (const s of [500, 502, 503, 429, 408, 0]) expect(isRetryable(h(s)), String(s)).toBe(true);
    for (const s of [400, 401, 404, 409, 422]) expect(isRetryable(h(s)), String(s)).toBe(false);
    expect(isRetryable(h(403))).toBe(false);
    expect(isRetryable(h(403, { 'retry-after': '60' }))).toBe(true);
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(isNetworkError(new TypeError('fetch failed', { cause: reset }))).toBe(true);
    expect(isNetworkError(new Error('nope'))).toBe(false);
  });

  it('backs off exponentially, honours Retry-After (capped), and gives up after the retries', async () => {
    const delays: number[] = [];
    let calls = 0;
    const e = await withRetry(
      'op',
      { retries: 3, baseDelayMs: 100, maxDelayMs: 10_000, sleep: async (ms) => void delays.push(ms) },
      async () => {
        calls++;
        throw new HttpError('op', calls === 2 ? 429 : 503, calls === 2 ? { 'retry-after': '120' } : {}, '');
      },
    ).catch((x) => x);
    expect(calls).toBe(4);
    expect(e.status).toBe(503);
    expect(delays[1]).toBe(10_000); // Retry-After 120 s, capped at maxDelayMs
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[2]).toBeGreaterThanOrEqual(200);
    expect(delays[2]).toBeLessThanOrEqual(400);
  });

  it('maps final failures to coded errors without the token', () => {
    registerSecret('tok-3f9a1c77d0');
    const e = forgeError(
      'github',
      'acme/agent',
      new HttpError('upload a', 403, {}, '{"message":"denied for tok-3f9a1c77d0"}'),
    );
    expect(e).toBeInstanceOf(SignetError);
    expect(e.code).toBe('E_FORGE_AUTH');
    expect(e.hint).toMatch(/contents: write/);
    expect(forgeError('gitea', 'a/b', new HttpError('x', 404, {}, '')).code).toBe('E_FORGE_NOT_FOUND');
    const failed = forgeError('gitea', 'a/b', new HttpError('x', 500, {}, 'boom tok-3f9a1c77d0'));
    expect(failed.code).toBe('E_FORGE_FAILED');
    expect(JSON.stringify(failed.toJSON())).not.toContain('tok-3f9a1c77d0');
    clearSecrets();
  });
});
