/**
 * Incremental per-site assembly at scale, 10 MB agent (incompressible padding), dev certificate,
 * zlib, every ratio measured in this run:
 *
 *  1. One site (exe + msi, both signed and verified, every check) from the release's warm shared
 *     parts, against the full-rebuild floor: makensis + wixl + 2 × osslsigncode sign and verify,
 *     run directly. Goal ≤ 0.2×.
 *  2. N sites (default 1000) in one batch on every core: wall time, the 10,000-site projection
 *     (goal ≤ 10 min), the share of the time spent signing (in-process, from the template) and
 *     verifying (osslsigncode), against osslsigncode's sign + verify and its verify alone.
 *  3. Storage: bytes of the N sites' whole files (each site's are removed once it is done, so that
 *     1,000 sites fit the disk); and how many 4 KiB blocks of a site's MSI differ from the
 *     release's base, before and after signing.
 *
 *   node bench/scale.ts [--sites 1000] [--mb 10] [--rounds 5]
 */

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultRunner, fileHashStats, spawnHelperPid, useSpawnHelper } from '../tools/lib/exec/runner.ts';
import { buildSiteInstallers, ReleaseCache } from '../tools/lib/installers/build.ts';
import { manifestPath, readManifest } from '../tools/lib/installers/manifest.ts';
import type { MsiBase } from '../tools/lib/installers/msi-incremental.ts';
import type { SiteConfig } from '../tools/lib/installers/site.ts';
import type { BuildProgress } from '../tools/lib/installers/types.ts';
import { RUN_PREFIX } from '../tools/lib/installers/workdir.ts';
import { createSigner } from '../tools/lib/sign/index.ts';
import { templateSigningStats } from '../tools/lib/sign/template-signer.ts';
import { osslsigncodeEnv } from '../tools/lib/sign/tool-env.ts';
import { arg, benchSites, installerBench, rawSignArgs, signedAgent } from './installer-setup.ts';

const SITES = arg('sites', 1000);
const MB = arg('mb', 10);
const ROUNDS = arg('rounds', 5);
const bench = await installerBench('scale', MB);
const { data, dc, config } = bench;
const plain = createSigner(config);
const signer = plain;
/** CPU seconds of this process's finished children (osslsigncode, in a batch of incremental sites). */
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;
/** [own, children's] CPU seconds of a process (utime+stime, cutime+cstime of its finished children). */
const procCpu = (pid: number | 'self'): [number, number] => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [(Number(f[11]) + Number(f[12])) / TICK, (Number(f[13]) + Number(f[14])) / TICK];
};
/**
 * CPU seconds of the programs a batch ran (`child`) and of the spawn helper that started them
 * (`helper`, part of Signet's own), from one read of the helper's stat; without a helper, the
 * programs are this process's children.
 */
const programsCpu = (): { child: number; helper: number } => {
  const pid = spawnHelperPid();
  if (!pid) return { child: procCpu('self')[1], helper: 0 };
  const [helper, child] = procCpu(pid);
  return { child, helper };
};
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const agent = await signedAgent(bench, plain);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cache = new ReleaseCache();
const batch = (sites: SiteConfig[], out: string, extra: Record<string, unknown> = {}) =>
  buildSiteInstallers({
    agent,
    sites,
    config,
    signer,
    outDir: join(data, out),
    incremental: cache,
    ...extra,
  });

// ---- the floor: the raw tools on the sources of a full build ----------------------------------
const before = new Set(readdirSync(tmpdir()));
await buildSiteInstallers({
  agent,
  sites: benchSites(1, 'FLOOR'),
  config: { ...config, installers: { ...config.installers, keepWork: true } },
  signer: plain,
  outDir: join(data, 'out-floor'),
  incremental: false,
});
const runs = readdirSync(tmpdir()).filter((n) => n.startsWith(RUN_PREFIX) && !before.has(n));
const run = runs.find((n) => readdirSync(join(tmpdir(), n)).some((x) => x.startsWith('FLOOR-')))!;
const siteWork = join(tmpdir(), run, readdirSync(join(tmpdir(), run)).find((n) => n.startsWith('FLOOR-'))!);
const nsi = readFileSync(join(siteWork, 'installer.nsi'), 'utf8').replace(/^!uninstfinalize.*$/m, '');
writeFileSync(join(siteWork, 'floor.nsi'), nsi);
const r = (file: string, args: string[]) => defaultRunner.run(file, args, { cwd: siteWork });
const signVerify = async (i: string, o: string) => {
  rmSync(join(siteWork, o), { force: true });
  await r('osslsigncode', rawSignArgs(dc, i, o, 'Agent'));
  await r('osslsigncode', ['verify', '-CAfile', dc.caCert, '-in', o]);
};
const floor: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const t = performance.now();
  await r('makensis', ['-V2', 'floor.nsi']);
  await r('wixl', ['-a', 'x64', '-o', 'floor.msi', 'installer.wxs']);
  await signVerify('installer.exe', 'floor-signed.exe');
  await signVerify('floor.msi', 'floor-signed.msi');
  floor.push(performance.now() - t);
}
// the throughput floor of the signing alone: osslsigncode sign + verify of one site's exe and msi,
// as two chains on the two cores, nothing else
const chain = async (k: number) => {
  for (let i = 0; i < ROUNDS * 4; i++) {
    await signVerify('installer.exe', `chain${k}.exe`);
    await signVerify('floor.msi', `chain${k}.msi`);
  }
};
const tc = performance.now();
await Promise.all([0, 1].map(chain));
const chainFloor = (performance.now() - tc) / (2 * ROUNDS * 4);
// what stays of osslsigncode per site when Signet signs from a template: verify of both outputs
// (raw, and in the environment Signet runs osslsigncode with: glibc's huge-page hint)
const verifyFloorOf = async (env?: Record<string, string | undefined>) => {
  const v = (file: string) =>
    defaultRunner.run('osslsigncode', ['verify', '-CAfile', dc.caCert, '-in', file], {
      cwd: siteWork,
      ...(env ? { env } : {}),
    });
  const verifyChain = async (k: number) => {
    for (let i = 0; i < ROUNDS * 8; i++) {
      await v(`chain${k}.exe`);
      await v(`chain${k}.msi`);
    }
  };
  const tv = performance.now();
  await Promise.all([0, 1].map(verifyChain));
  return (performance.now() - tv) / (2 * ROUNDS * 8);
};
const verifyFloor = await verifyFloorOf();
const verifyFloorTuned = await verifyFloorOf(osslsigncodeEnv());
rmSync(join(tmpdir(), run), { recursive: true, force: true });

// ---- one site from warm shared parts ------------------------------------------------------------
const warm = await batch(benchSites(1, 'WARM'), 'out-warm');
const one: number[] = [];
const perSite: number[] = [];
let modes = '';
for (let i = 0; i < ROUNDS; i++) {
  const t = performance.now();
  const res = await batch(benchSites(1, `ONE${i}`), `out-one-${i}`);
  one.push(performance.now() - t);
  perSite.push(res.results[0]!.durationMs);
  const b = res.results[0]!.build!;
  modes = `exe ${b.exe.mode}${b.exe.reason ? ` (${b.exe.reason})` : ''}, msi ${b.msi.mode}${b.msi.reason ? ` (${b.msi.reason})` : ''}`;
}

// ---- a batch ------------------------------------------------------------------------------------
// Whole files are ~21 MB a site: 1,000 sites need 21 GB. Each site's installers are counted from
// its manifest and removed once the site is done (its manifest stays), so the batch fits the disk.
const holdHelper = useSpawnHelper(); // kept across the batch, so its children's CPU can be read after
const before0 = programsCpu();
const self0 = selfCpu() + before0.helper;
let bytes = 0;
const outBatch = join(data, 'out-batch');
// removed on the thread pool: a batch's own thread never waits for the bench's clean-up
const removing: Promise<void>[] = [];
const onProgress = (e: BuildProgress) => {
  if (e.type !== 'done') return;
  const m = readManifest(manifestPath(outBatch, e.siteCode));
  for (const o of m?.outputs ?? []) {
    bytes += o.size;
    removing.push(rm(join(outBatch, o.name), { force: true }));
  }
};
const stats0 = { ...templateSigningStats };
const hashed0 = { ...fileHashStats };
const t0 = performance.now();
const big = await batch(benchSites(SITES, 'B'), 'out-batch', { onProgress });
const wall = (performance.now() - t0) / 1000;
await Promise.all(removing);
const cores = availableParallelism();
const after = programsCpu();
const osslCpu = after.child - before0.child;
const ownCpu = selfCpu() + after.helper - self0;
holdHelper();
const share = osslCpu / (wall * Math.min(cores, SITES));
const templated = templateSigningStats.files - stats0.files;
const templateMs = templateSigningStats.ms - stats0.ms;
const sharedMb = (templateSigningStats.sharedBytes - stats0.sharedBytes) / 1e6;
const hashedFiles = fileHashStats.files - hashed0.files;
const hashShared = (fileHashStats.sharedBytes - hashed0.sharedBytes) / 1e6;

// ---- blocks of a site's MSI against the base ----------------------------------------------------
const blocks = (a: Buffer, b: Buffer) => {
  let d = 0;
  const n = Math.ceil(Math.max(a.length, b.length) / 4096);
  for (let i = 0; i < n; i++)
    if (!a.subarray(i * 4096, (i + 1) * 4096).equals(b.subarray(i * 4096, (i + 1) * 4096))) d++;
  return { d, n };
};
const { assembleMsiSite } = await import('../tools/lib/installers/msi-incremental.ts');
const baseMsi = (await cache.settled()).find((v): v is MsiBase => 'plan' in v);
let blockLine = 'no base MSI (every MSI was built in full)';
if (baseMsi) {
  const site = join(data, 'probe.msi');
  const res = await assembleMsiSite(
    baseMsi,
    { siteCode: 'PROBE', keyVersion: 1, fingerprintHex: 'ABCD' },
    Buffer.from('{"probe":true}\n'),
    site,
  );
  if (!('fallback' in res)) {
    const signed = await plain.sign(site, { out: join(data, 'probe-signed.msi') });
    const b0 = readFileSync(baseMsi.path);
    const u = blocks(readFileSync(site), b0);
    const s = blocks(readFileSync(signed.path), b0);
    blockLine = `unsigned ${u.d}/${u.n} blocks differ from the base; signed ${s.d}/${s.n} (${s.d > s.n * 0.9 ? 'a new Compound File: osslsigncode signed it' : 'signed in place: the signature streams added'})`;
  }
}

const f = median(floor);
const o = median(one);
console.log(
  `agent ${MB} MB, ${cores} cores, ${ROUNDS} rounds; shared parts built once: ${Math.round(warm.durationMs)} ms (first batch of one site)`,
);
console.log(`one site from warm shared parts [${modes}]`);
console.log(`  batch of one, wall: ${o.toFixed(0)} ms; per-site pipeline ${median(perSite).toFixed(0)} ms`);
console.log(`  floor (makensis + wixl + 2 × osslsigncode sign/verify): ${f.toFixed(0)} ms`);
console.log(
  `  ratio: ${(o / f).toFixed(2)}× (per-site pipeline ${(median(perSite) / f).toFixed(2)}×; goal ≤ 0.2)`,
);
console.log(
  `batch of ${SITES}: ${wall.toFixed(1)} s wall, ${((wall / SITES) * 1000).toFixed(1)} ms a site; built ${big.built}, failed ${big.failed}`,
);
console.log(`  10,000-site projection: ${(((wall / SITES) * 10_000) / 60).toFixed(1)} min (goal ≤ 10)`);
console.log(
  `  osslsigncode (every child process: the first signatures, then verify only): ${(share * 100).toFixed(0)} % of the cores' time, ${((osslCpu / SITES) * 1000).toFixed(1)} core-ms a site; Signet's own processes (with the spawn helper) ${((ownCpu / SITES) * 1000).toFixed(1)} core-ms a site`,
);
console.log(
  `  signing from the template: ${templated} of ${SITES * 2} files, ${(templateMs / Math.max(1, templated)).toFixed(1)} ms a file from the digest to the written file (wall, the MSI digest's wait for the spawn helper included); that time against the cores' ${((templateMs / 1000 / (wall * Math.min(cores, SITES))) * 100).toFixed(0)} %; ${(sharedMb / Math.max(1, templated)).toFixed(1)} MB of each file's digest continued from the release's shared state (stub, base MSI)`,
);
console.log(
  `  file SHA-256 of the outputs: ${hashedFiles} files, ${(hashShared / Math.max(1, hashedFiles)).toFixed(1)} MB of each compared with the release's base (the MSI's shared prefix: not hashed again; the exe's stub: compared in the hash's reads), and not read again by the per-site checks`,
);
console.log(
  `  reference: osslsigncode sign + verify of one site's exe and msi, two chains: ${chainFloor.toFixed(1)} ms a site = ${((chainFloor * 10_000) / 60_000).toFixed(1)} min for 10,000 sites; the batch ${(((wall / SITES) * 1000) / chainFloor).toFixed(2)}× that`,
);
console.log(
  `  floor that stays: osslsigncode verify of both outputs, two chains: ${verifyFloor.toFixed(1)} ms a site = ${((verifyFloor * 10_000) / 60_000).toFixed(1)} min; the batch ${(((wall / SITES) * 1000) / verifyFloor).toFixed(2)}× that; with the huge-page hint Signet gives it: ${verifyFloorTuned.toFixed(1)} ms = ${((verifyFloorTuned * 10_000) / 60_000).toFixed(1)} min, the batch ${(((wall / SITES) * 1000) / verifyFloorTuned).toFixed(2)}× that`,
);
console.log(
  `storage for ${SITES} sites (whole files): ${(bytes / 1e9).toFixed(2)} GB (${(bytes / SITES / 1e6).toFixed(1)} MB a site)`,
);
console.log(`delta blocks of one site's MSI (4 KiB): ${blockLine}`);
cache.close();
