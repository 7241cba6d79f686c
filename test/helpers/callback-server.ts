/**
 * The vendor's receiving side for delivery tests: a real node:https server on 127.0.0.1 with a
 * certificate from a throwaway CA made with openssl (trust it with `caFile`). It implements the
 * protocol of docs/delivery.md — `PUT …/files/{name}` (bearer token, request id, SHA-256 header
 * checked against the bytes), `POST …/complete` — records every request, and can be told to answer
 * the next requests with faults (a status, headers such as Retry-After or Location, a dropped socket).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll } from 'vitest';
import { defaultRunner } from '../../tools/lib/exec/runner.ts';
import { tempDir } from './tmp.ts';

export interface Tls {
  caFile: string;
  cert: string;
  key: string;
  /** Another CA that did not issue the server certificate. */
  otherCaFile: string;
}

export interface Recorded {
  method: string;
  path: string;
  query: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface Fault {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Destroy the socket after reading the request instead of answering. */
  drop?: boolean;
  /** Never answer (the client's idle timeout has to end it). */
  hang?: boolean;
}

export interface CallbackServer {
  /** https://127.0.0.1:PORT/cb/{requestId}?sig=… (what a server would put in the dispatch) */
  url: string;
  origin: string;
  requests: Recorded[];
  /** Stored uploads by name (a re-delivery overwrites). */
  files: Map<string, Buffer>;
  notices: Record<string, unknown>[];
  /** Answers the next requests with these faults, in order. */
  fail(...faults: Fault[]): void;
  close(): Promise<void>;
}

let tlsOnce: Promise<Tls> | undefined;

/** A CA and a server certificate for 127.0.0.1 / localhost (made once per test file). */
export function makeTls(): Promise<Tls> {
  tlsOnce ??= (async () => {
    const dir = tempDir('signet-callback-tls-');
    const run = (args: string[]) => defaultRunner.run('openssl', args);
    const ca = async (name: string) => {
      await run([
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=${name}`,
        '-keyout',
        join(dir, `${name}.key`),
        '-out',
        join(dir, `${name}.pem`),
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign',
      ]);
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    };
    const main = await ca('callback-test-ca');
    const other = await ca('callback-other-ca');
    const ext = join(dir, 'server.cnf');
    writeFileSync(
      ext,
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
    );
    const key = join(dir, 'server.key');
    const csr = join(dir, 'server.csr');
    const cert = join(dir, 'server.pem');
    await run([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      key,
      '-out',
      csr,
    ]);
    await run([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      main.cert,
      '-CAkey',
      main.key,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
    return { caFile: main.cert, cert, key, otherCaFile: other.cert };
  })();
  return tlsOnce;
}

export async function startCallbackServer(options: {
  token: string;
  requestId: string;
}): Promise<CallbackServer> {
  const tls = await makeTls();
  const { readFileSync } = await import('node:fs');
  const requests: Recorded[] = [];
  const files = new Map<string, Buffer>();
  const notices: Record<string, unknown>[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Duplex>();
  const prefix = `/cb/${options.requestId}`;

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'https://127.0.0.1');
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const body = Buffer.concat(parts);
    requests.push({
      method: req.method ?? '',
      path: u.pathname,
      query: u.search,
      headers: req.headers,
      body,
    });
    const json = (status: number, value: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    const fault = faults.shift();
    if (fault?.hang) return;
    if (fault?.drop) {
      req.socket.destroy();
      return;
    }
    if (fault) {
      res.writeHead(fault.status ?? 500, fault.headers ?? {}).end(fault.body ?? 'injected fault');
      return;
    }
    if (req.headers.authorization !== `Bearer ${options.token}`) return json(401, { error: 'bad token' });
    if (req.headers['x-signet-request-id'] !== options.requestId) return json(400, { error: 'request id' });
    if (req.method === 'PUT' && u.pathname.startsWith(`${prefix}/files/`)) {
      const name = decodeURIComponent(u.pathname.slice(`${prefix}/files/`.length));
      const sha256 = createHash('sha256').update(body).digest('hex');
      if (req.headers['x-signet-sha256'] !== sha256) return json(422, { error: 'sha256 mismatch' });
      if (Number(req.headers['content-length']) !== body.length) return json(400, { error: 'length' });
      files.set(name, body);
      return json(201, { name, size: body.length, sha256 });
    }
    if (req.method === 'POST' && u.pathname === `${prefix}/complete`) {
      notices.push(JSON.parse(body.toString('utf8')) as Record<string, unknown>);
      return json(200, { ok: true });
    }
    return json(404, { error: 'no such endpoint' });
  };

  const server: Server = createServer(
    { cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
    (req, res) => {
      handler(req, res).catch(() => res.destroy());
    },
  );
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const origin = `https://127.0.0.1:${port}`;
  let closed = false;
  const handle: CallbackServer = {
    url: `${origin}${prefix}?sig=query-part-7d41`,
    origin,
    requests,
    files,
    notices,
    fail: (...f) => {
      faults.push(...f);
    },
    close: () =>
      new Promise<void>((ok) => {
        if (closed) return ok();
        closed = true;
        for (const s of sockets) s.destroy();
        server.close(() => ok());
      }),
  };
  afterAll(() => handle.close());
  return handle;
}
