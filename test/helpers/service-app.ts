/**
 * The HTTP adapter over the fake ServiceApi, with one token per scope, a captured Fastify log,
 * and `call` — app.inject() plus the OpenAPI contract check of the exchange (every request and
 * response the adapter tests make goes through it).
 */
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { Scope } from '../../tools/lib/service-store/types.ts';
import { buildServiceApp, type ServiceAppOptions } from '../../tools/service/app.ts';
import { FakeServiceApi } from './fake-service-api.ts';
import { ServiceContract } from './service-contract.ts';

export const SCOPE_LIST: Scope[] = [
  'sites:read',
  'sites:write',
  'installers:read',
  'releases:write',
  'sign',
  'admin',
];

export interface CallOptions {
  method: string;
  url: string;
  token?: Scope | 'none' | string;
  headers?: Record<string, string>;
  json?: unknown;
  /** A raw body (a Buffer is sent as application/octet-stream unless headers say otherwise). */
  body?: Buffer | string;
  /** The request is meant to break the contract (hostile input): only the response is checked. */
  invalidRequest?: boolean;
}

export interface Harness {
  app: FastifyInstance;
  api: FakeServiceApi;
  contract: ServiceContract;
  tokens: Record<Scope, string>;
  logs: string[];
  call(o: CallOptions): Promise<{
    status: number;
    headers: Record<string, string>;
    body: string;
    raw: Buffer;
    // biome-ignore lint/suspicious/noExplicitAny: the tests read answers freely
    json: () => any;
  }>;
  close(): Promise<void>;
}

export const contract = new ServiceContract();

export async function serviceHarness(options: Partial<ServiceAppOptions> = {}): Promise<Harness> {
  const api = new FakeServiceApi();
  const logs: string[] = [];
  const app = await buildServiceApp(api, {
    maxUploadBytes: 64 * 1024,
    rateLimit: { max: 10_000, windowMs: 60_000 },
    trustProxy: false,
    logger: { level: 'debug', stream: { write: (line) => void logs.push(line) } },
    ...options,
  });
  await app.ready();
  const tokens = {} as Record<Scope, string>;
  for (const s of SCOPE_LIST)
    tokens[s] = (await api.createToken({ name: `t-${s.replace(':', '-')}`, scopes: [s] })).token;

  return {
    app,
    api,
    contract,
    tokens,
    logs,
    async call(o) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const bearer =
        o.token === undefined || o.token === 'none'
          ? undefined
          : ((tokens as Record<string, string>)[o.token] ?? o.token);
      if (bearer) headers['authorization'] ??= `Bearer ${bearer}`;
      let payload: string | Buffer | undefined;
      if (o.json !== undefined) {
        payload = JSON.stringify(o.json);
        headers['content-type'] ??= 'application/json';
      } else if (o.body !== undefined) {
        payload = o.body;
        if (Buffer.isBuffer(o.body)) headers['content-type'] ??= 'application/octet-stream';
      }
      const r = await app.inject({
        method: o.method as 'GET',
        url: o.url,
        headers,
        ...(payload !== undefined ? { payload } : {}),
      });
      const result = contract.check({
        method: o.method,
        url: o.url,
        headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
        ...(o.json !== undefined ? { json: o.json } : {}),
        response: { status: r.statusCode, headers: r.headers, body: r.body },
      });
      expect(result.response, `${o.method} ${o.url} → ${r.statusCode} ${r.body.slice(0, 300)}`).toEqual([]);
      if (!o.invalidRequest) expect(result.request, `${o.method} ${o.url} request`).toEqual([]);
      else expect(r.statusCode, `${o.method} ${o.url} is invalid: ${r.body}`).toBeGreaterThanOrEqual(400);
      return {
        status: r.statusCode,
        headers: r.headers as Record<string, string>,
        body: r.body,
        raw: r.rawPayload,
        json: () => JSON.parse(r.body),
      };
    },
    async close() {
      await app.close();
      await api.close();
    },
  };
}
