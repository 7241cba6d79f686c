/**
 * Constant-memory file transfer. Node's fetch (undici) pulls a streamed request body eagerly and
 * `createReadStream` allocates a fresh buffer per chunk that only the GC returns: both let a 1 GB
 * upload grow the process by hundreds of MB. Here a file is read into two reused buffers
 * (double-buffered: one is on the wire while the other fills) and written to a node:http(s)
 * request with backpressure, so memory stays at a few MB for any size. `withFileBodies` plugs this
 * into Octokit (its `request.fetch`) for bodies that are a `FileBody`; every other request goes
 * through the normal fetch.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { timeoutError } from './http.ts';

const CHUNK = 1 << 20;

/**
 * Node hands a response body over in freshly allocated socket buffers that only a GC frees; V8
 * waits for ~64 MB of such external memory before collecting. A long download therefore asks for
 * a (cheap: the heap is small) collection every GC_EVERY bytes, which keeps the peak flat.
 */
const GC_EVERY = 2 << 20;
let collect: (() => void) | undefined | null;
function collectGarbage(): void {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as (o?: { type: 'minor' | 'major' }) => void;
      collect = () => gc({ type: 'minor' });
    } catch {
      collect = null;
    }
  }
  collect?.();
}

/** A file (optionally wrapped in a prefix/suffix, e.g. multipart framing) as a request body. */
export class FileBody {
  readonly path: string;
  readonly size: number;
  readonly prefix: Buffer;
  readonly suffix: Buffer;
  /** SHA-256 of the file bytes of the last complete send (set by sendFile). */
  sentSha256: string | undefined;
  constructor(
    path: string,
    size: number,
    prefix: Buffer = Buffer.alloc(0),
    suffix: Buffer = Buffer.alloc(0),
  ) {
    this.path = path;
    this.size = size;
    this.prefix = prefix;
    this.suffix = suffix;
  }
  get length(): number {
    return this.prefix.length + this.size + this.suffix.length;
  }
}

/** 1 MiB buffers reused across transfers (a fresh one per file would wait for a GC to be freed). */
const pool: Buffer[] = [];
function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafe(CHUNK);
}
function giveBuffer(buf: Buffer): void {
  if (pool.length < 8) pool.push(buf);
}

/** SHA-256 of a file through one reused buffer. */
export async function hashFileLowMem(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  const buf = takeBuffer();
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, size);
      if (bytesRead === 0) break;
      hash.update(bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    giveBuffer(buf);
    await fh.close();
  }
  return { sha256: hash.digest('hex'), size };
}

function write(req: ClientRequest, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    req.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

async function pump(req: ClientRequest, body: FileBody, stopped: () => boolean): Promise<void> {
  const hash = createHash('sha256');
  body.sentSha256 = undefined;
  if (body.prefix.length) await write(req, body.prefix);
  const fh = await open(body.path, 'r');
  const bufs = [takeBuffer(), takeBuffer()];
  let pos = 0;
  let inflight: Promise<void> | undefined;
  try {
    for (let i = 0; pos < body.size && !stopped(); i ^= 1) {
      const buf = bufs[i]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, body.size - pos), pos);
      if (bytesRead === 0) throw new Error(`${body.path} shrank while it was being uploaded`);
      pos += bytesRead;
      const chunk = bytesRead === CHUNK ? buf : buf.subarray(0, bytesRead);
      hash.update(chunk);
      // The buffer we are about to overwrite next round must be off the wire: wait for its write.
      if (inflight) await inflight;
      inflight = write(req, chunk);
      inflight.catch(() => {}); // observed here; a failure also surfaces through the request's error
    }
    // Every byte handed to the socket: this is what was sent, even if the server answers before
    // the last write's callback (a fast 201 can overtake it).
    if (pos === body.size) body.sentSha256 = hash.digest('hex');
    if (inflight && !stopped()) await inflight;
    // Recycle only when no write can still hold a buffer (the normal end); otherwise leave them to the GC.
    if (!stopped()) for (const b of bufs) giveBuffer(b);
  } finally {
    await fh.close();
  }
  if (stopped() || pos !== body.size) return;
  if (body.suffix.length) await write(req, body.suffix);
}

/** Time limits of one transfer; each fails it with ETIMEDOUT (a retryable network error). */
export interface TransferLimits {
  signal?: AbortSignal | undefined;
  /** Fail when the connection (TCP and TLS) is not open after this long. */
  connectTimeoutMs?: number | undefined;
  /** Fail when the socket is idle this long (nothing sent or received). */
  idleTimeoutMs?: number | undefined;
}

export interface SendFileOptions extends TransferLimits {
  method: string;
  headers: Record<string, string>;
  /** A file (streamed), a small in-memory body (e.g. JSON), or none. */
  body?: FileBody | Buffer | undefined;
  /** Extra trust anchors (PEM) for an https: URL, e.g. a private CA. */
  ca?: string | Buffer | undefined;
}

/** Arms the connect and idle timeouts of a node:http request. */
function limit(req: ClientRequest, limits: TransferLimits): void {
  const idle = limits.idleTimeoutMs;
  if (idle) req.setTimeout(idle, () => req.destroy(timeoutError(`no progress for ${idle} ms`)));
  const connect = limits.connectTimeoutMs;
  if (connect)
    req.once('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(
        () => req.destroy(timeoutError(`could not connect within ${connect} ms`)),
        connect,
      );
      const done = () => clearTimeout(timer);
      socket.once(isTls(socket) ? 'secureConnect' : 'connect', done);
      socket.once('close', done);
    });
}
function isTls(socket: object): boolean {
  return 'encrypted' in socket;
}

/** Sends a file with an exact Content-Length; resolves with a fetch Response (body streamed). */
export function sendFile(url: string, options: SendFileOptions): Promise<Response> {
  const u = new URL(url);
  const make = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const headers = options.body
    ? { ...options.headers, 'content-length': String(options.body.length) }
    : { ...options.headers };
  const tls = u.protocol === 'https:' && options.ca ? { ca: options.ca } : {};
  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    let responded = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      reject(new TypeError('fetch failed', { cause: e }));
    };
    const req = make(
      u,
      { method: options.method, headers, signal: options.signal, ...tls },
      (res: IncomingMessage) => {
        responded = true;
        const status = res.statusCode ?? 0;
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (Array.isArray(v)) for (const x of v) h.append(k, x);
          else if (v !== undefined) h.set(k, v);
        }
        const noBody = status === 204 || status === 304 || options.method === 'HEAD';
        if (noBody) res.resume();
        settled = true;
        resolve(
          new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
            status,
            statusText: res.statusMessage ?? '',
            headers: h,
          }),
        );
      },
    );
    req.on('error', fail);
    limit(req, options);
    if (!options.body || Buffer.isBuffer(options.body)) {
      req.end(options.body);
      return;
    }
    pump(req, options.body, () => responded || req.destroyed).then(
      () => req.end(),
      (e) => {
        req.destroy(e as Error);
        fail(e);
      },
    );
  });
}

type Fetch = typeof fetch;

/**
 * A fetch with the connect/idle limits (fetch does not tell connecting from waiting): the answer's
 * headers must come within max(connect, idle) ms, then no gap between body chunks may last idle
 * ms. Fails with ETIMEDOUT (retryable).
 */
export function withTimeouts(inner: Fetch, limits: TransferLimits): Fetch {
  const idle = limits.idleTimeoutMs;
  if (!idle) return inner;
  const first = Math.max(idle, limits.connectTimeoutMs ?? 0);
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const controller = new AbortController();
    const outer = init?.signal;
    if (outer?.aborted) controller.abort(outer.reason);
    outer?.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number, what: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(timeoutError(what)), ms);
    };
    arm(first, `no answer within ${first} ms`);
    let res: Response;
    try {
      res = await inner(input, { ...init, signal: controller.signal });
    } catch (e) {
      clearTimeout(timer);
      throw controller.signal.aborted && !outer?.aborted
        ? new TypeError('fetch failed', { cause: controller.signal.reason })
        : e;
    }
    if (!res.body) {
      clearTimeout(timer);
      return res;
    }
    arm(idle, `no progress for ${idle} ms`);
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            clearTimeout(timer);
            c.close();
            return;
          }
          arm(idle, `no progress for ${idle} ms`);
          c.enqueue(value);
        } catch (e) {
          clearTimeout(timer);
          throw controller.signal.aborted
            ? new TypeError('fetch failed', { cause: controller.signal.reason })
            : e;
        }
      },
      cancel(reason) {
        clearTimeout(timer);
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }) as Fetch;
}

/** A fetch that sends `FileBody` bodies with `sendFile` and everything else with `inner`. */
export function withFileBodies(inner: Fetch = fetch, limits: TransferLimits = {}): Fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const body = init?.body as unknown;
    if (body instanceof FileBody) {
      const headers: Record<string, string> = {};
      new Headers(init?.headers).forEach((v, k) => {
        headers[k] = v;
      });
      return sendFile(String(input instanceof Request ? input.url : input), {
        method: init?.method ?? 'POST',
        headers,
        body,
        signal: init?.signal ?? undefined,
        connectTimeoutMs: limits.connectTimeoutMs,
        idleTimeoutMs: limits.idleTimeoutMs,
      });
    }
    return inner(input, init);
  }) as Fetch;
}

/**
 * GET `url` (following up to 5 redirects; the authorization header is dropped on a change of
 * origin, like fetch) and stream the body through SHA-256, into `dest` when given. Uses node:http
 * with backpressure, so a 1 GB read-back does not pile up buffers the way fetch's body stream can.
 */
export async function downloadHashed(
  url: string,
  headers: Record<string, string>,
  dest?: string,
  limits: TransferLimits = {},
): Promise<{
  status: number;
  headers: Record<string, string>;
  text?: string;
  sha256?: string;
  size?: number;
}> {
  let current = new URL(url);
  let hdrs = { ...headers };
  for (let hop = 0; hop < 6; hop++) {
    const make = current.protocol === 'https:' ? httpsRequest : httpRequest;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = make(current, { method: 'GET', headers: hdrs, signal: limits.signal }, resolve);
      req.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      limit(req, limits);
      req.end();
    });
    const status = res.statusCode ?? 0;
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : v;
    if ([301, 302, 303, 307, 308].includes(status) && h['location']) {
      res.resume();
      const next = new URL(h['location'], current);
      if (next.origin !== current.origin) {
        const { authorization: _drop, ...rest } = hdrs;
        hdrs = rest;
      }
      current = next;
      continue;
    }
    if (status < 200 || status >= 300) {
      const parts: Buffer[] = [];
      for await (const c of res) parts.push(c as Buffer);
      return { status, headers: h, text: Buffer.concat(parts).toString('utf8').slice(0, 2000) };
    }
    const hash = createHash('sha256');
    let size = 0;
    const out = dest ? (await import('node:fs')).createWriteStream(dest) : undefined;
    try {
      let sinceGc = 0;
      for await (const chunk of res as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        sinceGc += chunk.length;
        if (sinceGc >= GC_EVERY) {
          sinceGc = 0;
          collectGarbage();
        }
        if (out && !out.write(chunk)) await new Promise<void>((r) => out.once('drain', r));
      }
    } catch (e) {
      throw new TypeError('fetch failed', { cause: e });
    } finally {
      if (out) await new Promise<void>((r) => out.end(r));
    }
    const expected = Number(h['content-length'] ?? -1);
    if (expected >= 0 && size !== expected)
      throw new TypeError('fetch failed', {
        cause: new Error(`body truncated: ${size} of ${expected} bytes`),
      });
    return { status, headers: h, sha256: hash.digest('hex'), size };
  }
  throw new TypeError('fetch failed', { cause: new Error('too many redirects') });
}
