/**
 * site.json: the only carrier of site labels and of the enrollment key. Signet serialises it
 * (JSON.stringify, UTF-8 without BOM, 2-space indent, trailing newline) and the installers embed
 * it as a file — it is never text spliced into NSIS or WiX source. Deterministic: the same site,
 * product and version always give the same bytes (so the cache key is stable).
 */
import { createHash, createHmac } from 'node:crypto';
import type { ProductConfig } from './config.ts';
import { fingerprint } from './fingerprint.ts';
import type { SiteConfig } from './site.ts';

export const SITE_JSON_SCHEMA = 1;

export interface SiteJson {
  schema: number;
  vendor: string;
  product: string;
  version: string;
  siteCode: string;
  serverUrl: string;
  company: string;
  siteName: string;
  department: string;
  deviceType: string;
  tags: string[];
  enrollment: { key: string; keyVersion: number; fingerprint: string };
  dev: boolean;
}

export function siteJson(site: SiteConfig, product: ProductConfig, version: string, dev: boolean): SiteJson {
  return {
    schema: SITE_JSON_SCHEMA,
    vendor: product.vendor,
    product: product.product,
    version,
    siteCode: site.siteCode,
    serverUrl: site.serverUrl,
    company: site.company,
    siteName: site.siteName,
    department: site.department,
    deviceType: site.deviceType,
    tags: [...site.tags],
    enrollment: {
      key: site.enrollmentKey,
      keyVersion: site.keyVersion,
      fingerprint: fingerprint(site.enrollmentKey, site.keyVersion).text,
    },
    dev,
  };
}

export function serializeSiteJson(doc: SiteJson): Buffer {
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
}

/**
 * Hash of a site's labels and key version — not of its key. It is published in the manifest, and
 * an unsalted hash over guessable labels plus the key would let anyone holding a manifest test
 * guesses of the key offline. A rotation still shows: in keyVersion and the fingerprint, and the
 * cache sees the key itself through `siteKeyDigest`.
 */
export function siteConfigHash(site: SiteConfig): string {
  const canonical = JSON.stringify([
    site.siteCode,
    site.serverUrl,
    site.company,
    site.siteName,
    site.department,
    site.deviceType,
    site.tags,
    site.keyVersion,
  ]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/**
 * The enrollment key's part of the cache key: HMAC-SHA256 under the cache's own secret
 * (`cache-secret.ts`), so the cache key written to the manifest says nothing about the key.
 */
export function siteKeyDigest(site: SiteConfig, cacheSecret: Buffer): string {
  return createHmac('sha256', cacheSecret).update(site.enrollmentKey, 'utf8').digest('hex');
}
