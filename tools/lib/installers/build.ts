/**
 * buildSiteInstallers: for every site, a signed NSIS bootstrapper and a signed MSI around the one
 * signed agent, each checked after the build (signatures, byte-identical agent, exact site.json,
 * MSI lint), with a JSON manifest per site, bounded parallelism, and a cache keyed on every input.
 * This file is the batch driver; a site's pipeline is site-build.ts, the release's shared parts
 * (base MSI, NSIS stub: built once, each site assembled from them) release-parts.ts, the cache
 * cache.ts, names naming.ts, the manifest manifest.ts.
 *
 * Sign once, wrap after: the agent arrives as a SignedArtifact (made only by the signing layer
 * after a verify), and is re-verified and re-hashed here before any site is built.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { SignedArtifact } from '../artifact.ts';
import { sha256File } from '../artifact.ts';
import { SignetError, toSignetError } from '../errors.ts';
import { defaultRunner, useSpawnHelper } from '../exec/runner.ts';
import { logger } from '../log.ts';
import { takeSnapshot } from '../sign/snapshot.ts';
import type { Signer } from '../sign/types.ts';
import { batchReport, groupInvalidSites, mergeSiteResults } from './batch.ts';
import { defaultSignerIdentity } from './cache.ts';
import { loadCacheSecret } from './cache-secret.ts';
import { writeAtomic } from './manifest.ts';
import { sha256, upgradeCodeOf } from './naming.ts';
import { agentVersion, isMsiVersion } from './pe-version.ts';
import { releaseParts } from './release-parts.ts';
import { startSignServer } from './sign-server.ts';
import { buildSite, type Shared } from './site-build.ts';
import { BUILTIN_TEMPLATES, loadTemplate, VALUE_PATTERNS } from './template.ts';
import type {
  BuildSiteInstallersOptions,
  BuildSiteInstallersResult,
  SiteResult,
  UnsignedDevAgent,
} from './types.ts';
import { openRunDir, removeStaleWork } from './workdir.ts';

export { defaultSignerIdentity } from './cache.ts';
export { MANIFEST_SCHEMA } from './manifest.ts';
export { deriveUpgradeCode, outputBaseName, signetVersion, upgradeCodeOf } from './naming.ts';
export { processReleaseCache, ReleaseCache } from './release.ts';
export type * from './types.ts';

/** The programs a build runs (besides the signer's own). */
export const INSTALLER_TOOLS = ['makensis', 'wixl', 'msibuild', 'msiextract', '7z'] as const;

/** Checks every tool is on PATH before any work (one error naming all that are missing). */
export function preflightTools(
  env: NodeJS.ProcessEnv = process.env,
  tools: readonly string[] = INSTALLER_TOOLS,
): void {
  const dirs = (env['PATH'] ?? '').split(delimiter).filter(Boolean);
  const missing = tools.filter((t) => !dirs.some((d) => isExecutable(join(d, t))));
  if (missing.length)
    throw new SignetError('E_TOOL_MISSING', `missing on PATH: ${missing.join(', ')}`, {
      details: { missing },
      hint: 'Install them (Debian: apt-get install nsis wixl msitools p7zip-full), or run `signet doctor`.',
    });
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isUnsignedDev(a: SignedArtifact | UnsignedDevAgent): a is UnsignedDevAgent {
  return (a as UnsignedDevAgent).unsigned === true;
}

/**
 * The agent is read once, into a private snapshot in the run folder: that copy is verified (or,
 * unsigned in dev, hashed) and is the file every installer embeds, whatever happens to the
 * user's path during the batch.
 */
async function checkAgent(
  agent: SignedArtifact | UnsignedDevAgent,
  signer: Signer,
  allowUnsigned: boolean,
  runDir: string,
  isPrivate = false,
): Promise<Shared['agent'] & { dev: boolean }> {
  if (isPrivate && !isUnsignedDev(agent))
    return {
      path: agent.path,
      sha256: agent.sha256,
      size: agent.size,
      signature: agent.signature,
      dev: signer.dev || agent.signature.dev,
    };
  const source = isUnsignedDev(agent) ? agent.artifact.path : agent.path;
  const snapshot = takeSnapshot(source, { parent: runDir, name: 'agent.exe' }).path;
  if (isUnsignedDev(agent)) {
    if (!allowUnsigned || !signer.dev)
      throw new SignetError(
        'E_AGENT_UNSIGNED',
        signer.dev
          ? 'the agent is not signed (pass allowUnsignedAgent / --allow-unsigned-agent to build dev installers)'
          : `the agent is not signed, and unsigned agents are accepted only with a dev profile (profile "${signer.profile}" is not)`,
      );
    const sha = await sha256File(snapshot);
    if (sha !== agent.artifact.sha256)
      throw new SignetError('E_AGENT_UNSIGNED', 'the agent changed since it was hashed');
    return { path: snapshot, sha256: sha, size: agent.artifact.size, dev: true };
  }
  // Re-verify: the file on disk must still be the one that was verified, signed by this profile.
  let now: SignedArtifact;
  try {
    now = await signer.verify(snapshot);
  } catch (e) {
    const err = toSignetError(e);
    throw new SignetError(
      'E_AGENT_UNSIGNED',
      `the agent does not verify with profile "${signer.profile}": ${err.message}`,
      {
        cause: e,
        details: { code: err.code },
      },
    );
  }
  if (now.sha256 !== agent.sha256)
    throw new SignetError(
      'E_AGENT_UNSIGNED',
      'the agent on disk is not the signed agent that was verified (it changed)',
      {
        details: { verified: agent.sha256, onDisk: now.sha256 },
      },
    );
  return {
    path: snapshot,
    sha256: now.sha256,
    size: now.size,
    signature: now.signature,
    dev: signer.dev || now.signature.dev,
  };
}

/** Builds both installers for every site; failures are per site (the batch carries on). */
export async function buildSiteInstallers(
  options: BuildSiteInstallersOptions,
): Promise<BuildSiteInstallersResult> {
  const started = performance.now();
  const installers = options.config.installers;
  const baseDir = options.baseDir ?? process.cwd();
  const rel = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

  if (!options.runner) preflightTools();
  // Work happens in a private run folder under the temp dir, never in the (often uploaded) cache.
  removeStaleWork(rel(installers.cacheDir));
  const run = openRunDir(installers.keepWork);
  // a batch starts its programs (4 a site) from the spawn helper, not from this large process
  const releaseHelper = options.sites.length > 1 ? useSpawnHelper() : undefined;
  try {
    return await buildInRunDir(options, run.path, started);
  } finally {
    releaseHelper?.();
    run.close();
  }
}

async function buildInRunDir(
  options: BuildSiteInstallersOptions,
  workRoot: string,
  started: number,
): Promise<BuildSiteInstallersResult> {
  const { config, signer } = options;
  const installers = config.installers;
  const product = installers.product;
  const baseDir = options.baseDir ?? process.cwd();
  const runner = options.runner ?? defaultRunner;
  const rel = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const agent = await checkAgent(
    options.agent,
    signer,
    Boolean(options.allowUnsignedAgent),
    workRoot,
    options.agentIsPrivate,
  );
  const fullVersion = options.version ?? agentVersion(agent.path);
  if (!fullVersion)
    throw new SignetError(
      'E_INPUT_INVALID',
      'the agent has no version resource: pass the product version (--product-version)',
    );
  const m = /^(\d+\.\d+\.\d+)(-[0-9A-Za-z.-]+)?$/.exec(fullVersion);
  const version = m?.[1] ?? '';
  if (!m || !isMsiVersion(version) || !VALUE_PATTERNS.version.test(version))
    throw new SignetError(
      'E_INPUT_INVALID',
      `product version ${fullVersion} is not x.y.z[-prerelease] with x,y ≤ 255 and z ≤ 65535 (MSI limits)`,
    );

  const nsis = loadTemplate(installers.nsisTemplate ? rel(installers.nsisTemplate) : BUILTIN_TEMPLATES.nsis);
  const wix = loadTemplate(installers.wixTemplate ? rel(installers.wixTemplate) : BUILTIN_TEMPLATES.wix);
  let icon: Shared['icon'];
  if (product.icon) {
    const p = rel(product.icon);
    if (!existsSync(p)) throw new SignetError('E_FILE_NOT_FOUND', `installers.product.icon not found: ${p}`);
    icon = { path: p, sha256: sha256(readFileSync(p)) };
  }
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });

  const total = options.sites.length;
  const results: SiteResult[] = new Array(total);
  const signServer = await startSignServer(signer);
  const shared: Shared = {
    agent,
    dev: agent.dev || signer.dev,
    version,
    fullVersion,
    product,
    installers,
    nsis,
    wix,
    ...(icon ? { icon } : {}),
    upgradeCode: upgradeCodeOf(product),
    signer,
    signServer,
    runner,
    outDir,
    workRoot,
    cacheSecret: loadCacheSecret(rel(installers.cacheDir)),
    signerIdentity: options.signerIdentity ?? defaultSignerIdentity(config, signer, baseDir),
    force: Boolean(options.force),
    ...(options.onAssembled ? { onAssembled: options.onAssembled } : {}),
  };
  // the release's shared parts, built once (and kept across batches): every site is assembled from them
  if (options.incremental !== false && total > 0) shared.release = await releaseParts(shared, options);
  // An assembled site is mostly waiting — for osslsigncode's verify and for the spawn helper's
  // hashing, each on the other core — so twice the cores keep every process busy (1,000 sites:
  // 102.8 → 86.0 ms a site from 2 to 4 at once on 2 cores); a full build is makensis's own CPU.
  const assembled =
    shared.release && !('fallback' in shared.release.nsis) && !('fallback' in shared.release.msi);
  const cores = availableParallelism();
  const limit = Math.max(1, options.concurrency ?? installers.concurrency ?? (assembled ? 2 * cores : cores));
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const index = next++;
      const site = options.sites[index]!;
      options.onProgress?.({ type: 'start', siteCode: site.siteCode, index, total });
      const t0 = performance.now();
      try {
        const r = await buildSite(shared, site);
        results[index] = r;
        options.onProgress?.({
          type: 'done',
          siteCode: site.siteCode,
          index,
          total,
          cached: r.cached,
          ms: performance.now() - t0,
        });
      } catch (e) {
        const err = toSignetError(e);
        logger.error(`site ${site.siteCode}: [${err.code}] ${err.message}`);
        results[index] = {
          siteCode: site.siteCode,
          ok: false,
          cached: false,
          error: { code: err.code, message: err.message, hint: err.hint },
          durationMs: performance.now() - t0,
        };
        options.onProgress?.({
          type: 'failed',
          siteCode: site.siteCode,
          index,
          total,
          code: err.code,
          message: err.message,
        });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(limit, total) }, worker));
  } finally {
    await signServer.close();
  }
  const all = mergeSiteResults(results, groupInvalidSites(options.invalidSites ?? []));
  const report = batchReport({
    results: all,
    version: fullVersion,
    dev: shared.dev,
    profile: signer.profile,
    outDir,
    finishedAt: new Date().toISOString(),
    durationMs: performance.now() - started,
  });
  // the batch's per-site results (failures included: they have no manifest), next to the outputs
  writeAtomic(join(outDir, 'site-installers.result.json'), `${JSON.stringify(report, null, 2)}\n`);
  return {
    ok: report.ok,
    built: report.summary.built,
    cached: report.summary.cached,
    failed: report.summary.failed,
    results: all,
    version: fullVersion,
    dev: shared.dev,
    report,
    durationMs: performance.now() - started,
  };
}
