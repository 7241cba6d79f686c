/**
 * The per-site cache: a site is rebuilt only when an input of its installers changed (the key),
 * and a cached output counts only when it still verifies as what its manifest recorded.
 */

import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { SignetConfig } from '../config/schema.ts';
import { toSignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { absMaterial, materialDigest } from '../sign/key-material.ts';
import type { Signer } from '../sign/types.ts';
import { MANIFEST_SCHEMA, manifestPath, readManifest } from './manifest.ts';
import { sha256, signetVersion } from './naming.ts';
import { siteConfigHash, siteKeyDigest } from './payload.ts';
import type { SiteConfig } from './site.ts';
import type { Shared } from './site-build.ts';
import type { SiteResult } from './types.ts';

const MATERIAL_FIELDS = [
  ['cert', 'certs'],
  ['key', 'key'],
  ['pkcs12', 'pkcs12'],
  ['certfile', 'certs'],
  ['keystore', 'keystore'],
] as const;

/**
 * Everything about the signer that changes what it produces. A remote signer's key lives on its
 * server: only its profile (URL, pins) is known here, so a key rotated there alone rebuilds
 * nothing; its cached outputs are still verified against the profile's pins.
 */
export function defaultSignerIdentity(config: SignetConfig, signer: Signer, baseDir: string): string {
  const profile = config.signing.profiles[signer.profile] as Record<string, unknown> | undefined;
  const files: string[] = [];
  // the content of each key or certificate file, also behind env:/file: references (a key rotated
  // in a CI secret rebuilds): osslsigncode's cert/key/pkcs12, jsign's certfile and a PKCS12/JKS
  // keystore (other storetypes name a vault, a region or an endpoint: the config holds it)
  const fileStore = ['PKCS12', 'JKS'].includes(String(profile?.['storetype']));
  for (const [k, kind] of MATERIAL_FIELDS) {
    const v = profile?.[k];
    if (typeof v !== 'string' || v.startsWith('pkcs11:') || (k === 'keystore' && !fileStore)) continue;
    files.push(materialDigest(absMaterial(baseDir, v), kind));
  }
  return sha256(JSON.stringify({ profile: signer.profile, dev: signer.dev, config: profile ?? null, files }));
}

export function cacheKeyOf(s: Shared, site: SiteConfig): string {
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

/**
 * A cached output counts only when it is still what the manifest recorded: same size, and a
 * verify (of one snapshot: its SHA-256 and its signature) that matches the manifest's SHA-256 and
 * signer. Anything else — a flipped byte, a stripped or foreign signature — is rebuilt.
 */
export async function cachedResult(
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
    ...(m.build ? { build: m.build } : {}),
    durationMs: performance.now() - started,
  };
}
