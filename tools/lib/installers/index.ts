/** Per-site installers: the public entry points. */
export {
  type BatchReport,
  batchReport,
  groupInvalidSites,
  type InvalidSite,
  type SiteReport,
} from './batch.ts';
export {
  type BuildProgress,
  type BuildSiteInstallersOptions,
  type BuildSiteInstallersResult,
  buildSiteInstallers,
  deriveUpgradeCode,
  type SiteManifest,
  type SiteResult,
  type UnsignedDevAgent,
} from './build.ts';
export { type Fingerprint, fingerprint } from './fingerprint.ts';
export { agentVersion } from './pe-version.ts';
export {
  assertSites,
  type LoadedSites,
  type LoadSitesOptions,
  loadSites,
  type SiteConfig,
  type SiteProblem,
  validateSites,
} from './site.ts';
