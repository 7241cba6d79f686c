/**
 * The site-installers use case (`signet site-installers`; the command module only parses flags):
 * load the sites (file, stdin or flags), open the signer, gate the agent, build, summarise.
 * Invalid sites are reported like failed builds (one entry per site, every problem listed) and the
 * valid ones are still built; --json prints the same report as site-installers.result.json.
 */
import { dirname, resolve } from 'node:path';
import { describeArtifact, type SignedArtifact } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import { EXIT, SignetError, toSignetError } from '../errors.ts';
import { groupInvalidSites } from '../installers/batch.ts';
import { type BuildProgress, buildSiteInstallers, type UnsignedDevAgent } from '../installers/build.ts';
import {
  loadSites,
  type SiteConfig,
  type SiteProblem,
  type SitesFormat,
  validateSites,
} from '../installers/site.ts';
import { logger } from '../log.ts';
import { parseSecretRef } from '../secrets.ts';
import { createSigner } from '../sign/index.ts';
import type { Signer } from '../sign/types.ts';

export interface SiteFlags {
  siteCode?: string;
  serverUrl?: string;
  company?: string;
  siteName?: string;
  department?: string;
  deviceType?: string;
  tags?: string[];
  enrollmentKeyRef?: string;
  keyVersion?: number;
}

export interface RunSiteInstallersOptions {
  cwd: string;
  config: SignetConfig;
  configPath?: string | undefined;
  json?: boolean;
  agent: string;
  out: string;
  sites?: string;
  sitesFormat?: SitesFormat;
  flags?: SiteFlags;
  profile?: string;
  version?: string;
  compression?: 'none' | 'zlib' | 'lzma';
  concurrency?: number;
  allowUnsignedAgent?: boolean;
  force?: boolean;
  /** Progress of the batch (the CLI draws a line on a terminal). */
  onProgress?: (event: BuildProgress) => void;
  /** For tests: a signer instead of the configured profile. */
  signer?: Signer;
  stdin?: NodeJS.ReadableStream;
}

export interface RunSiteInstallersOutcome {
  json: unknown;
  human: string;
  exitCode: number;
}

/** The agent gate of the CLI: verify with the profile, or (dev + flag) accept it unsigned. */
export async function openAgent(
  path: string,
  signer: Signer,
  allowUnsigned: boolean,
): Promise<SignedArtifact | UnsignedDevAgent> {
  try {
    return await signer.verify(path);
  } catch (e) {
    const err = toSignetError(e);
    if (err.code === 'E_FILE_NOT_FOUND') throw err;
    if (allowUnsigned && err.code === 'E_VERIFY_UNSIGNED') {
      if (!signer.dev)
        throw new SignetError(
          'E_AGENT_UNSIGNED',
          `--allow-unsigned-agent is accepted only with a dev profile ("${signer.profile}" is not)`,
        );
      logger.warn('the agent is NOT signed: every installer built from it is marked dev, NOT FOR RELEASE');
      return { unsigned: true, artifact: await describeArtifact(path) };
    }
    throw new SignetError(
      'E_AGENT_UNSIGNED',
      `the agent does not verify with profile "${signer.profile}": ${err.message}`,
      {
        cause: e,
        details: { code: err.code },
      },
    );
  }
}

export async function runSiteInstallers(o: RunSiteInstallersOptions): Promise<RunSiteInstallersOutcome> {
  const baseDir = o.configPath ? dirname(o.configPath) : o.cwd;
  const config: SignetConfig = o.compression
    ? { ...o.config, installers: { ...o.config.installers, compression: o.compression } }
    : o.config;
  const signer = o.signer ?? createSigner(config, { ...(o.profile ? { profile: o.profile } : {}), baseDir });
  if (signer.dev)
    logger.warn(`profile "${signer.profile}" is a DEV profile: the installers are NOT FOR RELEASE`);

  const flags = o.flags ?? {};
  const flagSite = Object.keys(flags).length > 0;
  if (flagSite && o.sites !== undefined)
    throw new SignetError(
      'E_USAGE',
      'give either --sites or the single-site flags (--site-code …), not both',
    );
  if (!flagSite && o.sites === undefined)
    throw new SignetError(
      'E_USAGE',
      'name the sites: --sites FILE (or - for stdin), or --site-code with the other site flags',
    );
  let sites: SiteConfig[];
  let problems: SiteProblem[];
  if (flagSite) {
    if (flags.enrollmentKeyRef !== undefined) parseSecretRef(flags.enrollmentKeyRef, '--enrollment-key');
    ({ sites, problems } = validateSites([flags], { dev: signer.dev }));
  } else {
    const path = o.sites === '-' ? '-' : resolve(o.cwd, o.sites!);
    ({ sites, problems } = await loadSites(path, {
      dev: signer.dev,
      ...(o.sitesFormat ? { format: o.sitesFormat } : {}),
      ...(o.stdin ? { stdin: o.stdin } : {}),
    }));
  }
  for (const p of problems) logger.error(`${p.path}: ${p.message}`);
  if (!sites.length) {
    const invalid = groupInvalidSites(problems);
    throw new SignetError(
      'E_SITE_INVALID',
      `no valid site to build (${invalid.length} invalid site${invalid.length === 1 ? '' : 's'})`,
      { details: { sites: invalid } },
    );
  }

  const agent = await openAgent(resolve(o.cwd, o.agent), signer, Boolean(o.allowUnsignedAgent));
  const result = await buildSiteInstallers({
    agent,
    sites,
    config,
    signer,
    outDir: resolve(o.cwd, o.out),
    baseDir,
    allowUnsignedAgent: Boolean(o.allowUnsignedAgent),
    force: Boolean(o.force),
    invalidSites: problems,
    ...(o.version ? { version: o.version } : {}),
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });

  const { report } = result;
  const { built, cached, failed } = report.summary;
  const summary = `${built} built, ${cached} cached, ${failed} failed (version ${result.version}${result.dev ? ', DEV' : ''}) in ${(result.durationMs / 1000).toFixed(1)} s`;
  const human = report.sites
    .map((r) =>
      r.ok
        ? `✓ ${r.siteCode}  ${r.fingerprint}  ${r.exe}  ${r.msi}${r.cached ? '  (cached)' : ''}`
        : `✗ ${r.siteCode}  [${r.error?.code}] ${r.problems ? r.problems.map((p) => `${p.path}: ${p.message}`).join('\n      ') : r.error?.message}`,
    )
    .concat(summary)
    .join('\n');
  let exitCode = 0;
  if (failed) {
    logger.error(`site-installers: ${summary}`);
    const first = report.sites.find((r) => !r.ok)?.error?.code;
    exitCode =
      built + cached > 0 ? EXIT.partial : first ? new SignetError(first as never, '').exitCode : EXIT.failed;
  }
  return {
    json: report,
    human,
    exitCode,
  };
}
