/**
 * Sign + timestamp (local TSA) + verify N files of S MB (default 100 × 10 MB) with Signet, against
 * the floor: osslsigncode `sign -ts` and `verify` run directly in a loop. Prints
 *   - CPU overhead: (Signet CPU − floor CPU) / floor CPU, sequential (goal ≤ 15 %)
 *   - wall ratio: Signet wall with concurrency = cores / sequential floor wall (goal ≤ 0.6)
 * CPU is user+sys of the process tree (the bench process's reaped children, from /proc), the TSA
 * runs in its own process and is counted on neither side. Data lives in bench/.data/sign.
 *
 *   node bench/sign.ts [--files 100] [--mb 10] [--rounds 1]
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const data = join(here, '.data', 'sign');
const mode = process.argv[2];

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** user+sys seconds of this process's reaped children (fields 16, 17 of /proc/self/stat). */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 100; // USER_HZ
  return (Number(fields[13]) + Number(fields[14])) / tick;
}

async function tsaMode(): Promise<void> {
  const { startLocalTsa } = await import('../tools/lib/sign/local-tsa.ts');
  const pki = join(data, 'pki');
  const tsa = await startLocalTsa({
    cert: join(pki, 'tsa.pem'),
    key: join(pki, 'tsa.key'),
    chain: join(pki, 'ca.pem'),
  });
  process.stdout.write(`${tsa.url}\n`);
  process.on('SIGTERM', () => void tsa.close().then(() => process.exit(0)));
}

async function workerMode(): Promise<void> {
  // What the CLI entry should do too: cache compiled (type-stripped) modules across runs.
  (await import('node:module')).enableCompileCache?.(join(data, 'compile-cache'));
  const concurrency = Number(process.argv[3]);
  const tsaUrl = process.argv[4] as string;
  const outDir = process.argv[5] as string;
  const files = process.argv.slice(6);
  const { parseConfig } = await import('../tools/lib/config/load.ts');
  const { createSigner, signFiles } = await import('../tools/lib/sign/index.ts');
  const { makeDevCert } = await import('../tools/lib/sign/devcert.ts');
  const dev = await makeDevCert(join(data, 'pki'), { reuse: true, tsaUrls: [tsaUrl] });
  const config = parseConfig({ signing: { profiles: { bench: { ...dev.profile, dev: false } } } }, 'bench');
  const signer = createSigner(config, { profile: 'bench', releasePath: true });
  const t0 = performance.now();
  // Same I/O as the floor: each signed file is written next to its input, inputs stay.
  const r = await signFiles(signer, files, { concurrency, outDir });
  const wall = (performance.now() - t0) / 1000;
  if (!r.ok) {
    console.error(JSON.stringify(r.results.find((x) => !x.ok)));
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ wall, signed: r.signed })}\n`);
}

function prepareInputs(n: number, mb: number): string[] {
  const src = join(data, `agent-${mb}mb.exe`);
  const inputs = join(data, 'inputs');
  mkdirSync(inputs, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < n; i++) files.push(join(inputs, `f${String(i).padStart(3, '0')}.exe`));
  return files.map((f) => {
    rmSync(f, { force: true });
    rmSync(`${f}.signed.exe`, { force: true });
    copyFileSync(src, f);
    return f;
  });
}

async function main(): Promise<void> {
  const n = arg('files', 100);
  const mb = arg('mb', 10);
  const rounds = arg('rounds', 1);
  const cores = availableParallelism();
  mkdirSync(data, { recursive: true });
  const { makeDevCert } = await import('../tools/lib/sign/devcert.ts');
  const dev = await makeDevCert(join(data, 'pki'), { reuse: true });
  const src = join(data, `agent-${mb}mb.exe`);
  if (!existsSync(src)) {
    const { buildPe } = await import('../test/helpers/pe.ts');
    await buildPe(src, { padBytes: mb * 1024 * 1024 });
  }
  const tsaProc = spawn(process.execPath, [fileURLToPath(import.meta.url), 'tsa'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tsaUrl = await new Promise<string>((ok) =>
    tsaProc.stdout.once('data', (b: Buffer) => ok(b.toString().trim())),
  );
  try {
    const results: {
      floorCpu: number;
      floorWall: number;
      seqCpu: number;
      seqWall: number;
      parWall: number;
      parCpu: number;
      par2Wall: number;
      hashCpu: number;
    }[] = [];
    for (let round = 0; round < rounds; round++) {
      // Floor: osslsigncode sign -ts + verify, directly, one file after the other.
      let files = prepareInputs(n, mb);
      let c0 = childrenCpu();
      let t0 = performance.now();
      for (const f of files) {
        const out = `${f}.signed.exe`;
        const s = spawnSync(
          'osslsigncode',
          [
            'sign',
            '-certs',
            dev.cert,
            '-key',
            dev.key,
            '-h',
            'sha256',
            '-n',
            'bench',
            '-ts',
            tsaUrl,
            '-in',
            f,
            '-out',
            out,
          ],
          { stdio: 'ignore' },
        );
        const v = spawnSync(
          'osslsigncode',
          ['verify', '-CAfile', dev.caCert, '-TSA-CAfile', dev.caCert, '-in', out],
          { stdio: 'ignore' },
        );
        if (s.status !== 0 || v.status !== 0) throw new Error(`floor failed on ${f}`);
      }
      const floorWall = (performance.now() - t0) / 1000;
      const floorCpu = childrenCpu() - c0;

      const runSignet = (concurrency: number) => {
        files = prepareInputs(n, mb);
        c0 = childrenCpu();
        t0 = performance.now();
        const outDir = join(data, 'inputs', 'signed');
        rmSync(outDir, { recursive: true, force: true });
        const r = spawnSync(
          process.execPath,
          [fileURLToPath(import.meta.url), 'worker', String(concurrency), tsaUrl, outDir, ...files],
          {
            encoding: 'utf8',
            cwd: root,
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        if (r.status !== 0) throw new Error(`signet worker failed (${r.status})`);
        return { wall: (performance.now() - t0) / 1000, cpu: childrenCpu() - c0 };
      };
      const seq = runSignet(1);
      const par = runSignet(cores);
      // Share of the file SHA-256 every SignedArtifact carries (the floor never hashes the file).
      const { sha256FileSync } = await import('../tools/lib/sign/hash.ts');
      const signedOut = join(data, 'inputs', 'signed');
      const h0 = process.cpuUsage();
      for (const f of files) sha256FileSync(join(signedOut, basename(f)));
      const hu = process.cpuUsage(h0);
      const hashCpu = (hu.user + hu.system) / 1e6;
      const par2 = runSignet(cores * 2);
      results.push({
        par2Wall: par2.wall,
        hashCpu,
        floorCpu,
        floorWall,
        seqCpu: seq.cpu,
        seqWall: seq.wall,
        parWall: par.wall,
        parCpu: par.cpu,
      });
    }
    const best = (k: keyof (typeof results)[number]) => Math.min(...results.map((r) => r[k]));
    const floorCpu = best('floorCpu');
    const floorWall = best('floorWall');
    const seqCpu = best('seqCpu');
    const parWall = best('parWall');
    const overhead = (seqCpu - floorCpu) / floorCpu;
    const wallRatio = parWall / floorWall;
    const par2Wall = best('par2Wall');
    const hashCpu = best('hashCpu');
    console.log(`sign + timestamp + verify, ${n} × ${mb} MB, ${cores} cores, best of ${rounds}`);
    console.log(`  floor (osslsigncode loop): cpu ${floorCpu.toFixed(2)} s, wall ${floorWall.toFixed(2)} s`);
    console.log(
      `  signet sequential:         cpu ${seqCpu.toFixed(2)} s, wall ${best('seqWall').toFixed(2)} s`,
    );
    console.log(
      `  signet concurrency ${cores}:      cpu ${best('parCpu').toFixed(2)} s, wall ${parWall.toFixed(2)} s`,
    );
    console.log(`  signet concurrency ${cores * 2}:      wall ${par2Wall.toFixed(2)} s`);
    console.log(
      `  CPU overhead vs floor: ${(overhead * 100).toFixed(1)} %  (goal ≤ 15 %) ${overhead <= 0.15 ? 'OK' : 'OVER'}`,
    );
    console.log(
      `    of which the file SHA-256 of each signed output: ${hashCpu.toFixed(2)} s = ${((hashCpu / floorCpu) * 100).toFixed(1)} % of the floor`,
    );
    console.log(
      `  wall ratio (parallel / sequential floor): ${wallRatio.toFixed(2)}  (goal ≤ 0.60) ${wallRatio <= 0.6 ? 'OK' : 'OVER'}`,
    );
    console.log(`  wall ratio with ${cores * 2} in flight: ${(par2Wall / floorWall).toFixed(2)}`);
  } finally {
    tsaProc.kill('SIGTERM');
    rmSync(join(data, 'inputs'), { recursive: true, force: true });
  }
}

if (mode === 'tsa') await tsaMode();
else if (mode === 'worker') await workerMode();
else await main();
