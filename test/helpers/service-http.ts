/**
 * The real service over real HTTP for the e2e, fault and bench tiers: `createService` over the
 * service fixture behind the real Fastify adapter on a loopback port (`startHttpService`), or
 * `signet serve` as a child process (`spawnServe`); and `HttpClient`, a node:http client whose
 * every exchange is checked against the committed OpenAPI document, timing the first byte and
 * the last.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { CreateServiceOptions, ServiceApi } from '../../tools/lib/app/service/index.ts';
import type { Scope } from '../../tools/lib/service-store/types.ts';
import { buildServiceApp } from '../../tools/service/app.ts';
import { ServiceContract } from './service-contract.ts';
import type { ServiceFixture } from './service-fixture.ts';

const BIN = join(import.meta.dirname, '..', '..', 'tools', 'cli', 'bin.ts');

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers freely
  json(): any;
  /** Milliseconds to the response head, and to its last byte. */
  ttfbMs: number;
  totalMs: number;
}

export interface HttpCall {
  method: string;
  /** Path and query. */
  path: string;
  /** A bearer token (undefined: none). */
  token?: string | undefined;
  headers?: Record<string, string>;
  json?: unknown;
  /** A raw body: bytes, or a stream sent chunked (application/octet-stream unless headers say otherwise). */
  body?: Buffer | Readable;
  /** The request is meant to break the contract (hostile input): only the response is checked. */
  invalidRequest?: boolean;
  /** Skip the contract check (load tests check a sample). */
  unchecked?: boolean;
}

export const keepAlive = new Agent({ keepAlive: true, maxSockets: 256 });

/** One HTTP exchange over node:http, body collected. */
export function rawRequest(base: string, o: HttpCall): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers['authorization'] ??= `Bearer ${o.token}`;
  let payload: Buffer | Readable | undefined;
  if (o.json !== undefined) {
    payload = Buffer.from(JSON.stringify(o.json));
    headers['content-type'] ??= 'application/json';
  } else if (o.body !== undefined) {
    payload = o.body;
    headers['content-type'] ??= 'application/octet-stream';
  }
  if (Buffer.isBuffer(payload)) headers['content-length'] = String(payload.length);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(o.path, base), { method: o.method, headers, agent: keepAlive }, (res) => {
      const ttfbMs = performance.now() - t0;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(parts);
        const text = body.toString('utf8');
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k] = [v].flat().join(', ');
        resolve({
          status: res.statusCode ?? 0,
          headers: h,
          body,
          text,
          json: () => JSON.parse(text),
          ttfbMs,
          totalMs: performance.now() - t0,
        });
      });
    });
    req.on('error', reject);
    if (payload === undefined) req.end();
    else if (Buffer.isBuffer(payload)) req.end(payload);
    else {
      payload.on('error', (e) => req.destroy(e));
      payload.pipe(req);
    }
  });
}

export class HttpClient {
  readonly base: string;
  readonly contract: ServiceContract;
  /** Every error body (4xx/5xx) answered, for canary scans. */
  readonly errorBodies: string[] = [];

  constructor(base: string, contract = new ServiceContract()) {
    this.base = base;
    this.contract = contract;
  }

  async call(o: HttpCall): Promise<HttpAnswer> {
    const r = await rawRequest(this.base, o);
    if (r.status >= 400) this.errorBodies.push(r.text);
    if (o.unchecked) return r;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(o.headers ?? {})) headers[k.toLowerCase()] = v;
    if (o.token) headers['authorization'] ??= `Bearer ${o.token}`;
    if (o.json !== undefined) headers['content-type'] ??= 'application/json';
    else if (o.body !== undefined) headers['content-type'] ??= 'application/octet-stream';
    const isBinary = !/json|text/.test(r.headers['content-type'] ?? '');
    const result = this.contract.check({
      method: o.method,
      url: o.path,
      headers,
      ...(o.json !== undefined ? { json: o.json } : {}),
      // a binary body is checked for its media type only (the checker parses JSON bodies)
      response: { status: r.status, headers: r.headers, body: isBinary && r.body.length ? 'x' : r.text },
    });
    expect(result.response, `${o.method} ${o.path} → ${r.status} ${r.text.slice(0, 300)}`).toEqual([]);
    if (!o.invalidRequest) expect(result.request, `${o.method} ${o.path} request`).toEqual([]);
    else
      expect(r.status, `${o.method} ${o.path} is invalid: ${r.text.slice(0, 300)}`).toBeGreaterThanOrEqual(
        400,
      );
    return r;
  }
}

export interface HttpService {
  api: ServiceApi;
  app: FastifyInstance;
  base: string;
  http: HttpClient;
  /** Fastify's JSON log lines and the service's own log (its `log` port). */
  fastifyLog: string[];
  serviceLog: string[];
  admin: string;
  tokens: Record<Scope, string>;
  close(): Promise<void>;
}

export const SCOPES: Scope[] = [
  'sites:read',
  'sites:write',
  'installers:read',
  'releases:write',
  'sign',
  'admin',
];

/** `createService` over the fixture behind the real adapter on 127.0.0.1 (a free port). */
export async function startHttpService(
  fx: ServiceFixture,
  extra: Partial<CreateServiceOptions> = {},
  maxUploadBytes = 256 * 1024 * 1024,
): Promise<HttpService> {
  const fastifyLog: string[] = [];
  const serviceLog: string[] = [];
  const api = await fx.start({
    log: (level, message) => void serviceLog.push(`${level} ${message}`),
    ...extra,
  });
  const app = await buildServiceApp(api, {
    maxUploadBytes,
    rateLimit: { max: 1_000_000, windowMs: 60_000 },
    trustProxy: false,
    logger: { level: 'debug', stream: { write: (line) => void fastifyLog.push(line) } },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${addr.port}`;
  const tokens = {} as Record<Scope, string>;
  for (const s of SCOPES)
    tokens[s] = (await api.createToken({ name: `http-${s.replace(':', '-')}`, scopes: [s] })).token;
  return {
    api,
    app,
    base,
    http: new HttpClient(base),
    fastifyLog,
    serviceLog,
    admin: tokens.admin,
    tokens,
    async close() {
      await app.close();
      await api.close();
    },
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ServeProcess {
  child: ChildProcess;
  pid: number;
  base: string;
  port: number;
  /** stdout + stderr so far (Fastify's log and Signet's). */
  output(): string;
  exited: Promise<number | null>;
  /** kill -9, then wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** Peak resident set (VmHWM) in bytes, from /proc. */
  peakRss(): number;
}

/** The fixture's config as a `signet serve` project folder (signet.config.json in `cwd`). */
export function writeServeConfig(
  fx: ServiceFixture,
  cwd: string,
  service: Record<string, unknown> = {},
): void {
  const config = JSON.parse(readFileSync(fx.configPath, 'utf8')) as { service: Record<string, unknown> };
  config.service = { ...config.service, ...service };
  writeFileSync(join(cwd, 'signet.config.json'), JSON.stringify(config, null, 2));
}

/** Runs the CLI to completion in `cwd` (token administration). */
export function signetCli(
  cwd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** `signet serve token create --json` in `cwd`: the token. */
export async function createTokenCli(cwd: string, name: string, scopes: Scope[]): Promise<string> {
  const r = await signetCli(cwd, [
    'serve',
    'token',
    'create',
    '--name',
    name,
    '--scope',
    ...scopes,
    '--json',
  ]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { token: string }).token;
}

/** Starts `signet serve` in `cwd` on a free loopback port and waits for /healthz. */
export async function spawnServe(cwd: string, port?: number, timeoutMs = 60_000): Promise<ServeProcess> {
  const p = port ?? (await freePort());
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', `127.0.0.1:${p}`], {
    cwd,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let done = false;
  void exited.then(() => (done = true));
  const base = `http://127.0.0.1:${p}`;
  const t0 = Date.now();
  for (;;) {
    if (done) throw new Error(`signet serve exited before it answered:\n${out}`);
    if (Date.now() - t0 > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`signet serve did not answer in ${timeoutMs} ms:\n${out}`);
    }
    try {
      const r = await rawRequest(base, { method: 'GET', path: '/healthz' });
      if (r.status === 200) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  return {
    child,
    pid,
    base,
    port: p,
    output: () => out,
    exited,
    async kill9() {
      if (!done) child.kill('SIGKILL');
      await exited;
      keepAlive.destroy();
    },
    async stop() {
      if (!done) child.kill('SIGTERM');
      await exited;
    },
    peakRss() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb * 1024;
    },
  };
}

/** Every file under `dir` (none when it does not exist). */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [],
  );
}

/** The number after `name ` in Prometheus text (0 when absent). */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * The site.json inside a site's NSIS installer: the overlay record of an incrementally built one
 * (`…[site.json][meta 128][S u32][128 u32][1 u32][CRC u32]"SIGNETSJ"`, ending at the certificate
 * table; see templates/nsis/site-installer.nsi), else the file 7-Zip extracts.
 */
export function installerSiteJson(exe: string, scratch: string): Record<string, unknown> {
  const bytes = readFileSync(exe);
  const end = bytes.lastIndexOf('SIGNETSJ');
  if (end >= 24) {
    const size = bytes.readUInt32LE(end - 16);
    const metaLen = bytes.readUInt32LE(end - 12);
    if (metaLen === 128 && size > 0 && size < 16 * 1024 * 1024) {
      const start = end - 16 - metaLen - size;
      return JSON.parse(bytes.subarray(start, start + size).toString('utf8'));
    }
  }
  const x = join(scratch, `x-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`);
  execFileSync('7z', ['x', '-y', `-o${x}`, exe], { stdio: 'ignore' });
  const p = filesUnder(x).find((f) => f.endsWith('site.json'));
  if (!p) throw new Error(`no site.json in ${exe}`);
  return JSON.parse(readFileSync(p, 'utf8'));
}
