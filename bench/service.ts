/**
 * `signet serve` on loopback, bounded: a real service process (pinned release profile, local TSA,
 * SQLite, blobs) driven over HTTP.
 *
 *  1. 1,000 sites registered (PUT, 50 at a time).
 *  2. The first download of a release, alone (its shared parts and one site's exe + msi, signed,
 *     timestamped, verified; the median of three releases) against `signet site-installers` for one
 *     site with the same agent and profile (the median of three runs). Goal ≤ 1.1×. And a later
 *     site of the same release (the site alone), for comparison.
 *  3. 200 concurrent cold downloads across 100 sites (exe and msi of each).
 *  4. 2,000 warm downloads at 50 concurrent. Goal: time to first byte p95 ≤ 20 ms. They are driven
 *     by one `curl --parallel` (the token in a 0600 config file): at several hundred MiB/s a Node
 *     client on the same two cores measures its own event loop, not the server's answer.
 *  Every distinct file is verified (osslsigncode, CA + pin); every answer's ETag is one of them and
 *  its length the file's. Peak RSS of the service process (VmHWM) — goal < 300 MB.
 *  The service and the CLI run as users run them: the package's built JavaScript.
 *
 *   node bench/service.ts [--mb 5] [--sites 1000] [--cold-sites 100] [--warm 2000] [--concurrency 50]
 *                         [--node-options '--max-semi-space-size=8']
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger } from '../tools/lib/log.ts';
import { verifyFile } from '../tools/lib/sign/verify.ts';
import { arg } from './installer-setup.ts';
import { builtPackage, serviceBench } from './service-setup.ts';

const MB = arg('mb', 5);
const SITES = arg('sites', 1000);
const COLD_SITES = arg('cold-sites', 100);
const WARM = arg('warm', 2000);
const CONC = arg('concurrency', 50);
// Node flags of the service process: by default what docs/service.md tells operators to set
// (a smaller young generation); --node-options '' runs it on Node's defaults.
const flagAt = process.argv.indexOf('--node-options');
const NODE_FLAGS = (flagAt >= 0 ? process.argv[flagAt + 1]! : '--max-semi-space-size=8')
  .split(' ')
  .filter(Boolean);
logger.level = 'warn';

const ROOT = dirname(fileURLToPath(import.meta.url));
const dir = join(ROOT, '.data', 'service');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
// the service and the CLI run as users run them: the package's built JavaScript
const BIN = builtPackage(dir);

const agentHttp = new Agent({ keepAlive: true, maxSockets: 512 });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: number;
  body?: Buffer;
  ttfb: number;
  total: number;
}

function http(
  base: string,
  method: string,
  path: string,
  token: string,
  o: { json?: unknown; file?: string; keep?: boolean } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  let payload: Buffer | undefined;
  if (o.json !== undefined) {
    payload = Buffer.from(JSON.stringify(o.json));
    headers['content-type'] = 'application/json';
  } else if (o.file) {
    payload = readFileSync(o.file);
    headers['content-type'] = 'application/octet-stream';
  }
  if (payload) headers['content-length'] = String(payload.length);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, headers, agent: agentHttp }, (res) => {
      const ttfb = performance.now() - t0;
      const parts: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (o.keep) parts.push(c);
      });
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          ...(o.keep ? { body: Buffer.concat(parts) } : {}),
          ttfb,
          total: performance.now() - t0,
        }),
      );
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function pool<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      for (let i = next++; i < n; i = next++) out[i] = await fn(i);
    }),
  );
  return out;
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}
const ms = (v: number) => `${v.toFixed(1)} ms`;
function summary(label: string, xs: Answer[], wallMs: number): void {
  const t = xs.map((x) => x.ttfb);
  const tot = xs.map((x) => x.total);
  const bytes = xs.reduce((a, x) => a + x.bytes, 0);
  console.log(
    `${label}: ${xs.length} requests in ${(wallMs / 1000).toFixed(2)} s — ${(xs.length / (wallMs / 1000)).toFixed(1)} req/s, ${(bytes / 1048576 / (wallMs / 1000)).toFixed(1)} MiB/s\n` +
      `  TTFB  p50 ${ms(pct(t, 50))}  p95 ${ms(pct(t, 95))}  p99 ${ms(pct(t, 99))}\n` +
      `  total p50 ${ms(pct(tot, 50))}  p95 ${ms(pct(tot, 95))}  p99 ${ms(pct(tot, 99))}`,
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, ms: performance.now() - t0 }));
  });
}

function vmHwm(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) * 1024;
}

// --- setup: PKI, TSA, a pinned release profile, a signed padded agent ---
const { pki, tsa, signedAgent } = await serviceBench(dir, MB, {
  rateLimit: { max: 1_000_000, windowMs: 60_000 },
});
const agent = await signedAgent('1.0.0');
const trust = { caFile: pki.caCert, tsaCaFile: pki.caCert, leafSha256: [pki.leafSha256] };
console.log(
  `service bench: ${availableParallelism()} cores, agent ${(statSync(agent).size / 1048576).toFixed(1)} MiB, ${SITES} sites, ${COLD_SITES} cold sites, ${WARM} warm downloads at ${CONC}; service node flags: ${NODE_FLAGS.join(' ') || '(Node defaults)'}`,
);

const created = await cli(['serve', 'token', 'create', '--name', 'bench', '--scope', 'admin', '--json']);
if (created.code !== 0) throw new Error(created.stderr);
const token = (JSON.parse(created.stdout) as { token: string }).token;

const port = await freePort();
const serve = spawn(process.execPath, [...NODE_FLAGS, BIN, 'serve', '--listen', `127.0.0.1:${port}`], {
  cwd: dir,
  env: { ...process.env, NO_COLOR: '1' },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let serveErr = '';
serve.stderr.on('data', (d) => (serveErr = (serveErr + d).slice(-20_000)));
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try {
    if ((await http(base, 'GET', '/healthz', token)).status === 200) break;
  } catch {}
  if (i > 600) throw new Error(`signet serve did not start:\n${serveErr}`);
  await new Promise((r) => setTimeout(r, 100));
}
const pid = serve.pid!;
let peak = vmHwm(pid);

try {
  const up = await http(base, 'POST', '/v1/releases?version=1.0.0&channel=stable', token, { file: agent });
  if (up.status !== 201) throw new Error(`upload: ${up.status}`);

  // 1. sites
  const key = (i: number) => `bench-enroll-${String(i).padStart(5, '0')}-0123456789ab`;
  const code = (i: number) => `site-${String(i).padStart(5, '0')}`;
  let t0 = performance.now();
  const puts = await pool(SITES, 50, (i) =>
    http(base, 'PUT', `/v1/sites/${code(i)}`, token, {
      json: {
        serverUrl: 'https://rmm.example.com',
        company: `Company ${i}`,
        keyVersion: 1,
        enrollmentKey: key(i),
      },
    }),
  );
  if (puts.some((p) => p.status !== 201)) throw new Error('site registration failed');
  summary(`1. ${SITES} sites registered (PUT, 50 at once)`, puts, performance.now() - t0);
  // six more for the builds alone (section 2)
  for (let i = SITES + 1; i <= SITES + 6; i++) {
    const put = await http(base, 'PUT', `/v1/sites/${code(i)}`, token, {
      json: {
        serverUrl: 'https://rmm.example.com',
        company: `Company ${i}`,
        keyVersion: 1,
        enrollmentKey: key(i),
      },
    });
    if (put.status !== 201) throw new Error(`site registration failed: ${put.status}`);
  }

  // 2. cold builds alone, one after another: the first download of a release (its shared parts are
  //    built then, as the CLI builds them in every run) — three releases, the median; and a later
  //    site of the same release (the site alone)
  const firsts: number[] = [];
  const later: number[] = [];
  for (let r = 1; r <= 3; r++) {
    const v = `0.9.${r}`;
    const a = await signedAgent(v);
    const u = await http(base, 'POST', `/v1/releases?version=${v}&channel=stable`, token, { file: a });
    if (u.status !== 201) throw new Error(`upload ${v}: ${u.status}`);
    const get = async (i: number) => {
      const g = await http(
        base,
        'GET',
        `/v1/sites/${code(i)}/installers/exe?channel=stable&version=${v}`,
        token,
      );
      if (g.status !== 200) throw new Error(`solo ${v}: ${g.status}`);
      return g.total;
    };
    firsts.push(await get(SITES + r));
    later.push(await get(SITES + r + 3));
  }
  const solo = { total: pct(firsts, 50) };
  const cliRuns: number[] = [];
  for (let r = 0; r < 3; r++) {
    const out = join(dir, `cli-out-${r}`);
    const c = await cli(
      [
        'site-installers',
        '--agent',
        agent,
        '--site-code',
        `cli-${r}`,
        '--server-url',
        'https://rmm.example.com',
        '--company',
        'Company CLI',
        '--enrollment-key',
        'env:BENCH_KEY',
        '--key-version',
        '1',
        '--out',
        out,
        '--concurrency',
        '1',
      ],
      { BENCH_KEY: 'bench-enroll-cli-0123456789abcdef' },
    );
    if (c.code !== 0) throw new Error(`signet site-installers: ${c.stderr}`);
    cliRuns.push(c.ms);
  }
  const startup = [];
  for (let r = 0; r < 3; r++) startup.push((await cli(['--version'])).ms);
  const cliMs = pct(cliRuns, 50);
  const startMs = pct(startup, 50);
  console.log(
    `2. the first download of a release, alone (builds its shared parts, then exe + msi): ${ms(solo.total)}; a later site of it: ${ms(pct(later, 50))}\n` +
      `   signet site-installers for one site: ${ms(cliMs)} (of which process start ${ms(startMs)}, so ${ms(cliMs - startMs)} of work)\n` +
      `   ratio service / CLI wall ${(solo.total / cliMs).toFixed(2)}×, service / CLI work ${(solo.total / (cliMs - startMs)).toFixed(2)}× (goal ≤ 1.1×)`,
  );

  // 3. cold: 200 concurrent downloads across 100 sites
  const sampler = setInterval(() => (peak = Math.max(peak, vmHwm(pid))), 200);
  const shaOf = new Map<string, { size: number; body: Buffer }>();
  t0 = performance.now();
  const cold = await Promise.all(
    Array.from({ length: COLD_SITES * 2 }, (_, i) =>
      http(
        base,
        'GET',
        `/v1/sites/${code(i >> 1)}/installers/${i % 2 ? 'msi' : 'exe'}?channel=stable`,
        token,
        { keep: true },
      ),
    ),
  );
  const coldWall = performance.now() - t0;
  const peakCold = vmHwm(pid);
  if (cold.some((c) => c.status !== 200)) throw new Error(`cold: ${cold.map((c) => c.status).join(',')}`);
  summary(`3. ${cold.length} concurrent cold downloads across ${COLD_SITES} sites`, cold, coldWall);
  for (const c of cold)
    shaOf.set(String(c.headers['etag']).replace(/"/g, ''), { size: c.bytes, body: c.body! });
  const metrics = await http(base, 'GET', '/metrics', token, { keep: true });
  const text = metrics.body!.toString();
  const sum = Number(/^signet_build_duration_seconds_sum (\S+)/m.exec(text)?.[1]);
  const count = Number(/^signet_build_duration_seconds_count (\S+)/m.exec(text)?.[1]);
  const builds = Number(/^signet_builds_total (\S+)/m.exec(text)?.[1]);
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]) / 1048576;
  console.log(
    `   service memory after the cold phase: resident ${metric('process_resident_memory_bytes').toFixed(0)} MiB, heap used ${metric('nodejs_heap_size_used_bytes').toFixed(0)} of ${metric('nodejs_heap_size_total_bytes').toFixed(0)} MiB, external ${metric('nodejs_external_memory_bytes').toFixed(0)} MiB`,
  );
  console.log(
    `   builds ${builds} (one per site), mean build under load ${((sum / count) * 1000).toFixed(0)} ms, ${(coldWall / COLD_SITES).toFixed(0)} ms of wall per site`,
  );

  // every distinct file verified
  const vdir = join(dir, 'verify');
  mkdirSync(vdir, { recursive: true });
  t0 = performance.now();
  await pool(shaOf.size, availableParallelism(), async (i) => {
    const [sha, f] = [...shaOf.entries()][i]!;
    const p = join(vdir, `${sha}.bin`);
    writeFileSync(p, f.body);
    const v = await verifyFile(p, trust);
    if (v.sha256 !== sha) throw new Error(`ETag ${sha} is not the file's hash ${v.sha256}`);
    rmSync(p);
  });
  console.log(
    `   ${shaOf.size} distinct files, every one verified (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  for (const f of shaOf.values()) f.body = Buffer.alloc(0);

  // 4. warm, driven by curl: at these rates a Node client's own event loop is what gets measured
  //    (its loop delay reached 91 ms p50 at 800 MiB/s, while curl saw 9 ms to the first byte)
  const curlCfg = join(dir, 'warm.curl');
  const lines = [`header = "Authorization: Bearer ${token}"`]; // in a 0600 file, not on argv
  for (let i = 0; i < WARM; i++)
    lines.push(
      `url = "${base}/v1/sites/${code(i % COLD_SITES)}/installers/${(i >> 1) % 2 ? 'msi' : 'exe'}?channel=stable"`,
      'output = "/dev/null"',
    );
  writeFileSync(curlCfg, `${lines.join('\n')}\n`, { mode: 0o600 });
  t0 = performance.now();
  const curlOut = await new Promise<string>((resolve, reject) => {
    const c = spawn(
      'curl',
      [
        '-sS',
        '--parallel',
        '--parallel-max',
        String(CONC),
        '-K',
        curlCfg,
        '-w',
        '%{time_starttransfer} %{time_total} %{http_code} %{size_download} %header{etag}\n',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`curl exited ${code}: ${err}`))));
  });
  const warmWall = performance.now() - t0;
  rmSync(curlCfg, { force: true });
  clearInterval(sampler);
  peak = Math.max(peak, vmHwm(pid));
  const warm: Answer[] = curlOut
    .trim()
    .split('\n')
    .map((line) => {
      const [first, total, status, size, etag] = line.split(' ');
      return {
        status: Number(status),
        headers: { etag },
        bytes: Number(size),
        ttfb: Number(first) * 1000,
        total: Number(total) * 1000,
      };
    });
  if (warm.length !== WARM) throw new Error(`curl reported ${warm.length} of ${WARM} downloads`);
  for (const w of warm) {
    const sha = String(w.headers['etag']).replace(/"/g, '');
    const known = shaOf.get(sha);
    if (w.status !== 200 || !known || known.size !== w.bytes)
      throw new Error(`warm answer ${w.status} ${sha} ${w.bytes}`);
  }
  summary(`4. ${WARM} warm downloads at ${CONC} concurrent (curl --parallel)`, warm, warmWall);
  const after = await http(base, 'GET', '/metrics', token, { keep: true });
  console.log(
    `   builds after the warm phase: ${/^signet_builds_total (\S+)/m.exec(after.body!.toString())?.[1]}`,
  );
  const warmP95 = pct(
    warm.map((w) => w.ttfb),
    95,
  );
  console.log(
    `peak RSS of the service process: ${(peak / 1048576).toFixed(0)} MiB (goal < 300 MB; ${(peakCold / 1048576).toFixed(0)} MiB by the end of the cold phase)\n` +
      `goals: warm TTFB p95 ${ms(warmP95)} ${warmP95 <= 20 ? 'MET' : 'MISSED'} (≤ 20 ms); cold build ${(solo.total / (cliMs - startMs)).toFixed(2)}× the CLI's work, ${(solo.total / cliMs).toFixed(2)}× its wall time (≤ 1.1×); RSS ${peak < 300e6 ? 'MET' : 'MISSED'}`,
  );
} finally {
  serve.kill('SIGTERM');
  await new Promise((r) => serve.on('exit', r));
  await tsa.close();
  agentHttp.destroy();
}
