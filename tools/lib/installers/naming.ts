/**
 * Names and identities of a product's installers: Signet's version, the UpgradeCode (configured or
 * derived), and the output file names from the `installers.outputName` pattern.
 */
import { createHash } from 'node:crypto';
import { SignetError } from '../errors.ts';
import { packageVersion } from '../paths.ts';
import type { ProductConfig } from './config.ts';
import type { Fingerprint } from './fingerprint.ts';
import type { SiteConfig } from './site.ts';

/** Signet's own version (recorded in manifests and in the cache key). */
export function signetVersion(): string {
  return packageVersion();
}

export function sha256(text: string | Buffer): string {
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
