/**
 * A local remote-signing server for tests: POST a file with `Authorization: Bearer <token>`, get
 * the signed file back (signed with osslsigncode and the given key). Fault modes: `error` (500),
 * `slow` (answers after delayMs), `unsigned` (echoes the input), `wrong-cert` (signs with another
 * key), `corrupt` (signs, then flips a byte past the signature's reach). 401 on a bad token.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { defaultRunner } from '../../tools/lib/exec/runner.ts';

export type SigningServerMode =
  | 'ok'
  | 'error'
  | 'slow'
  | 'unsigned'
  | 'wrong-cert'
  | 'corrupt'
  | 'forbidden'
  /** Signs (with the right key) a different binary than the one it received. */
  | 'swapped';

export interface SigningKey {
  cert: string;
  key: string;
}

export interface SigningServer {
  url: string;
  mode: SigningServerMode;
  readonly requests: number;
  /** Authorization headers received (to check the token was sent, and only there). */
  readonly authHeaders: string[];
  failNext(n: number, mode: Exclude<SigningServerMode, 'ok'>): void;
  close(): Promise<void>;
}

export async function startSigningServer(options: {
  token: string;
  key: SigningKey;
  wrongKey: SigningKey;
  delayMs?: number;
  /** Serve HTTPS with a certificate for 127.0.0.1 issued by this CA. */
  tls?: { caCert: string; caKey: string };
}): Promise<SigningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'signet-signsrv-'));
  let n = 0;
  let requests = 0;
  let failCount = 0;
  let failMode: Exclude<SigningServerMode, 'ok'> = 'error';
  const authHeaders: string[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const state = { mode: 'ok' as SigningServerMode };

  const sign = async (body: Buffer, name: string, key: SigningKey): Promise<Buffer> => {
    const id = ++n;
    const ext = /\.msi$/i.test(name) ? '.msi' : '.exe';
    const input = join(dir, `in${id}${ext}`);
    const output = join(dir, `out${id}${ext}`);
    writeFileSync(input, body);
    try {
      const args = ['sign', '-certs', key.cert, '-key', key.key, '-h', 'sha256', '-n', name];
      if (ext === '.msi') args.push('-add-msi-dse');
      await defaultRunner.run('osslsigncode', [...args, '-in', input, '-out', output], { outputs: [output] });
      return readFileSync(output);
    } finally {
      rmSync(input, { force: true });
      rmSync(output, { force: true });
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      authHeaders.push(String(req.headers.authorization ?? ''));
      let mode = state.mode;
      if (failCount > 0) {
        failCount--;
        mode = failMode;
      }
      if (req.headers.authorization !== `Bearer ${options.token}`) {
        res.writeHead(401, { 'content-type': 'text/plain' }).end('invalid token');
        return;
      }
      if (mode === 'forbidden') {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('not allowed');
        return;
      }
      if (mode === 'error') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
        return;
      }
      const body = Buffer.concat(chunks);
      const name = decodeURIComponent(String(req.headers['x-signet-file-name'] ?? 'file.exe'));
      const answer = async () => {
        try {
          let out: Buffer;
          if (mode === 'unsigned') out = body;
          else if (mode === 'wrong-cert') out = await sign(body, name, options.wrongKey);
          else if (mode === 'swapped') {
            const other = Buffer.from(body);
            const at = 0x400 + (randomBytes(1)[0] as number);
            other[at] = (other[at] as number) ^ 0x01;
            out = await sign(other, name, options.key);
          } else {
            out = await sign(body, name, options.key);
            if (mode === 'corrupt') {
              out = Buffer.from(out);
              const at = 0x400 + (randomBytes(1)[0] as number);
              out[at] = (out[at] as number) ^ 0x5a;
            }
          }
          res
            .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length })
            .end(out);
        } catch (e) {
          res.writeHead(500).end(String((e as Error).message));
        }
      };
      if (mode === 'slow') {
        const t = setTimeout(() => {
          timers.delete(t);
          void answer();
        }, options.delayMs ?? 60_000);
        timers.add(t);
      } else void answer();
    });
  };
  let server: Server;
  if (options.tls) {
    const { cert, key } = await serverCertificate(dir, options.tls);
    server = createHttpsServer({ cert, key }, handler) as unknown as Server;
  } else server = createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const handle: SigningServer = {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}/sign`,
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    get requests() {
      return requests;
    },
    authHeaders,
    failNext(count, mode) {
      failCount = count;
      failMode = mode;
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          ok();
        });
      }),
  };
  afterAll(() => handle.close());
  return handle;
}

/** A TLS server certificate for 127.0.0.1 (SAN IP, EKU serverAuth) issued by the given CA. */
async function serverCertificate(
  dir: string,
  ca: { caCert: string; caKey: string },
): Promise<{ cert: Buffer; key: Buffer }> {
  const ext = join(dir, 'server-ext.cnf');
  writeFileSync(
    ext,
    '[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=localhost\n',
  );
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.pem');
  await defaultRunner.run('openssl', [
    'req',
    '-config',
    ext,
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    '/CN=localhost',
  ]);
  await defaultRunner.run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.caCert,
    '-CAkey',
    ca.caKey,
    '-set_serial',
    '0x5151',
    '-days',
    '2',
    '-extfile',
    ext,
    '-extensions',
    'v3',
    '-out',
    cert,
  ]);
  return { cert: readFileSync(cert), key: readFileSync(key) };
}
