/**
 * The delivery protocol (docs/delivery.md): what travels to the vendor's callback and the checks
 * made before anything does. Pure — no I/O — so settings and tests can use it without the transport.
 *
 *   PUT  {callback}/files/{name}   the file's bytes; Authorization: Bearer, X-Signet-Request-Id,
 *                                  X-Signet-Sha256, Content-Length   → 2xx
 *   POST {callback}/complete       the completion notice (JSON, DeliveryNotice) → 2xx
 */
import { SignetError } from '../errors.ts';

export const NOTICE_SCHEMA = 'signet.delivery/v1';
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** A file name as it appears in the upload path (letters, digits and `. _ + -`, no leading dot). */
export const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$/;
export const ERROR_CODE = /^[A-Za-z0-9_.:-]{1,64}$/;
export const HEADER = {
  requestId: 'x-signet-request-id',
  sha256: 'x-signet-sha256',
  siteCode: 'x-signet-site-code',
} as const;

export type DeliveryStatus = 'success' | 'failure';

export interface DeliveredFile {
  name: string;
  size: number;
  sha256: string;
  siteCode?: string;
}

export interface RunInfo {
  repository: string | null;
  runId: string | null;
  runAttempt: string | null;
  runUrl: string | null;
}

export interface DeliveryNotice {
  schema: typeof NOTICE_SCHEMA;
  requestId: string;
  status: DeliveryStatus;
  files: DeliveredFile[];
  run: RunInfo;
  error?: { code: string; message: string };
}

const LOOPBACK_NAMES = new Set(['localhost', '[::1]']);

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The callback as a URL, refused unless https: (http: only to loopback) and free of credentials. */
export function checkCallback(url: string, field = '--callback'): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SignetError('E_DELIVER_URL', `${field} is not a URL`, { details: { field } });
  }
  if (u.username || u.password)
    throw new SignetError(
      'E_DELIVER_URL',
      `${field} carries credentials (a user name or password before @); refusing to send them anywhere`,
      { details: { field } },
    );
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u.hostname)))
    throw new SignetError(
      'E_DELIVER_URL',
      `${field} must be https:// (plain http only to a loopback host), got ${u.protocol}//${u.host}`,
      { details: { field, protocol: u.protocol } },
    );
  if (u.hash)
    throw new SignetError('E_DELIVER_URL', `${field} must not have a #fragment`, { details: { field } });
  return u;
}

/** `{callback}/{sub}`: the sub-path appended to the callback's path, its query kept. */
export function endpoint(callback: URL, ...segments: string[]): string {
  const u = new URL(callback.href);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${segments.map(encodeURIComponent).join('/')}`;
  return u.href;
}

/** What may be shown of the callback: origin and path, never the query. */
export function displayCallback(callback: URL): string {
  return `${callback.origin}${callback.pathname}`;
}

export function checkRequestId(id: string | undefined, field = '--request-id'): string {
  if (!id || !REQUEST_ID.test(id))
    throw new SignetError(
      'E_INPUT_INVALID',
      `${field} must be 1–128 characters of letters, digits and . _ : - (the id the server chose), got ${JSON.stringify(id ?? '')}`,
      { details: { field } },
    );
  return id;
}

/** Run coordinates of the GitHub/Gitea job, when there is one. */
export function runInfo(env: NodeJS.ProcessEnv = process.env): RunInfo {
  const repository = env['GITHUB_REPOSITORY'] || null;
  const runId = env['GITHUB_RUN_ID'] || null;
  const server = (env['GITHUB_SERVER_URL'] || 'https://github.com').replace(/\/+$/, '');
  return {
    repository,
    runId,
    runAttempt: env['GITHUB_RUN_ATTEMPT'] || null,
    runUrl: repository && runId ? `${server}/${repository}/actions/runs/${runId}` : null,
  };
}
