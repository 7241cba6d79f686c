/** The types of the per-site build: options, progress, per-site results, manifests. */
import type { Artifact, SignatureInfo, SignedArtifact } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import type { Runner } from '../exec/runner.ts';
import type { Signer } from '../sign/types.ts';
import type { BatchReport } from './batch.ts';
import type { ReleaseCache } from './release.ts';
import type { SiteConfig, SiteProblem } from './site.ts';

/** How one installer of a site was made. */
export interface PartBuild {
  mode: 'incremental' | 'full';
  /** Why not incremental. */
  reason?: string;
}

export interface SiteBuild {
  exe: PartBuild;
  msi: PartBuild;
}

/** An agent that is not signed, accepted only with `allowUnsignedAgent` and a dev signer. */
export interface UnsignedDevAgent {
  unsigned: true;
  artifact: Artifact;
}

export type BuildProgress =
  | { type: 'start'; siteCode: string; index: number; total: number }
  | { type: 'done'; siteCode: string; index: number; total: number; cached: boolean; ms: number }
  | { type: 'failed'; siteCode: string; index: number; total: number; code: string; message: string };

export interface BuildSiteInstallersOptions {
  agent: SignedArtifact | UnsignedDevAgent;
  sites: SiteConfig[];
  config: SignetConfig;
  signer: Signer;
  outDir: string;
  /** Sites built at once; default installers.concurrency, then the number of cores. */
  concurrency?: number;
  onProgress?: (event: BuildProgress) => void;
  /** Only with a dev signer: build around an unsigned agent, everything is marked dev. */
  allowUnsignedAgent?: boolean;
  /**
   * The signed agent is a file only this process writes (a content-addressed store's blob) and the
   * caller verified it with this signer: it is used in place — no private copy, no second verify.
   * For a long-running service that builds one site at a time; a batch leaves it off.
   */
  agentIsPrivate?: boolean;
  /**
   * Product version; default: the agent's version resource. A prerelease (1.4.0-beta.2) is kept
   * in site.json, the manifest and file names; the installers' version fields carry 1.4.0 (MSI
   * cannot express a prerelease).
   */
  version?: string;
  /** Rebuild even when the cache says the outputs are current. */
  force?: boolean;
  /** Directory that relative config paths (templates, icon) resolve against. */
  baseDir?: string;
  runner?: Runner;
  /** Identity of the signer for the cache key (default: profile, dev flag, profile config and key files). */
  signerIdentity?: string;
  /**
   * The problems of input entries that failed validation (`validateSites().problems`): each such
   * entry is reported as one failed site (E_SITE_INVALID, every problem listed), in input order.
   */
  invalidSites?: readonly SiteProblem[];
  /**
   * The release's shared parts (base MSI, NSIS stub), kept across batches of one process; by default
   * one cache per process. `false` builds every site in full.
   */
  incremental?: ReleaseCache | false;
  /**
   * Called for each incrementally assembled, signed and verified output with the release's base
   * file, the site's unsigned file (unless the signer made the signed file from it in place) and
   * the signed file, all on disk during the call: what a store needs to keep the site as a delta
   * of the base (see service-store/delta.ts).
   */
  onAssembled?: AssembledHook;
}

export type AssembledHook = (parts: {
  siteCode: string;
  kind: 'exe' | 'msi';
  base: string;
  unsigned?: string;
  signed: string;
  /** The signed file's SHA-256 and size, as its verify read them. */
  sha256: string;
  size: number;
}) => Promise<void> | void;

export interface OutputInfo {
  kind: 'exe' | 'msi';
  /** File name in the output folder. */
  name: string;
  size: number;
  sha256: string;
  signature: SignatureInfo;
}

export interface SiteManifest {
  schema: number;
  tool: { name: 'signet'; version: string };
  site: { siteCode: string; keyVersion: number; fingerprint: string };
  product: {
    vendor: string;
    product: string;
    version: string;
    msiVersion: string;
    upgradeCode: string;
    productCode: string;
  };
  inputs: {
    cacheKey: string;
    agent: { sha256: string; size: number; signer?: string; leafSha256?: string; signed: boolean };
    siteConfigSha256: string;
    templates: { nsis: string; wix: string };
  };
  outputs: OutputInfo[];
  uninstaller: { sha256: string; size: number; signature: SignatureInfo };
  checks: string[];
  build?: SiteBuild;
  signer: { profile: string; dev: boolean; subject: string; leafSha256: string };
  dev: boolean;
  builtAt: string;
  durationMs: number;
}

export interface SiteResult {
  /** Position of the site in the input list (when the batch knows it). */
  index?: number;
  siteCode: string;
  ok: boolean;
  cached: boolean;
  fingerprint?: string;
  exe?: string;
  msi?: string;
  manifest?: string;
  error?: { code: string; message: string; hint: string };
  /** How each installer was made: assembled from the release's shared parts, or built in full (and why). */
  build?: SiteBuild;
  /** An invalid site: every problem of its entry (fields and messages, never values). */
  problems?: { path: string; message: string }[];
  durationMs: number;
}

/** Counts are of sites (invalid input entries included): built + cached + failed = results.length. */
export interface BuildSiteInstallersResult {
  ok: boolean;
  built: number;
  cached: number;
  failed: number;
  results: SiteResult[];
  version: string;
  dev: boolean;
  durationMs: number;
  /** What site-installers.result.json holds (and `signet site-installers --json` prints). */
  report: BatchReport;
}
