/**
 * A local RFC 3161 timestamp authority for demos and tests: `openssl ts -reply` behind a small
 * HTTP server on 127.0.0.1. Fault modes let tests exercise the TSA fallback: `down` (the
 * connection is dropped), `error` (HTTP 500), `slow` (answers after `delayMs`), `garbage`
 * (HTTP 200 with random bytes). Never for release: its certificate is a dev certificate.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type TsaMode = 'ok' | 'down' | 'error' | 'slow' | 'garbage';

export interface LocalTsaOptions {
  /** TSA certificate (critical EKU timeStamping), PEM. */
  cert: string;
  key: string;
  /** Extra certificates sent with replies (the CA), PEM. */
  chain?: string;
  mode?: TsaMode;
  /** For `slow`: how long to wait before answering (default 60 s). */
  delayMs?: number;
  port?: number;
  openssl?: string;
}

export interface LocalTsa {
  url: string;
  /** Requests received so far (any mode). */
  readonly requests: number;
  mode: TsaMode;
  /** Fail the next `n` requests with `mode`, then answer normally. */
  failNext(n: number, mode: Exclude<TsaMode, 'ok'>): void;
  close(): Promise<void>;
}

const TSA_CONF = `[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
serial = SERIAL_FILE
crypto_device = builtin
signer_digest = sha256
default_policy = 1.3.6.1.4.1.4146.2.3
digests = sha1, sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`;

/** The serial file content openssl accepts: hex with whole bytes ("0100", not "100"). */
export function serialHex(n: number): string {
  const hex = n.toString(16);
  return hex.length % 2 ? `0${hex}` : hex;
}

export async function startLocalTsa(options: LocalTsaOptions): Promise<LocalTsa> {
  let n = 0;
  let requests = 0;
  let failCount = 0;
  let failMode: Exclude<TsaMode, 'ok'> = 'error';
  const sockets = new Set<import('node:net').Socket>();
  const timers = new Set<NodeJS.Timeout>();
  // Each reply gets its own folder, config and serial file (openssl rewrites the serial file), so
  // concurrent requests run in parallel, serials stay unique, and nothing stays behind between
  // requests (a test or a dev service that ends without close() leaves no folder).
  const reply = (query: Buffer): Promise<Buffer> =>
    new Promise<Buffer>((resolvePromise, reject) => {
      const id = ++n;
      const dir = mkdtempSync(join(tmpdir(), 'signet-tsa-'));
      const q = join(dir, `q${id}.tsq`);
      const r = join(dir, `r${id}.tsr`);
      const serial = join(dir, `serial${id}`);
      const cnf = join(dir, `tsa${id}.cnf`);
      try {
        writeFileSync(serial, `${serialHex(id)}\n`);
        writeFileSync(cnf, TSA_CONF.replace('SERIAL_FILE', serial));
        writeFileSync(q, query);
      } catch (e) {
        rmSync(dir, { recursive: true, force: true });
        reject(e);
        return;
      }
      const args = [
        'ts',
        '-reply',
        '-config',
        cnf,
        '-queryfile',
        q,
        '-signer',
        options.cert,
        '-inkey',
        options.key,
        '-out',
        r,
      ];
      if (options.chain) args.push('-chain', options.chain);
      execFile(options.openssl ?? 'openssl', args, (err) => {
        try {
          if (err) reject(err);
          else resolvePromise(readFileSync(r));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    });

  const state = { mode: options.mode ?? ('ok' as TsaMode) };
  const server: Server = createServer((req, res) => {
    requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let mode = state.mode;
      if (failCount > 0) {
        failCount--;
        mode = failMode;
      }
      if (mode === 'down') {
        req.socket.destroy();
        return;
      }
      if (mode === 'error') {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('TSA unavailable');
        return;
      }
      if (mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/timestamp-reply' });
        res.end(randomBytes(512));
        return;
      }
      const answer = () =>
        reply(Buffer.concat(chunks)).then(
          (body) => {
            res.writeHead(200, {
              'content-type': 'application/timestamp-reply',
              'content-length': body.length,
            });
            res.end(body);
          },
          () => {
            res.writeHead(400, { 'content-type': 'text/plain' });
            res.end('bad request');
          },
        );
      if (mode === 'slow') {
        const t = setTimeout(() => {
          timers.delete(t);
          void answer();
        }, options.delayMs ?? 60_000);
        timers.add(t);
      } else void answer();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(options.port ?? 0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    get requests() {
      return requests;
    },
    get mode() {
      return state.mode;
    },
    set mode(m: TsaMode) {
      state.mode = m;
    },
    failNext(count, mode) {
      failCount = count;
      failMode = mode;
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => ok());
      }),
  };
}
