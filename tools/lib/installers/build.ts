/**
 * buildSiteInstallers: for every site, a signed NSIS bootstrapper and a signed MSI around the one
 * signed agent, each checked after the build (signatures, byte-identical agent, exact site.json,
 * MSI lint), with a JSON manifest per site, bounded parallelism, and a cache keyed on every input.
 *
 * Sign once, wrap after: the agent arrives as a SignedArtifact (made only by the signing layer
 * after a verify), and is re-verified and re-hashed here before any site is built.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Artifact, SignatureInfo, SignedArtifact } from '../artifact.ts';
import { sha256File } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError, toSignetError } from '../errors.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import { logger } from '../log.ts';
import { packageVersion } from '../paths.ts';
import { absMaterial, materialDigest } from '../sign/key-material.ts';
import { takeSnapshot } from '../sign/snapshot.ts';
import type { Signer } from '../sign/types.ts';
import { type BatchReport, batchReport, groupInvalidSites, mergeSiteResults } from './batch.ts';
import { loadCacheSecret } from './cache-secret.ts';
import { comparePayload, extractMsi, extractNsis, sha256Of } from './checks.ts';
import type { InstallersConfig, ProductConfig } from './config.ts';
import { configGuardEncoded } from './config-guard.ts';
import { type Fingerprint, fingerprint } from './fingerprint.ts';
import { ICON_XML, lintMsi, renderWix, runWixl, WIX_SOURCE } from './msi.ts';
import { compressionDirective, NSIS_OUT, NSIS_SOURCE, renderNsis, runMakensis, SIGN_SCRIPT } from './nsis.ts';
import { serializeSiteJson, siteConfigHash, siteJson, siteKeyDigest } from './payload.ts';
import { agentVersion, isMsiVersion } from './pe-version.ts';
import { type SignServer, signScriptText, startSignServer } from './sign-server.ts';
import type { SiteConfig, SiteProblem } from './site.ts';
import { BUILTIN_TEMPLATES, type LoadedTemplate, loadTemplate, VALUE_PATTERNS } from './template.ts';
import { openRunDir, removeStaleWork } from './workdir.ts';

export const MANIFEST_SCHEMA = 1;

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
}

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

/** Signet's own version (recorded in manifests and in the cache key). */
export function signetVersion(): string {
  return packageVersion();
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A stable UpgradeCode from vendor+product (name-based, UUID v5 layout) when none is configured. */
export function deriveUpgradeCode(vendor: string, product: string): string {
  const h = createHash('sha1').update(`signet-upgrade-code\0${vendor}\0${product}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex').toUpperCase();
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function upgradeCodeOf(product: ProductConfig): string {
  return (
    product.upgradeCode?.replace(/[{}]/g, '') ?? deriveUpgradeCode(product.vendor, product.product)
  ).toUpperCase();
}

/** File name (no extension) from the outputName pattern; only validated identifiers go in. */
export function outputBaseName(
  pattern: string,
  product: ProductConfig,
  site: SiteConfig,
  fp: Fingerprint,
  version: string,
): string {
  const vars: Record<string, string> = {
    vendor: product.vendor.replace(/ /g, '-'),
    product: product.product.replace(/ /g, '-'),
    site: site.siteCode,
    keyVersion: String(site.keyVersion),
    fp: fp.hex,
    version,
  };
  const name = pattern.replace(/\{(\w+)\}/g, (whole, k: string) => {
    const v = vars[k];
    if (v === undefined)
      throw new SignetError('E_CONFIG_INVALID', `installers.outputName: unknown variable ${whole}`);
    return v;
  });
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$/.test(name) || name.includes('..'))
    throw new SignetError('E_CONFIG_INVALID', `installers.outputName gives an unsafe file name: ${name}`);
  if (!name.includes(site.siteCode))
    throw new SignetError(
      'E_CONFIG_INVALID',
      'installers.outputName must contain {site} (names must differ per site)',
    );
  return name;
}

/** Everything about the signer that changes what it produces. */
export function defaultSignerIdentity(config: SignetConfig, signer: Signer, baseDir: string): string {
  const profile = config.signing.profiles[signer.profile] as Record<string, unknown> | undefined;
  const files: string[] = [];
  for (const k of ['cert', 'key', 'pkcs12'] as const) {
    const v = profile?.[k];
    // the content, also behind env:/file: references (a key rotated in a CI secret rebuilds)
    if (typeof v === 'string' && !v.startsWith('pkcs11:'))
      files.push(materialDigest(absMaterial(baseDir, v), k === 'cert' ? 'certs' : k));
  }
  return sha256(JSON.stringify({ profile: signer.profile, dev: signer.dev, config: profile ?? null, files }));
}

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

function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/** rename, or copy + rename when the cache and the output folder are on different file systems. */
function moveFile(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    const tmp = `${to}.tmp-${process.pid}`;
    copyFileSync(from, tmp);
    renameSync(tmp, to);
    rmSync(from, { force: true });
  }
}

function writeAtomic(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

interface Shared {
  agent: { path: string; sha256: string; size: number; signature?: SignatureInfo };
  dev: boolean;
  /** x.y.z: what the installers' version fields (MSI ProductVersion, VIProductVersion) carry. */
  version: string;
  /** The full version, prerelease included (site.json, manifest, file names). */
  fullVersion: string;
  product: ProductConfig;
  installers: InstallersConfig;
  nsis: LoadedTemplate;
  wix: LoadedTemplate;
  icon?: { path: string; sha256: string };
  upgradeCode: string;
  signer: Signer;
  signServer: SignServer;
  runner: Runner;
  outDir: string;
  workRoot: string;
  /** Keys the enrollment key's part of the cache key (see cache-secret.ts). */
  cacheSecret: Buffer;
  signerIdentity: string;
  force: boolean;
}

function cacheKeyOf(s: Shared, site: SiteConfig): string {
  return sha256(
    JSON.stringify({
      schema: MANIFEST_SCHEMA,
      signet: signetVersion(),
      agent: s.agent.sha256,
      site: siteConfigHash(site),
      enrollmentKey: siteKeyDigest(site, s.cacheSecret),
      nsis: s.nsis.sha256,
      wix: s.wix.sha256,
      icon: s.icon?.sha256 ?? null,
      product: s.product,
      compression: s.installers.compression,
      outputName: s.installers.outputName,
      version: s.fullVersion,
      dev: s.dev,
      signer: s.signerIdentity,
    }),
  );
}

function manifestPath(outDir: string, siteCode: string): string {
  return join(outDir, `${siteCode}.manifest.json`);
}

function readManifest(path: string): SiteManifest | undefined {
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as SiteManifest;
    return m.schema === MANIFEST_SCHEMA ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A cached output counts only when it is still what the manifest recorded: same size, and a
 * verify (of one snapshot: its SHA-256 and its signature) that matches the manifest's SHA-256 and
 * signer. Anything else — a flipped byte, a stripped or foreign signature — is rebuilt.
 */
async function cachedResult(
  s: Shared,
  site: SiteConfig,
  key: string,
  started: number,
): Promise<SiteResult | undefined> {
  if (s.force) return undefined;
  const mp = manifestPath(s.outDir, site.siteCode);
  const m = readManifest(mp);
  if (!m || m.inputs.cacheKey !== key) return undefined;
  const exe = m.outputs.find((o) => o.kind === 'exe');
  const msi = m.outputs.find((o) => o.kind === 'msi');
  if (!exe || !msi) return undefined;
  for (const o of [exe, msi]) {
    const p = join(s.outDir, o.name);
    try {
      if (statSync(p).size !== o.size) return undefined;
      const now = await s.signer.verify(p);
      if (now.sha256 !== o.sha256 || now.signature.leafSha256 !== o.signature.leafSha256) {
        logger.warn(
          `${o.name}: not the output its manifest recorded (SHA-256 or signer differs); rebuilding`,
        );
        return undefined;
      }
    } catch (e) {
      logger.warn(`${o.name}: cached output does not verify (${toSignetError(e).code}); rebuilding`);
      return undefined;
    }
  }
  return {
    siteCode: site.siteCode,
    ok: true,
    cached: true,
    fingerprint: m.site.fingerprint,
    exe: join(s.outDir, exe.name),
    msi: join(s.outDir, msi.name),
    manifest: mp,
    durationMs: performance.now() - started,
  };
}

async function buildNsisPart(s: Shared, site: SiteConfig, fp: Fingerprint, work: string, outName: string) {
  const p = s.product;
  const values: Record<string, string> = {
    COMPRESSION: compressionDirective(s.installers.compression),
    VENDOR: p.vendor,
    PRODUCT: p.product,
    SERVICE_NAME: p.serviceName,
    AGENT_FILE: p.agentFileName,
    VERSION: s.version,
    VERSION4: `${s.version}.0`,
    SITE_CODE: site.siteCode,
    KEY_VERSION: String(site.keyVersion),
    FINGERPRINT_HEX: fp.hex,
    SIGN_SCRIPT,
    OUT_FILE: NSIS_OUT,
    ICON: s.icon ? 'Icon "payload\\product.ico"\nUninstallIcon "payload\\product.ico"' : '',
    INSTALL_ARGS: p.installArgs.join(' '),
    UNINSTALL_ARGS: p.uninstallArgs.join(' '),
    REMOVE_CONFIG: p.removeConfigOnUninstall ? '1' : '0',
  };
  writeFileSync(join(work, NSIS_SOURCE), renderNsis(s.nsis.text, values, s.nsis.path));
  writeFileSync(join(work, SIGN_SCRIPT), signScriptText());
  chmodSync(join(work, SIGN_SCRIPT), 0o700);
  await runMakensis({ runner: s.runner, workDir: work, env: s.signServer.env });
  // the uninstaller was signed through the sign server during compilation (checked after extraction)
  return s.signer.sign(join(work, NSIS_OUT), {
    out: join(work, outName),
    description: `${p.product} ${s.version} (${site.siteCode})`,
  });
}

async function buildMsiPart(
  s: Shared,
  site: SiteConfig,
  fp: Fingerprint,
  work: string,
  outName: string,
  siteJsonSize: number,
) {
  const p = s.product;
  const productCode = randomUUID().toUpperCase();
  const values: Record<string, string> = {
    PRODUCT_CODE: productCode,
    UPGRADE_CODE: s.upgradeCode,
    VENDOR: p.vendor,
    PRODUCT: p.product,
    SERVICE_NAME: p.serviceName,
    AGENT_FILE: p.agentFileName,
    VERSION: s.version,
    SITE_CODE: site.siteCode,
    KEY_VERSION: String(site.keyVersion),
    FINGERPRINT_HEX: fp.hex,
    ICON_XML: s.icon ? ICON_XML : '',
    MSI_SERVICE_MODE: p.msiService,
    SERVICE_ARGS: p.serviceArgs.join(' '),
    INSTALL_ARGS: p.installArgs.join(' '),
    UNINSTALL_ARGS: p.uninstallArgs.join(' '),
    CONFIG_CHECK_SCRIPT_B64: configGuardEncoded(p),
  };
  writeFileSync(join(work, WIX_SOURCE), renderWix(s.wix.text, values, s.wix.path));
  const msi = await runWixl({ runner: s.runner, workDir: work, product: p });
  // the lint reads the tables while the signer works on a copy (a failed lint discards both)
  const [problems, signed] = await Promise.all([
    lintMsi(msi, {
      product: p,
      upgradeCode: s.upgradeCode,
      version: s.version,
      agentSize: s.agent.size,
      siteJsonSize,
    }),
    s.signer.sign(msi, {
      out: join(work, outName),
      description: `${p.product} ${s.version} (${site.siteCode})`,
    }),
  ]);
  if (problems.length)
    throw new SignetError('E_INSTALLER_CHECK_FAILED', `MSI lint failed:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  return { signed, productCode };
}

async function buildSite(s: Shared, site: SiteConfig): Promise<SiteResult> {
  const started = performance.now();
  const fp = fingerprint(site.enrollmentKey, site.keyVersion);
  const base = outputBaseName(s.installers.outputName, s.product, site, fp, s.fullVersion);
  const exeName = `${base}.exe`;
  const msiName = `${base}.msi`;
  const key = cacheKeyOf(s, site);
  const hit = await cachedResult(s, site, key, started);
  if (hit) return hit;

  const work = mkdtempSync(join(s.workRoot, `${site.siteCode}-`));
  try {
    mkdirSync(join(work, 'payload'));
    linkOrCopy(s.agent.path, join(work, 'payload', 'agent.exe'));
    const siteBytes = serializeSiteJson(siteJson(site, s.product, s.fullVersion, s.dev));
    writeFileSync(join(work, 'payload', 'site.json'), siteBytes, { mode: 0o600 });
    if (s.icon) copyFileSync(s.icon.path, join(work, 'payload', 'product.ico'));

    // Checks on what will ship, each chain as soon as its installer is signed: the agent byte for
    // byte, site.json exactly. Both signatures were verified by the signer before it returned.
    // The uninstaller inside the exe must be one the signer signed and verified during this build
    // (its SHA-256 among the sign server's results).
    const expect = {
      agentFileName: s.product.agentFileName,
      agentSha256: s.agent.sha256,
      siteJson: siteBytes,
    };
    const xExe = join(work, 'x-exe');
    const xMsi = join(work, 'x-msi');
    const [{ exe, uninstaller }, msiPart] = await Promise.all([
      buildNsisPart(s, site, fp, work, exeName).then(async (exe) => {
        await extractNsis(s.runner, exe.path, xExe);
        const payload = await comparePayload(exeName, xExe, expect, true);
        const uninstallerSha = sha256Of(payload.uninstaller!);
        const uninstaller = s.signServer.signed.get(uninstallerSha);
        if (!uninstaller)
          throw new SignetError(
            'E_INSTALLER_CHECK_FAILED',
            `${exeName}: the embedded uninstaller (sha256 ${uninstallerSha}) is not one the signer signed and verified`,
          );
        return { exe, uninstaller };
      }),
      buildMsiPart(s, site, fp, work, msiName, siteBytes.length).then(async (part) => {
        await extractMsi(s.runner, part.signed.path, xMsi);
        await comparePayload(msiName, xMsi, expect, false);
        return part;
      }),
    ]);
    const msi = msiPart.signed;

    // Publish: move both into place, then the manifest (the cache's proof of completeness) last.
    mkdirSync(s.outDir, { recursive: true });
    const previous = readManifest(manifestPath(s.outDir, site.siteCode));
    const exeOut = join(s.outDir, exeName);
    const msiOut = join(s.outDir, msiName);
    moveFile(exe.path, exeOut);
    moveFile(msi.path, msiOut);
    // a rotated key (or renamed pattern) leaves the old installers behind: remove them
    for (const o of previous?.outputs ?? [])
      if (o.name !== exeName && o.name !== msiName) rmSync(join(s.outDir, o.name), { force: true });
    const signer = exe.signature;
    const manifest: SiteManifest = {
      schema: MANIFEST_SCHEMA,
      tool: { name: 'signet', version: signetVersion() },
      site: { siteCode: site.siteCode, keyVersion: site.keyVersion, fingerprint: fp.text },
      product: {
        vendor: s.product.vendor,
        product: s.product.product,
        version: s.fullVersion,
        msiVersion: s.version,
        upgradeCode: `{${s.upgradeCode}}`,
        productCode: `{${msiPart.productCode}}`,
      },
      inputs: {
        cacheKey: key,
        agent: {
          sha256: s.agent.sha256,
          size: s.agent.size,
          signed: Boolean(s.agent.signature),
          ...(s.agent.signature
            ? { signer: s.agent.signature.subject, leafSha256: s.agent.signature.leafSha256 }
            : {}),
        },
        siteConfigSha256: siteConfigHash(site),
        templates: { nsis: s.nsis.sha256, wix: s.wix.sha256 },
      },
      outputs: [
        { kind: 'exe', name: exeName, size: exe.size, sha256: exe.sha256, signature: exe.signature },
        { kind: 'msi', name: msiName, size: msi.size, sha256: msi.sha256, signature: msi.signature },
      ],
      uninstaller: { sha256: uninstaller.sha256, size: uninstaller.size, signature: uninstaller.signature },
      checks: [
        'exe signature verified',
        'msi signature verified',
        'uninstaller extracted from the exe (7z) is the one signed and verified at compile time (sha256)',
        'agent extracted from the exe (7z) is byte-identical to the signed agent',
        'agent extracted from the msi (msiextract) is byte-identical to the signed agent',
        'site.json extracted from the exe equals the intended configuration',
        'site.json extracted from the msi equals the intended configuration',
        'msi lint (sequences, custom actions, upgrade, 64-bit, lock permissions, service)',
      ],
      signer: {
        profile: s.signer.profile,
        dev: s.signer.dev,
        subject: signer.subject,
        leafSha256: signer.leafSha256,
      },
      dev: s.dev,
      builtAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - started),
    };
    writeAtomic(manifestPath(s.outDir, site.siteCode), `${JSON.stringify(manifest, null, 2)}\n`);
    return {
      siteCode: site.siteCode,
      ok: true,
      cached: false,
      fingerprint: fp.text,
      exe: exeOut,
      msi: msiOut,
      manifest: manifestPath(s.outDir, site.siteCode),
      durationMs: performance.now() - started,
    };
  } finally {
    if (!s.installers.keepWork) rmSync(work, { recursive: true, force: true });
  }
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
): Promise<Shared['agent'] & { dev: boolean }> {
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
  try {
    return await buildInRunDir(options, run.path, started);
  } finally {
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
  const agent = await checkAgent(options.agent, signer, Boolean(options.allowUnsignedAgent), workRoot);
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
  };
  const limit = Math.max(1, options.concurrency ?? installers.concurrency ?? availableParallelism());
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
