/**
 * Publishing speed and memory: 20 assets totalling 1 GB to the fake forge on loopback.
 * Floor: curl uploading the same files sequentially to the same fake forge in that forge's upload
 * format (GitHub: raw body; Gitea: multipart `attachment`). Ours: `publishRelease` in a separate process — local hashing, streamed uploads,
 * the verify gate (read-back) and un-draft included — timed from spawn to exit; its peak RSS is
 * the client's own (the fake forge runs in another process and streams to disk).
 *
 *   node bench/publish.ts [--mb 1024] [--files 20] [--rounds 2] [--flavor github|gitea|both]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

// ---- child roles -------------------------------------------------------------------------------
if (process.argv[2] === '--serve') {
  const { FakeForge } = await import('../test/helpers/fake-forge.ts');
  const fake = await FakeForge.start({
    flavor: process.argv[3] as 'github' | 'gitea',
    token: 'bench-token-0123456789',
  });
  process.stdout.write(`${JSON.stringify({ apiUrl: fake.apiUrl, token: fake.token })}\n`);
  process.stdin.resume();
  process.stdin.on('end', async () => {
    if (fake.violations.length)
      process.stderr.write(
        `spec violations: ${fake.violations.length}\n${fake.violations.slice(0, 5).join('\n')}\n`,
      );
    await fake.close();
    process.exit(fake.violations.length ? 1 : 0);
  });
} else if (process.argv[2] === '--client') {
  const [flavor, apiUrl, token, tag, ...files] = process.argv.slice(3);
  const { logger } = await import('../tools/lib/log.ts');
  logger.level = 'warn';
  const { GitHubForge } = await import('../tools/lib/forge/github.ts');
  const { GiteaForge } = await import('../tools/lib/forge/gitea.ts');
  const { publishRelease } = await import('../tools/lib/forge/publish.ts');
  const common = { apiUrl: apiUrl!, owner: 'acme', repo: 'agent', token: token! };
  const forge = flavor === 'github' ? new GitHubForge(common) : new GiteaForge(common);
  const started = performance.now();
  const concurrency = process.env['BENCH_CONCURRENCY'] ? Number(process.env['BENCH_CONCURRENCY']) : undefined;
  const { result } = await publishRelease(forge, {
    tag: tag!,
    channel: 'stable',
    files,
    notes: 'bench',
    concurrency,
  });
  const ms = performance.now() - started;
  process.stdout.write(
    `${JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS, assets: result!.assets.length })}\n`,
  );
} else {
  await main();
}

// ---- the benchmark -----------------------------------------------------------------------------
function makeData(dir: string, count: number, totalMiB: number): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  // Unequal sizes (like a real release: one big agent bundle, installers, small files), 1 GiB total.
  const weights = Array.from({ length: count }, (_, i) => (i === 0 ? 6 : i < 5 ? 2 : 1));
  const sum = weights.reduce((a, b) => a + b, 0);
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < count; i++) {
    const mib = Math.max(1, Math.round((totalMiB * weights[i]!) / sum));
    const path = join(dir, `asset-${String(i).padStart(2, '0')}-${mib}MiB.bin`);
    files.push(path);
    if (existsSync(path) && statSync(path).size === mib << 20) continue;
    const fd = openSync(path, 'w');
    for (let m = 0; m < mib; m++) {
      randomFillSync(block); // incompressible
      writeSync(fd, block);
    }
    closeSync(fd);
  }
  return files;
}

async function startServer(flavor: string) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', flavor], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
    });
  });
  const info = JSON.parse(line) as { apiUrl: string; token: string };
  return {
    ...info,
    stop: () =>
      new Promise<void>((r) => {
        child.on('exit', () => r());
        child.stdin.end();
      }),
  };
}

/** curl uploading the files one after another, in the forge's own upload format. */
async function curlFloor(
  flavor: string,
  server: { apiUrl: string; token: string },
  files: string[],
  tag: string,
): Promise<number> {
  const api = flavor === 'github' ? server.apiUrl : `${server.apiUrl}/api/v1`;
  // (retried: an idle keep-alive connection the server just closed fails the first attempt)
  let res: Response | undefined;
  for (let attempt = 0; !res; attempt++) {
    try {
      res = await fetch(`${api}/repos/acme/agent/releases`, {
        method: 'POST',
        headers: { authorization: `token ${server.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tag_name: tag, draft: true }),
      });
    } catch (e) {
      if (attempt >= 2) throw e;
    }
  }
  const rel = (await res.json()) as { id: number };
  const started = performance.now();
  for (const f of files) {
    const name = f.split('/').pop()!;
    const auth = ['-H', `authorization: token ${server.token}`];
    const args =
      flavor === 'github'
        ? [
            '-X',
            'POST',
            '-T',
            f,
            '-H',
            'content-type: application/octet-stream',
            `${server.apiUrl}/uploads/repos/acme/agent/releases/${rel.id}/assets?name=${name}`,
          ]
        : [
            '-F',
            `attachment=@${f};type=application/octet-stream`,
            `${api}/repos/acme/agent/releases/${rel.id}/assets?name=${name}`,
          ];
    const r = spawnSync('curl', ['-sS', '-f', '-o', '/dev/null', ...auth, ...args]);
    if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
  }
  return performance.now() - started;
}

async function ours(flavor: string, server: { apiUrl: string; token: string }, files: string[], tag: string) {
  const started = performance.now();
  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--client', flavor, server.apiUrl, server.token, tag, ...files],
    { encoding: 'utf8' },
  );
  const wall = performance.now() - started;
  if (child.status !== 0) throw new Error(`client failed: ${child.stderr}`);
  const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
    ms: number;
    maxRssKiB: number;
    assets: number;
  };
  return { wall, ...r };
}

async function main(): Promise<void> {
  const count = Number(arg('files', '20'));
  const totalMiB = Number(arg('mb', '1024'));
  const rounds = Number(arg('rounds', '2'));
  const flavorArg = arg('flavor', 'both');
  const files = makeData(join(here, '.data', 'publish'), count, totalMiB);
  const bytes = files.reduce((a, f) => a + statSync(f).size, 0);
  console.log(
    `publish: ${files.length} assets, ${(bytes / 2 ** 20).toFixed(0)} MiB, ${rounds} round(s), best of rounds`,
  );
  const flavors = flavorArg === 'both' ? ['github', 'gitea'] : [flavorArg];
  let worst = 0;
  for (const flavor of flavors) {
    const server = await startServer(flavor);
    const floors: number[] = [];
    for (let r = 0; r < rounds; r++) floors.push(await curlFloor(flavor, server, files, `floor-${r}`));
    await server.stop();
    const srv = await startServer(flavor);
    const runs: Awaited<ReturnType<typeof ours>>[] = [];
    for (let r = 0; r < rounds; r++) runs.push(await ours(flavor, srv, files, `v1.0.${r}`));
    await srv.stop();
    const floor = Math.min(...floors);
    const best = runs.reduce((a, b) => (b.wall < a.wall ? b : a));
    const rss = Math.max(...runs.map((r) => r.maxRssKiB)) / 1024;
    const ratio = best.wall / floor;
    worst = Math.max(worst, ratio);
    console.log(
      `  ${flavor.padEnd(6)} curl floor ${(floor / 1000).toFixed(2)} s | signet ${(best.wall / 1000).toFixed(2)} s (publish ${(best.ms / 1000).toFixed(2)} s + start) | ratio ${ratio.toFixed(2)}x (goal ≤ 1.30) | peak RSS ${rss.toFixed(0)} MiB (goal < 150)`,
    );
  }
  console.log(`  worst ratio ${worst.toFixed(2)}x`);
}
