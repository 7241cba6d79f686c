/**
 * Serving a built installer (authenticated route or download link) with HTTP's download
 * semantics: `ETag: "<sha256>"` and If-None-Match → 304, `Content-Disposition` with the
 * fingerprinted file name (RFC 6266; filename* for non-ASCII), `Accept-Ranges: bytes` and one
 * `Range: bytes=a-b | a- | -n` → 206 (If-Range honoured), an unsatisfiable range → 416, several
 * ranges → the whole file (200), HEAD → the headers alone.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { InstallerFile } from '../lib/app/service/types.ts';
import { HttpError } from './errors.ts';

export type RangeResult =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/** RFC 9110 §14: one byte range of a `size`-byte file; anything malformed or multiple → full. */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return { kind: 'full' };
  const spec = m[1]!.trim();
  if (spec.includes(',')) return { kind: 'full' };
  const r = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
  if (!r || (r[1] === '' && r[2] === '')) return { kind: 'full' };
  if (r[1] === '') {
    const n = Number(r[2]);
    if (!Number.isSafeInteger(n)) return { kind: 'full' };
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(r[1]);
  const last = r[2] === '' ? undefined : Number(r[2]);
  if (!Number.isSafeInteger(start) || (last !== undefined && !Number.isSafeInteger(last)))
    return { kind: 'full' };
  if (last !== undefined && last < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  const end = last ?? size - 1;
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

/** `If-None-Match` matches the entity tag (weak comparison, `*` matches any). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .includes(etag);
}

/** RFC 6266 / RFC 8187: an ASCII fallback name plus filename* when the name is not plain ASCII. */
export function contentDisposition(fileName: string): string {
  const base = fileName.replace(/^.*[\\/]/, '');
  const ascii = base.replace(/[^\x20-\x7e]|["\\%;]/g, '_') || 'download';
  const plain = ascii === base;
  const encoded = encodeURIComponent(base).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return plain
    ? `attachment; filename="${ascii}"`
    : `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

export function sendInstaller(
  request: FastifyRequest,
  reply: FastifyReply,
  file: InstallerFile,
): FastifyReply {
  const etag = `"${file.sha256}"`;
  reply
    .header('etag', etag)
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'private, no-store')
    .header('x-content-type-options', 'nosniff')
    .header('x-signet-sha256', file.sha256)
    .header('x-signet-key-version', String(file.keyVersion))
    .header('x-signet-release', `${file.release.version} (${file.release.channel})`);
  if (etagMatches(request.headers['if-none-match'], etag)) return reply.code(304).send();
  reply.header('content-disposition', contentDisposition(file.fileName));
  const ifRange = [request.headers['if-range']].flat()[0];
  const rangeHeader = ifRange === undefined || ifRange.trim() === etag ? request.headers.range : undefined;
  const range = parseRange(rangeHeader, file.size);
  if (range.kind === 'unsatisfiable')
    throw new HttpError(
      'E_RANGE_UNSATISFIABLE',
      `the range ${rangeHeader} is outside the ${file.size}-byte file`,
      {
        status: 416,
        headers: { 'content-range': `bytes */${file.size}` },
      },
    );
  reply.type('application/octet-stream');
  const head = request.method === 'HEAD';
  if (range.kind === 'partial') {
    reply
      .code(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${file.size}`)
      .header('content-length', String(range.end - range.start + 1));
    return head ? reply.send() : streamed(reply, file, range.start, range.end);
  }
  reply.code(200).header('content-length', String(file.size));
  return head || file.size === 0 ? reply.send() : streamed(reply, file, 0, file.size - 1);
}

/**
 * Sends the verified file itself: the headers at once (a disk read queued behind every other
 * download in libuv's thread pool would hold them back), then the bytes through two buffers that
 * take turns — one is read while the other is written, and a buffer is read into again only when
 * the socket took all of its bytes. fs streams allocate a new buffer for every chunk instead; at
 * hundreds of MB/s those buffers are what the garbage collector spends the server's CPU on (a
 * third of it, measured), and what delays everyone's first byte. Buffers go back to a small pool.
 * A read error after the headers cuts the body short (its Content-Length tells the client).
 */
function streamed(reply: FastifyReply, file: InstallerFile, start: number, end: number): FastifyReply {
  const res = reply.hijack().raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  res.flushHeaders();
  void pump(res, file.path, start, end);
  return reply;
}

const CHUNK = 128 * 1024;
/** Idle buffers (at most 64: 8 MiB). */
const idle: Buffer[] = [];

async function pump(res: ServerResponse, path: string, start: number, end: number): Promise<void> {
  let fh: FileHandle | undefined;
  const bufs = [idle.pop() ?? Buffer.allocUnsafeSlow(CHUNK), idle.pop() ?? Buffer.allocUnsafeSlow(CHUNK)];
  // a write's promise never rejects: a failed write (the reader left) is noted and ends the loop
  const inFlight: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  let failed: Error | undefined;
  let clean = false;
  try {
    fh = await open(path, 'r');
    for (let pos = start, turn = 0; pos <= end; turn ^= 1) {
      await inFlight[turn];
      if (failed || res.destroyed) return void res.destroy(failed);
      const buf = bufs[turn]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, end + 1 - pos), pos);
      if (bytesRead === 0) throw new Error(`${path} is shorter than its record`);
      pos += bytesRead;
      inFlight[turn] = new Promise((resolve) => {
        res.write(buf.subarray(0, bytesRead), (err) => {
          if (err) failed = err;
          resolve();
        });
      });
    }
    await Promise.all(inFlight);
    if (failed || res.destroyed) return void res.destroy(failed);
    clean = true;
    res.end();
  } catch (e) {
    res.destroy(e as Error);
  } finally {
    await fh?.close().catch(() => undefined);
    // a buffer may still be referenced by a write that never completed: only a clean end frees them
    if (clean) for (const b of bufs) if (idle.length < 64) idle.push(b);
  }
}
