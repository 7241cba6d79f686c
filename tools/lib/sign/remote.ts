/**
 * The remote signing backend: a server holds the key; Signet POSTs the file with
 * `Authorization: Bearer <token>` and the response body is the signed file. Timeout per request,
 * retries with exponential backoff on 5xx, timeouts and network errors; 401/403 → "signing token
 * rejected" without retry. What comes back is verified like any other output (frame.ts) before
 * it is accepted. Plain http is accepted for loopback servers only.
 */
import { createReadStream, createWriteStream, readFileSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { redact } from '../redact.ts';
import { resolveSecret, type SecretRef } from '../secrets.ts';
import type { ProduceInput } from './frame.ts';
import { backoffDelays, sleep } from './retry.ts';

export interface RemoteSettings {
  url: string;
  token: SecretRef;
  timeoutMs: number;
  retries: number;
  retryWaitMs: number;
  caFile?: string;
  /** The CA bundle itself (from an env:/file: reference); wins over caFile. */
  ca?: Buffer;
  digest?: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function checkRemoteUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SignetError('E_CONFIG_INVALID', `remote signing url is not a URL: ${url}`);
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && LOOPBACK.has(u.hostname)) return u;
  throw new SignetError(
    'E_CONFIG_INVALID',
    `remote signing url must be https:// (http only for loopback): ${url}`,
    {
      hint: 'The token and the binary travel to this server: use HTTPS.',
    },
  );
}

/** Pure: the request headers (the token is added by the caller at send time). */
export function remoteHeaders(
  p: Pick<ProduceInput, 'description' | 'nest' | 'size'>,
  digest?: string,
): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'content-length': String(p.size),
    'x-signet-file-name': encodeURIComponent(p.description),
    'user-agent': 'signet',
  };
  if (p.nest) h['x-signet-nest'] = '1';
  if (digest) h['x-signet-digest'] = digest;
  return h;
}

type Outcome = { kind: 'ok' } | { kind: 'retry'; why: string } | { kind: 'fatal'; error: SignetError };

async function once(u: URL, s: RemoteSettings, token: string, p: ProduceInput): Promise<Outcome> {
  const headers = { ...remoteHeaders(p, s.digest), authorization: `Bearer ${token}` };
  const send = u.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  return new Promise<Outcome>((resolveOutcome) => {
    let settled = false;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (o.kind !== 'ok') rmSync(p.output, { force: true });
      resolveOutcome(o);
    };
    const req = send(
      u,
      {
        method: 'POST',
        headers,
        ...(u.protocol === 'https:' && (s.ca || s.caFile) ? { ca: s.ca ?? readFileSync(s.caFile!) } : {}),
      },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (status === 200) {
          pipeline(res, createWriteStream(p.output)).then(
            () => done({ kind: 'ok' }),
            (e: Error) => done({ kind: 'retry', why: `response interrupted: ${e.message}` }),
          );
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          if (chunks.length < 16) chunks.push(c);
        });
        res.on('error', () => undefined);
        res.on('end', () => {
          const body = redact(Buffer.concat(chunks).toString('utf8').slice(0, 300)).trim();
          if (status === 401 || status === 403) {
            done({
              kind: 'fatal',
              error: new SignetError(
                'E_SIGN_TOKEN_REJECTED',
                `signing token rejected (HTTP ${status}) by ${u.origin}`,
                {
                  details: { status, url: u.origin },
                },
              ),
            });
          } else if (status >= 500 || status === 429 || status === 408) {
            done({ kind: 'retry', why: `HTTP ${status}${body ? `: ${body}` : ''}` });
          } else {
            done({
              kind: 'fatal',
              error: new SignetError(
                'E_SIGN_REMOTE_FAILED',
                `signing server answered HTTP ${status}${body ? `: ${body}` : ''}`,
                {
                  details: { status, url: u.origin },
                },
              ),
            });
          }
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`timed out after ${s.timeoutMs} ms`));
    }, s.timeoutMs);
    req.on('error', (e) => done({ kind: 'retry', why: redact(e.message) }));
    createReadStream(p.input)
      .on('error', (e) => req.destroy(e))
      .pipe(req);
  });
}

export async function remoteProduce(s: RemoteSettings, p: ProduceInput): Promise<void> {
  const u = checkRemoteUrl(s.url);
  const token = resolveSecret(s.token, 'signing token');
  const size = statSync(p.input).size;
  const delays = [0, ...backoffDelays(s.retries, s.retryWaitMs)];
  const failures: string[] = [];
  for (const wait of delays) {
    if (wait) await sleep(wait);
    const o = await once(u, s, token, { ...p, size });
    if (o.kind === 'ok') return;
    if (o.kind === 'fatal') throw o.error;
    failures.push(o.why);
    logger.warn(
      `signing server ${u.origin} failed for ${basename(p.input)} (${o.why}); ${failures.length < delays.length ? 'retrying' : 'giving up'}`,
    );
  }
  throw new SignetError(
    'E_SIGN_REMOTE_FAILED',
    `signing server ${u.origin} failed ${failures.length} time(s): ${failures.join(' | ')}`,
    { details: { url: u.origin, attempts: failures.length } },
  );
}
