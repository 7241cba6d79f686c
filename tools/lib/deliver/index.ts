/**
 * Delivery of per-site installers to the vendor's server, and nowhere else: each file is PUT to
 * `{callback}/files/{name}` (streamed from disk, hashed while sent, the SHA-256 announced in a
 * header), then a completion notice is POSTed to `{callback}/complete` carrying the request id the
 * server chose. `status: failure` sends only the notice. Retries (5xx, 408, 429 with Retry-After,
 * network errors) and streaming are the forge transport's; 401/403 stop at once; redirects are
 * never followed, so the token reaches the callback's origin only. Protocol: docs/delivery.md.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { SignetError } from '../errors.ts';
import { expandFiles } from '../forge/assets.ts';
import { DEFAULT_RETRY, type RetryOptions } from '../forge/http.ts';
import { FileBody, hashFileLowMem, sendFile } from '../forge/transport.ts';
import { logger } from '../log.ts';
import { redact } from '../redact.ts';
import { answer, type Ctx, send } from './exchange.ts';
import {
  checkCallback,
  checkRequestId,
  type DeliveredFile,
  type DeliveryNotice,
  type DeliveryStatus,
  displayCallback,
  ERROR_CODE,
  endpoint,
  FILE_NAME,
  HEADER,
  NOTICE_SCHEMA,
  type RunInfo,
  runInfo,
} from './protocol.ts';
import { resolveToken, type TokenSource } from './token.ts';

export interface DeliverOptions {
  callback: string;
  token: TokenSource;
  requestId: string;
  status?: DeliveryStatus | undefined;
  /** With status failure: what failed (defaults: E_BUILD_FAILED, "the build failed"). */
  error?: { code?: string | undefined; message?: string | undefined } | undefined;
  /** Paths or globs relative to cwd (status success only). */
  files?: readonly string[] | undefined;
  cwd: string;
  /** PEM file of a private CA that issued the callback's TLS certificate. */
  caFile?: string | undefined;
  idleTimeoutMs?: number | undefined;
  retry?: RetryOptions | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Called with the token as soon as it is known (an action masks it in the runner log). */
  onSecret?: ((secret: string) => void) | undefined;
  /** How the inputs are called where they came from (CLI flags or action inputs), for errors. */
  fields?: { callback?: string; requestId?: string; files?: string } | undefined;
}

export interface DeliverResult {
  requestId: string;
  status: DeliveryStatus;
  /** Origin and path of the callback (never its query). */
  callback: string;
  delivered: number;
  files: DeliveredFile[];
  run: RunInfo;
}

interface Local extends DeliveredFile {
  path: string;
}

const USER_AGENT = 'signet-deliver';
const MAX_MESSAGE = 2000;

export async function deliver(o: DeliverOptions): Promise<DeliverResult> {
  const f = { callback: '--callback', requestId: '--request-id', files: 'FILE', ...o.fields };
  const callback = checkCallback(o.callback, f.callback);
  const requestId = checkRequestId(o.requestId, f.requestId);
  const status = o.status ?? 'success';
  // A failure notice is the last word the server gets: a stray file list must not stop it.
  if (status === 'failure' && o.files?.length)
    logger.warn(`a failure notice carries no files: ${f.files} ignored`);
  const patterns = status === 'failure' ? [] : (o.files ?? []);
  if (status === 'success' && !patterns.length)
    throw new SignetError('E_INPUT_INVALID', `name at least one file to deliver (${f.files})`);
  if (status === 'success' && (o.error?.code || o.error?.message))
    throw new SignetError('E_INPUT_INVALID', 'an error code or message goes with status failure only');
  const error = status === 'failure' ? failureOf(o.error) : undefined;
  const locals = status === 'success' ? localFiles(patterns, o.cwd) : [];
  const ca = o.caFile ? readCa(o.caFile) : undefined;
  const token = await resolveToken(o.token, o.env, o.cwd);
  o.onSecret?.(token);
  const ctx: Ctx = {
    callback,
    token,
    requestId,
    ca,
    idleTimeoutMs: o.idleTimeoutMs ?? 60_000,
    retry: o.retry ?? DEFAULT_RETRY,
  };
  const run = runInfo(o.env);
  const shown = displayCallback(callback);
  const files: DeliveredFile[] = [];
  try {
    for (const file of locals) {
      const { sha256, size } = await hashFileLowMem(file.path);
      const hashed = { ...file, sha256, size };
      await upload(ctx, hashed);
      files.push(publicOf(hashed));
      logger.info(`delivered ${file.name} (${size} bytes, sha256 ${sha256}) to ${shown}`);
    }
  } catch (e) {
    await noticeAfterFailure(ctx, run, e);
    throw e;
  }
  await notify(ctx, { schema: NOTICE_SCHEMA, requestId, status, files, run, ...(error ? { error } : {}) });
  logger.info(`${status} notice for request ${requestId} accepted by ${shown}`);
  return { requestId, status, callback: shown, delivered: files.length, files, run };
}

function failureOf(e: DeliverOptions['error']): { code: string; message: string } {
  const code = e?.code || 'E_BUILD_FAILED';
  if (!ERROR_CODE.test(code))
    throw new SignetError(
      'E_INPUT_INVALID',
      `the error code must be 1–64 letters, digits and _ . : -, got ${JSON.stringify(code)}`,
    );
  const message = (e?.message?.trim() || 'the build failed').slice(0, MAX_MESSAGE);
  return { code, message };
}

function readCa(path: string): Buffer {
  try {
    const pem = readFileSync(path);
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('not PEM');
    return pem;
  } catch {
    throw new SignetError('E_INPUT_INVALID', `ca file ${path} is not a readable PEM certificate file`);
  }
}

function publicOf(f: Local): DeliveredFile {
  return { name: f.name, size: f.size, sha256: f.sha256, ...(f.siteCode ? { siteCode: f.siteCode } : {}) };
}

/** The files, named as they will be uploaded; site codes from the installer manifests beside them. */
function localFiles(patterns: readonly string[], cwd: string): Local[] {
  const paths = expandFiles(patterns, cwd);
  const problems: string[] = [];
  const seen = new Set<string>();
  const sites = new Map<string, Map<string, string>>();
  const out: Local[] = [];
  for (const path of paths) {
    const name = basename(path);
    try {
      if (statSync(path).isDirectory()) continue; // a glob also matches folders: not delivered
    } catch {
      problems.push(`${path} does not exist`);
      continue;
    }
    if (!FILE_NAME.test(name))
      problems.push(`${JSON.stringify(name)}: names are letters, digits and . _ + - (no leading dot)`);
    if (seen.has(name)) problems.push(`${name} is given twice (names must be unique)`);
    seen.add(name);
    const dir = dirname(path);
    if (!sites.has(dir)) sites.set(dir, manifestSites(dir));
    const siteCode = sites.get(dir)?.get(name);
    out.push({ path, name, size: 0, sha256: '', ...(siteCode ? { siteCode } : {}) });
  }
  if (!out.length && !problems.length) problems.push('the files given are all folders');
  if (problems.length)
    throw new SignetError('E_INPUT_INVALID', `cannot deliver these files:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  return out;
}

/** name → siteCode from `<site>.manifest.json` files (written by site-installers) in a folder. */
function manifestSites(dir: string): Map<string, string> {
  const map = new Map<string, string>();
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.manifest.json'));
  } catch {
    return map;
  }
  for (const n of names) {
    try {
      const m = JSON.parse(readFileSync(`${dir}/${n}`, 'utf8')) as {
        site?: { siteCode?: unknown };
        outputs?: { name?: unknown }[];
      };
      const code = m.site?.siteCode;
      if (typeof code !== 'string') continue;
      map.set(n, code);
      for (const out of m.outputs ?? []) if (typeof out.name === 'string') map.set(out.name, code);
    } catch {
      // not a site manifest: no site code for its neighbours
    }
  }
  return map;
}

function headers(ctx: Ctx, contentType: string): Record<string, string> {
  return {
    authorization: `Bearer ${ctx.token}`,
    'content-type': contentType,
    'user-agent': USER_AGENT,
    [HEADER.requestId]: ctx.requestId,
  };
}

const what = (file: Local) => `upload of ${file.name}`;

async function upload(ctx: Ctx, file: Local): Promise<void> {
  const url = endpoint(ctx.callback, 'files', file.name);
  const h = {
    ...headers(ctx, 'application/octet-stream'),
    [HEADER.sha256]: file.sha256,
    ...(file.siteCode ? { [HEADER.siteCode]: file.siteCode } : {}),
  };
  await send(ctx, what(file), async () => {
    const body = new FileBody(file.path, file.size);
    const res = await sendFile(url, {
      method: 'PUT',
      headers: h,
      body,
      ca: ctx.ca,
      idleTimeoutMs: ctx.idleTimeoutMs,
    });
    const text = await answer(ctx, what(file), res);
    if (body.sentSha256 === undefined)
      throw new SignetError(
        'E_DELIVER_FAILED',
        `${what(file)}: the server answered before the whole file was sent`,
      );
    if (body.sentSha256 !== file.sha256)
      throw new SignetError('E_DELIVER_FAILED', `${file.name} changed while it was being uploaded`, {
        hint: 'Nothing may write the files while they are delivered; deliver again.',
      });
    checkAck(file, text);
  });
}

async function notify(ctx: Ctx, notice: DeliveryNotice): Promise<void> {
  const url = endpoint(ctx.callback, 'complete');
  // The message may quote a tool's output: redacted now that the token is known too.
  const error = notice.error && { ...notice.error, message: redact(notice.error.message) };
  const body = Buffer.from(JSON.stringify({ ...notice, ...(error ? { error } : {}) }));
  await send(ctx, `${notice.status} notice`, async () => {
    const res = await sendFile(url, {
      method: 'POST',
      headers: headers(ctx, 'application/json'),
      body,
      ca: ctx.ca,
      idleTimeoutMs: ctx.idleTimeoutMs,
    });
    await answer(ctx, `${notice.status} notice`, res);
  });
}

/** After a failed upload, the server still learns of it (best effort: the step fails either way). */
async function noticeAfterFailure(ctx: Ctx, run: RunInfo, e: unknown): Promise<void> {
  if (e instanceof SignetError && e.code === 'E_DELIVER_AUTH') return;
  const err = e instanceof SignetError ? e : new SignetError('E_DELIVER_FAILED', String(e));
  try {
    await notify(ctx, {
      schema: NOTICE_SCHEMA,
      requestId: ctx.requestId,
      status: 'failure',
      files: [],
      run,
      error: { code: err.code, message: redact(err.message).slice(0, MAX_MESSAGE) },
    });
    logger.warn(`failure notice for request ${ctx.requestId} sent after the failed delivery`);
  } catch (x) {
    logger.warn(`the failure notice could not be sent either: ${(x as Error).message}`);
  }
}

/** A 2xx that reports what it stored (`{"sha256": …, "size": …}`) must report these bytes. */
function checkAck(file: Local, text: string): void {
  let ack: { sha256?: unknown; size?: unknown };
  try {
    ack = JSON.parse(text) as typeof ack;
  } catch {
    return;
  }
  if (!ack || typeof ack !== 'object') return;
  const badSha = typeof ack.sha256 === 'string' && ack.sha256.toLowerCase() !== file.sha256;
  const badSize = typeof ack.size === 'number' && ack.size !== file.size;
  if (badSha || badSize)
    throw new SignetError(
      'E_DELIVER_FAILED',
      `the server stored different bytes for ${file.name} (it reports ${badSha ? `sha256 ${String(ack.sha256)}` : `${String(ack.size)} bytes`})`,
      { details: { name: file.name } },
    );
}

/** Title, rows and file table of a delivery (the action's job summary): never the token or URL query. */
export function deliveryReport(r: DeliverResult): {
  title: string;
  rows: [string, string][];
  table: { header: string[]; rows: string[][] };
} {
  return {
    title:
      r.status === 'success'
        ? `Delivered ${r.delivered} file(s) to the vendor's server`
        : "Failure notice delivered to the vendor's server",
    rows: [
      ['request id', r.requestId],
      ['status', r.status],
      ['to', r.callback],
      ['run', r.run.runUrl ?? '—'],
    ],
    table: {
      header: ['file', 'size', 'SHA-256', 'site'],
      rows: r.files.map((f) => [f.name, String(f.size), f.sha256, f.siteCode ?? '—']),
    },
  };
}
