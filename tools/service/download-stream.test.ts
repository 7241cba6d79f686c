/**
 * The download body path on its own (Fastify + the real HTTP client): files of many chunks, whole
 * and in ranges that start and end inside chunks, slow readers (the two buffers wait for the
 * socket), many at once (the buffer pool reused), and readers that go away mid-body — every byte
 * that arrives is the file's, and the server keeps serving.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import type { InstallerFile } from '../lib/app/service/types.ts';
import { sendInstaller } from './download.ts';

const SIZE = 3 * 1024 * 1024 + 12_345; // 12+ chunks of 256 KiB, the last one partial
let bytes: Buffer;
let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  const dir = tempDir('signet-dl-');
  bytes = randomBytes(SIZE);
  const path = join(dir, 'blob');
  writeFileSync(path, bytes);
  const file: InstallerFile = {
    kind: 'exe',
    fileName: 'agent.exe',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: SIZE,
    release: { version: '1.0.0', channel: 'stable' },
    siteCode: 'S',
    keyVersion: 1,
    open: () => Readable.from([bytes]),
    path,
  };
  app = Fastify();
  app.get('/f', (req, reply) => sendInstaller(req, reply, file));
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
});

interface Got {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
}

/** GET /f; `slow` pauses the reader after each chunk; `abortAfter` bytes destroys the request. */
function get(headers: Record<string, string> = {}, o: { slow?: boolean; abortAfter?: number } = {}) {
  return new Promise<Got>((resolve, reject) => {
    const req = request(`${base}/f`, { headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        parts.push(c);
        n += c.length;
        if (o.abortAfter !== undefined && n >= o.abortAfter) {
          req.destroy();
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) });
        } else if (o.slow) {
          res.pause();
          setTimeout(() => res.resume(), 2);
        }
      });
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }),
      );
      res.on('error', reject);
    });
    req.on('error', (e) => (o.abortAfter === undefined ? reject(e) : undefined));
    req.end();
  });
}

describe('download bodies', () => {
  it('the whole file, to a fast and to a slow reader', async () => {
    for (const slow of [false, true]) {
      const r = await get({}, { slow });
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe(String(SIZE));
      expect(r.body.equals(bytes)).toBe(true);
    }
  });

  it('ranges that start and end inside chunks, and the last bytes', async () => {
    for (const [h, start, end] of [
      ['bytes=100000-700000', 100000, 700000],
      ['bytes=262143-262144', 262143, 262144],
      [`bytes=-300000`, SIZE - 300000, SIZE - 1],
      [`bytes=${SIZE - 1}-`, SIZE - 1, SIZE - 1],
    ] as const) {
      const r = await get({ range: h });
      expect(r.status, h).toBe(206);
      expect(r.headers['content-range'], h).toBe(`bytes ${start}-${end}/${SIZE}`);
      expect(r.body.equals(bytes.subarray(start, end + 1)), h).toBe(true);
    }
  });

  it('readers that go away mid-body leave the server serving exact bytes to 24 readers at once', async () => {
    await Promise.all(Array.from({ length: 8 }, (_, i) => get({}, { abortAfter: 300_000 * (i + 1) })));
    const all = await Promise.all(Array.from({ length: 24 }, (_, i) => get({}, { slow: i % 3 === 0 })));
    for (const r of all) expect(r.body.equals(bytes)).toBe(true);
  });
});
