import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { isNetworkError } from './http.ts';
import { downloadHashed, FileBody, hashFileLowMem, sendFile, withFileBodies } from './transport.ts';

const dir = tempDir('signet-transport-');
const data = randomBytes(3 * (1 << 20) + 12345); // not a multiple of the chunk size
const file = join(dir, 'data.bin');
writeFileSync(file, data);
const sha = createHash('sha256').update(data).digest('hex');

let server: Server;
let base = '';
const seen: { headers: IncomingMessage['headers']; body: Buffer; url: string }[] = [];
beforeAll(async () => {
  server = createServer(async (req, res) => {
    if (req.url === '/early') {
      // answer before reading the body, then close: the sender must stop, not hang
      res.writeHead(413, { connection: 'close' }).end('too large');
      req.socket.end();
      return;
    }
    if (req.url?.startsWith('/redirect')) {
      res
        .writeHead(302, { location: `http://localhost:${(server.address() as AddressInfo).port}/file` })
        .end();
      return;
    }
    if (req.url === '/file') {
      seen.push({ headers: req.headers, body: Buffer.alloc(0), url: req.url });
      res.writeHead(200, { 'content-length': String(data.length) }).end(data);
      return;
    }
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    seen.push({ headers: req.headers, body: Buffer.concat(parts), url: req.url ?? '' });
    res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('transport', () => {
  it('hashes a file like sha256sum', async () => {
    expect(await hashFileLowMem(file)).toEqual({ sha256: sha, size: data.length });
  });

  it('sends a file byte for byte with an exact Content-Length, framed, and reports the sent hash', async () => {
    const body = new FileBody(file, data.length, Buffer.from('<<'), Buffer.from('>>'));
    const res = await sendFile(`${base}/up`, { method: 'POST', headers: { 'x-test': '1' }, body });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ ok: true });
    const got = seen.at(-1)!;
    expect(got.headers['content-length']).toBe(String(data.length + 4));
    expect(got.body.equals(Buffer.concat([Buffer.from('<<'), data, Buffer.from('>>')]))).toBe(true);
    expect(body.sentSha256).toBe(sha);
  });

  it('withFileBodies routes FileBody through sendFile and everything else through fetch', async () => {
    const f = withFileBodies(fetch);
    const r1 = await f(`${base}/a`, {
      method: 'POST',
      body: new FileBody(file, data.length) as unknown as RequestInit['body'],
    });
    expect(r1.status).toBe(201);
    expect(seen.at(-1)!.body.length).toBe(data.length);
    const r2 = await f(`${base}/b`, { method: 'POST', body: 'plain' });
    expect(r2.status).toBe(201);
    expect(seen.at(-1)!.body.toString()).toBe('plain');
  });

  it('stops sending when the server answers early, and surfaces the answer', async () => {
    const body = new FileBody(file, data.length);
    const res = await sendFile(`${base}/early`, { method: 'POST', headers: {}, body }).catch((e) => e);
    if (res instanceof Response) expect(res.status).toBe(413);
    else expect(isNetworkError(res)).toBe(true);
    expect(body.sentSha256).toBeUndefined();
  });

  it('a refused connection is a network error (retryable)', async () => {
    const e = await sendFile('http://127.0.0.1:1/x', {
      method: 'POST',
      headers: {},
      body: new FileBody(file, data.length),
    }).catch((x) => x);
    expect(isNetworkError(e)).toBe(true);
  });

  it('downloads hashed, follows a redirect, and drops the token when the origin changes', async () => {
    const out = join(dir, 'copy.bin');
    const r = await downloadHashed(`${base}/redirect`, { authorization: 'token secret-xyz' }, out);
    expect(r).toMatchObject({ status: 200, sha256: sha, size: data.length });
    expect(seen.at(-1)!.headers.authorization).toBeUndefined(); // 127.0.0.1 → localhost is another origin
    expect((await hashFileLowMem(out)).sha256).toBe(sha);
    const same = await downloadHashed(`${base}/file`, { authorization: 'token secret-xyz' });
    expect(same.sha256).toBe(sha);
    expect(seen.at(-1)!.headers.authorization).toBe('token secret-xyz');
  });
});

describe('transport races', () => {
  it('records the sent hash even when the 201 overtakes the last write callback', async () => {
    // The server answers as soon as it has counted every byte, before reading to the end event.
    const fast = createServer((req, res) => {
      let n = 0;
      const want = Number(req.headers['content-length']);
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n >= want && !res.headersSent) res.writeHead(201).end('{}');
      });
    });
    await new Promise<void>((r) => fast.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(fast.address() as AddressInfo).port}/`;
      for (let i = 0; i < 20; i++) {
        const body = new FileBody(file, data.length);
        const res = await sendFile(url, { method: 'POST', headers: {}, body });
        expect(res.status).toBe(201);
        expect(body.sentSha256).toBe(sha);
      }
    } finally {
      await new Promise<void>((r) => fast.close(() => r()));
    }
  });
});
