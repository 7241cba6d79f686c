/**
 * A dispatched per-site build (the site-installers workflow): open the sealed enrollment keys,
 * validate the sites, verify the agent with the signing profile (the builder only takes a
 * SignedArtifact), build every site's installers. Per-site failures do not stop the batch.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError } from '../errors.ts';
import { openSealedSites } from '../seal/sites.ts';

export interface DispatchedBuildOptions {
  config: SignetConfig;
  configPath?: string | undefined;
  cwd: string;
  /** Path of the signed agent, or (with `agentRelease`) the asset name in that release. */
  agent: string;
  /** Download the agent from this published release first (forge from `forge`). */
  agentRelease?: string | undefined;
  forge?:
    | {
        to?: string | undefined;
        repository?: string | undefined;
        apiUrl?: string | undefined;
        token?: string | undefined;
      }
    | undefined;
  /** JSON array text, or file:PATH of one. */
  sites: string;
  /** base64 private key that opens `sealedEnrollmentKey` values. */
  sealPrivateKey?: string | undefined;
  outDir: string;
  profile?: string | undefined;
  version?: string | undefined;
  concurrency?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

export async function buildDispatchedSites(o: DispatchedBuildOptions) {
  const text = o.sites.startsWith('file:') ? readFileSync(resolve(o.cwd, o.sites.slice(5)), 'utf8') : o.sites;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new SignetError('E_INPUT_INVALID', 'sites is not valid JSON (expected an array of site objects)');
  }
  // repository_dispatch client_payload may wrap the list: {"sites":[…]}
  if (
    raw &&
    typeof raw === 'object' &&
    !Array.isArray(raw) &&
    Array.isArray((raw as { sites?: unknown }).sites)
  )
    raw = (raw as { sites: unknown[] }).sites;
  const entries = await openSealedSites(raw, o.sealPrivateKey);
  const { createSigner } = await import('../sign/index.ts');
  const { assertSites, buildSiteInstallers, validateSites } = await import('../installers/index.ts');
  const baseDir = o.configPath ? dirname(o.configPath) : o.cwd;
  const signer = createSigner(o.config, {
    ...(o.profile ? { profile: o.profile } : {}),
    baseDir,
    ...(o.env ? { env: o.env } : {}),
  });
  const sites = assertSites(validateSites(entries, { dev: signer.dev, ...(o.env ? { env: o.env } : {}) }));
  let agentPath = resolve(o.cwd, o.agent);
  if (o.agentRelease) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(o.agent))
      throw new SignetError(
        'E_INPUT_INVALID',
        `agent must be an asset name when agent-release is set, got ${JSON.stringify(o.agent)}`,
      );
    const { fetchReleaseAsset } = await import('../forge/assets.ts');
    const dest = join(mkdtempSync(join(tmpdir(), 'signet-agent-')), o.agent);
    agentPath = (
      await fetchReleaseAsset({
        config: o.config,
        cwd: o.cwd,
        ...o.forge,
        tag: o.agentRelease,
        name: o.agent,
        dest,
        env: o.env,
      })
    ).path;
  }
  const agent = await signer.verify(agentPath);
  const result = await buildSiteInstallers({
    agent,
    sites,
    config: o.config,
    signer,
    outDir: resolve(o.cwd, o.outDir),
    baseDir,
    ...(o.version ? { version: o.version } : {}),
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
  });
  return { result, agent, signer: { profile: signer.profile, dev: signer.dev } };
}
