/**
 * One site's installers: each chain (exe, msi) assembled from the release's shared part when it
 * has one and the site fits it, else built in full (makensis / wixl + msibuild); then signed,
 * verified, extracted and compared (agent byte for byte, site.json exactly, the uninstaller one
 * the signer signed, MSI lint), moved into place, and the manifest written last.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SignatureInfo } from '../artifact.ts';
import { SignetError } from '../errors.ts';
import type { Runner } from '../exec/runner.ts';
import type { Signer } from '../sign/types.ts';
import { cachedResult, cacheKeyOf } from './cache.ts';
import { comparePayload, extractMsi, extractNsis, sha256Of } from './checks.ts';
import type { InstallersConfig, ProductConfig } from './config.ts';
import { configGuardEncoded } from './config-guard.ts';
import { type Fingerprint, fingerprint } from './fingerprint.ts';
import {
  MANIFEST_CHECKS,
  MANIFEST_SCHEMA,
  manifestPath,
  moveFile,
  readManifest,
  writeAtomic,
} from './manifest.ts';
import { ICON_XML, lintMsi, MSI_OUT, renderWix, runWixl, WIX_SOURCE } from './msi.ts';
import { assembleMsiSite, checkMsiSite, type Fallback, type MsiBase } from './msi-incremental.ts';
import { outputBaseName, signetVersion } from './naming.ts';
import { NSIS_OUT, NSIS_SOURCE, nsisReleaseValues, renderNsis, runMakensis, SIGN_SCRIPT } from './nsis.ts';
import type { NsisIncremental } from './nsis-slot.ts';
import { serializeSiteJson, siteConfigHash, siteJson } from './payload.ts';
import type { CachedStub } from './release.ts';
import { type SignServer, signScriptText } from './sign-server.ts';
import type { SiteConfig } from './site.ts';
import type { LoadedTemplate } from './template.ts';
import type { AssembledHook, PartBuild, SiteManifest, SiteResult } from './types.ts';

/** The release's shared parts, or why a chain is built in full for every site. */
export interface ReleaseParts {
  msi: MsiBase | Fallback;
  nsis: { stub: CachedStub; module: NsisIncremental } | Fallback;
}

/**
 * The files a full build of a site reads (work/payload: the agent, site.json, the icon). Written
 * when a part is built in full: a site assembled from the release's shared parts needs none of
 * them (metadata operations are a fair part of a site's cost on a busy file system).
 */
async function writePayload(s: Shared, work: string, siteBytes: Buffer): Promise<void> {
  const dir = join(work, 'payload');
  await mkdir(dir);
  await link(s.agent.path, join(dir, 'agent.exe')).catch(() =>
    copyFile(s.agent.path, join(dir, 'agent.exe')),
  );
  await writeFile(join(dir, 'site.json'), siteBytes, { mode: 0o600 });
  if (s.icon) await copyFile(s.icon.path, join(dir, 'product.ico'));
}

/** Builds the payload once, when a part is first built in full. */
type Payload = () => Promise<void>;

export interface Shared {
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
  /** The release's shared parts for this batch (undefined: every site in full). */
  release?: ReleaseParts;
  /** Called for each incrementally assembled output while its parts still exist (see types.ts). */
  onAssembled?: AssembledHook;
}

/** The NSIS template's variables (per-site ones included). */
export function nsisValues(s: Shared, site: SiteConfig, fp: Fingerprint): Record<string, string> {
  return {
    ...nsisReleaseValues(s),
    SITE_CODE: site.siteCode,
    KEY_VERSION: String(site.keyVersion),
    FINGERPRINT_HEX: fp.hex,
  };
}

async function buildNsisPart(
  s: Shared,
  site: SiteConfig,
  fp: Fingerprint,
  work: string,
  outName: string,
  payload: Payload,
) {
  await payload();
  const p = s.product;
  const values = nsisValues(s, site, fp);
  writeFileSync(join(work, NSIS_SOURCE), renderNsis(s.nsis.text, values, s.nsis.path));
  writeFileSync(join(work, SIGN_SCRIPT), signScriptText());
  chmodSync(join(work, SIGN_SCRIPT), 0o700);
  await runMakensis({ runner: s.runner, workDir: work, env: s.signServer.env });
  // the uninstaller was signed through the sign server during compilation (checked after extraction)
  return s.signer.sign(join(work, NSIS_OUT), {
    out: join(work, outName),
    description: `${p.product} ${s.version} (${site.siteCode})`,
    consume: true,
  });
}

async function buildMsiPart(
  s: Shared,
  site: SiteConfig,
  fp: Fingerprint,
  work: string,
  outName: string,
  siteJsonSize: number,
  payload: Payload,
) {
  await payload();
  const p = s.product;
  const productCode = randomUUID().toUpperCase();
  const values: Record<string, string> = {
    ...msiReleaseValues(s),
    PRODUCT_CODE: productCode,
    SITE_CODE: site.siteCode,
    KEY_VERSION: String(site.keyVersion),
    FINGERPRINT_HEX: fp.hex,
  };
  writeFileSync(join(work, WIX_SOURCE), renderWix(s.wix.text, values, s.wix.path));
  const msi = await runWixl({ runner: s.runner, workDir: work, product: p });
  return signMsi(s, site, msi, work, outName, siteJsonSize, productCode);
}

/** The WiX variables that are the same for every site of the release. */
export function msiReleaseValues(s: Shared): Record<string, string> {
  const p = s.product;
  return {
    UPGRADE_CODE: s.upgradeCode,
    VENDOR: p.vendor,
    PRODUCT: p.product,
    SERVICE_NAME: p.serviceName,
    AGENT_FILE: p.agentFileName,
    VERSION: s.version,
    ICON_XML: s.icon ? ICON_XML : '',
    MSI_SERVICE_MODE: p.msiService,
    SERVICE_ARGS: p.serviceArgs.join(' '),
    INSTALL_ARGS: p.installArgs.join(' '),
    UNINSTALL_ARGS: p.uninstallArgs.join(' '),
    CONFIG_CHECK_SCRIPT_B64: configGuardEncoded(p),
  };
}

/** Lint and sign one MSI (the lint reads the tables while the signer works on a copy). */
async function signMsi(
  s: Shared,
  site: SiteConfig,
  msi: string,
  work: string,
  outName: string,
  siteJsonSize: number,
  productCode: string,
  base?: MsiBase,
) {
  const p = s.product;
  // the lint reads the tables in process before the signer makes the signed file from the MSI
  const problems = await lintMsi(msi, {
    product: p,
    upgradeCode: s.upgradeCode,
    version: s.version,
    agentSize: s.agent.size,
    siteJsonSize,
  });
  if (problems.length)
    throw new SignetError('E_INSTALLER_CHECK_FAILED', `MSI lint failed:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  const signed = await s.signer.sign(msi, {
    out: join(work, outName),
    description: `${p.product} ${s.version} (${site.siteCode})`,
    consume: true,
    ...(base ? { msiBase: { path: base.path, unchanged: base.unchanged, prefix: base.prefix } } : {}),
  });
  return { signed, productCode };
}

export async function buildSite(s: Shared, site: SiteConfig): Promise<SiteResult> {
  const started = performance.now();
  const fp = fingerprint(site.enrollmentKey, site.keyVersion);
  const base = outputBaseName(s.installers.outputName, s.product, site, fp, s.fullVersion);
  const exeName = `${base}.exe`;
  const msiName = `${base}.msi`;
  const key = cacheKeyOf(s, site);
  const hit = await cachedResult(s, site, key, started);
  if (hit) return hit;

  const work = await mkdtemp(join(s.workRoot, `${site.siteCode}-`));
  try {
    const siteBytes = serializeSiteJson(siteJson(site, s.product, s.fullVersion, s.dev));
    let written: Promise<void> | undefined;
    const payload = () => {
      written ??= writePayload(s, work, siteBytes);
      return written;
    };

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
    const [{ exe, uninstaller, build: exeBuild }, msiPart] = await bothSettled([
      exeChain(s, site, fp, work, exeName, siteBytes, payload).then(async ({ exe, build, module }) => {
        const nsisParts = s.release?.nsis;
        if (build.mode === 'incremental' && module && nsisParts && !('fallback' in nsisParts)) {
          // The stub was extracted and checked when it was built (agent byte for byte, the signed
          // uninstaller); the site's file must be that stub byte for byte, then exactly this site's
          // record, then the certificate table — no extraction per site.
          await module.checkNsisSite(nsisParts.stub.stub, exe.path, siteBytes, exe.sharedPrefix);
          return { exe, uninstaller: nsisParts.stub.stub.uninstaller, build };
        }
        await extractNsis(s.runner, exe.path, xExe);
        const overlay = module ? module.readNsisOverlay(exe.path) : undefined;
        if (module && !overlay)
          throw new SignetError('E_INSTALLER_CHECK_FAILED', `${exeName}: no site data in its signed overlay`);
        const payload = await comparePayload(exeName, xExe, expect, true, overlay);
        const uninstallerSha = sha256Of(payload.uninstaller!);
        const nsis = s.release?.nsis;
        const uninstaller =
          s.signServer.signed.get(uninstallerSha) ??
          (build.mode === 'incremental' && nsis && !('fallback' in nsis)
            ? nsis.stub.signed.get(uninstallerSha)
            : undefined);
        if (!uninstaller)
          throw new SignetError(
            'E_INSTALLER_CHECK_FAILED',
            `${exeName}: the embedded uninstaller (sha256 ${uninstallerSha}) is not one the signer signed and verified`,
          );
        return { exe, uninstaller, build };
      }),
      msiChain(s, site, fp, work, msiName, siteBytes, payload).then(async (part) => {
        const msiBase = s.release?.msi;
        if (part.build.mode === 'incremental' && msiBase && !('fallback' in msiBase)) {
          checkMsiSite(msiBase, part.signed.path, siteBytes, part.signed.sharedPrefix);
          return part;
        }
        await extractMsi(s.runner, part.signed.path, xMsi);
        await comparePayload(msiName, xMsi, expect, false);
        return part;
      }),
    ]);
    const msi = msiPart.signed;
    const build = { exe: exeBuild, msi: msiPart.build };

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
      checks: MANIFEST_CHECKS,
      build,
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
      build,
      durationMs: performance.now() - started,
    };
  } finally {
    if (!s.installers.keepWork) await rm(work, { recursive: true, force: true });
  }
}

const full = (reason: string): PartBuild => ({ mode: 'full', reason });

/**
 * Promise.all that waits for both chains before it rejects (with the first failure): the site's
 * work folder is removed only once nothing writes into it any more.
 */
async function bothSettled<A, B>(chains: [Promise<A>, Promise<B>]): Promise<[A, B]> {
  let first: { error: unknown } | undefined;
  const note = <T>(p: Promise<T>) =>
    p.catch((error: unknown) => {
      first ??= { error };
      throw error;
    });
  const [a, b] = await Promise.allSettled([note(chains[0]), note(chains[1])]);
  if (first) throw first.error;
  return [(a as PromiseFulfilledResult<A>).value, (b as PromiseFulfilledResult<B>).value];
}

/** The exe: from the release's stub with the site's overlay, or makensis in full. */
async function exeChain(
  s: Shared,
  site: SiteConfig,
  fp: Fingerprint,
  work: string,
  outName: string,
  siteBytes: Buffer,
  payload: Payload,
) {
  const nsis = s.release?.nsis ?? { fallback: 'incremental builds are off' };
  if (!('fallback' in nsis)) {
    if (siteBytes.length <= nsis.stub.stub.maxOverlayBytes) {
      const unsigned = join(work, NSIS_OUT);
      await nsis.module.assembleNsisSite(nsis.stub.stub, siteBytes, unsigned);
      const exe = await s.signer.sign(unsigned, {
        out: join(work, outName),
        description: `${s.product.product} ${s.version} (${site.siteCode})`,
        prefix: nsis.stub.stub.path,
        consume: true,
      });
      await s.onAssembled?.({
        siteCode: site.siteCode,
        kind: 'exe',
        base: nsis.stub.stub.path,
        ...(existsSync(unsigned) ? { unsigned } : {}),
        signed: exe.path,
        sha256: exe.sha256,
        size: exe.size,
      });
      return { exe, build: { mode: 'incremental' } as PartBuild, module: nsis.module };
    }
    const exe = await buildNsisPart(s, site, fp, work, outName, payload);
    return {
      exe,
      build: full(`site.json is larger than the stub's overlay (${nsis.stub.stub.maxOverlayBytes} bytes)`),
    };
  }
  return { exe: await buildNsisPart(s, site, fp, work, outName, payload), build: full(nsis.fallback) };
}

/** The msi: the release's base with the site patched in, or wixl + msibuild in full. */
async function msiChain(
  s: Shared,
  site: SiteConfig,
  fp: Fingerprint,
  work: string,
  outName: string,
  siteBytes: Buffer,
  payload: Payload,
) {
  const base = s.release?.msi ?? { fallback: 'incremental builds are off' };
  let reason: string;
  if (!('fallback' in base)) {
    const unsigned = join(work, MSI_OUT);
    const r = await assembleMsiSite(
      base,
      { siteCode: site.siteCode, keyVersion: site.keyVersion, fingerprintHex: fp.hex },
      siteBytes,
      unsigned,
    );
    if (!('fallback' in r)) {
      const part = await signMsi(s, site, unsigned, work, outName, siteBytes.length, r.productCode, base);
      await s.onAssembled?.({
        siteCode: site.siteCode,
        kind: 'msi',
        base: base.path,
        ...(existsSync(unsigned) ? { unsigned } : {}),
        signed: part.signed.path,
        sha256: part.signed.sha256,
        size: part.signed.size,
      });
      return { ...part, build: { mode: 'incremental' } as PartBuild };
    }
    rmSync(unsigned, { force: true });
    reason = r.fallback;
  } else reason = base.fallback;
  const part = await buildMsiPart(s, site, fp, work, outName, siteBytes.length, payload);
  return { ...part, build: full(reason) };
}
