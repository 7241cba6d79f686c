/**
 * The service's records, behind one port with two implementations: the embedded SQLite file
 * (node:sqlite, the default) and PostgreSQL (`service.database`). Methods are async so both fit.
 * No record ever holds a secret in clear: tokens are stored as their SHA-256, enrollment keys as
 * ciphertext (secretbox under the master key), links as the SHA-256 of their token.
 */

export const SCOPES = [
  'sites:read',
  'sites:write',
  'installers:read',
  'releases:write',
  'sign',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenRecord {
  id: string;
  name: string;
  /** SHA-256 (hex) of the token. */
  hash: string;
  scopes: Scope[];
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export type Channel = 'stable' | 'beta';

export interface ReleaseRecord {
  id: string;
  version: string;
  channel: Channel;
  /** SHA-256 of the signed agent (its blob). */
  agentSha256: string;
  agentSize: number;
  signerSubject: string;
  signerLeafSha256: string;
  timestamp: string | null;
  createdAt: number;
}

export interface SiteRecord {
  siteCode: string;
  /** The site's fields without the key (serverUrl, company, siteName, …) as JSON. */
  fields: Record<string, unknown>;
  keyVersion: number;
  /** secretbox(nonce ‖ ciphertext), base64. */
  keyCiphertext: string;
  /** `vN (XXXX)`. */
  fingerprint: string;
  createdAt: number;
  updatedAt: number;
}

export type OutputKind = 'exe' | 'msi';
export type OutputState = 'building' | 'ready' | 'failed';

export interface OutputRecord {
  /** Derived: sha256 of (site, release, keyVersion, site config, kind). */
  key: string;
  siteCode: string;
  releaseId: string;
  keyVersion: number;
  kind: OutputKind;
  state: OutputState;
  sha256: string | null;
  size: number | null;
  fileName: string | null;
  error: string | null;
  createdAt: number;
  /** Set once the blob's SHA-256 and signature were checked after it was written. */
  verifiedAt: number | null;
  /** While building: the claim holds until then (renewed by the builder); an expired claim may be taken over. */
  leaseUntil?: number | null;
  /** Which process built it (host:pid). */
  builtBy?: string | null;
  /** Incrementally assembled: the release base it is a delta of, and the delta (both blobs). */
  baseSha256?: string | null;
  deltaSha256?: string | null;
}

export interface LinkRecord {
  id: string;
  /** SHA-256 (hex) of the link token in the URL. */
  hash: string;
  siteCode: string;
  kind: OutputKind;
  channel: Channel;
  version: string | null;
  keyVersion: number;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export type BuildState = 'queued' | 'running' | 'completed' | 'failed';

export interface BuildSiteResult {
  siteCode: string;
  ok: boolean;
  exe?: { sha256: string; size: number; fileName: string };
  msi?: { sha256: string; size: number; fileName: string };
  error?: { code: string; message: string };
}

export interface BuildRecord {
  id: string;
  releaseId: string;
  sites: string[];
  state: BuildState;
  results: BuildSiteResult[];
  createdBy: string;
  createdAt: number;
  finishedAt: number | null;
}

export interface AuditEntry {
  id?: number;
  at: number;
  actorKind: 'token' | 'link' | 'anonymous';
  actor: string;
  ip: string;
  action: string;
  siteCode: string | null;
  result: string;
  detail: string | null;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface DeliveryRecord {
  id: string;
  event: string;
  url: string;
  payload: string;
  attempts: number;
  state: DeliveryState;
  lastStatus: number | null;
  lastError: string | null;
  nextAt: number;
  createdAt: number;
  deliveredAt: number | null;
}

export interface Page<T> {
  items: T[];
  /** Cursor of the next page, or null at the end. */
  next: string | null;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies pending migrations; returns the schema version. */
  migrate(): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;

  insertToken(t: TokenRecord): Promise<void>;
  tokenByHash(hash: string): Promise<TokenRecord | undefined>;
  tokenByName(name: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  revokeToken(id: string, at: number): Promise<boolean>;
  touchToken(id: string, at: number): Promise<void>;

  insertRelease(r: ReleaseRecord): Promise<void>;
  releaseByVersion(version: string, channel: Channel): Promise<ReleaseRecord | undefined>;
  releaseById(id: string): Promise<ReleaseRecord | undefined>;
  currentRelease(channel: Channel): Promise<ReleaseRecord | undefined>;
  listReleases(): Promise<ReleaseRecord[]>;

  putSite(s: SiteRecord): Promise<void>;
  /**
   * The site and its audit entry in one transaction: a crash keeps both or neither. Conditional:
   * `expected` is the record the caller decided on (null: the site must not exist yet); false when
   * another writer changed the site meanwhile (nothing written).
   */
  putSiteAudited(s: SiteRecord, e: AuditEntry, expected: SiteRecord | null): Promise<boolean>;
  site(siteCode: string): Promise<SiteRecord | undefined>;
  listSites(after: string | null, limit: number): Promise<Page<SiteRecord>>;
  deleteSite(siteCode: string): Promise<boolean>;

  output(key: string): Promise<OutputRecord | undefined>;
  /**
   * Inserts a `building` record unless one exists, or takes over a `building` record whose lease
   * ended before `now` (its builder died); returns the record now stored and whether it is ours.
   */
  claimOutput(o: OutputRecord, now?: number): Promise<{ record: OutputRecord; claimed: boolean }>;
  /** Extends the leases of building outputs held by `builtBy`. */
  renewLeases(keys: string[], builtBy: string, until: number): Promise<void>;
  updateOutput(key: string, patch: Partial<OutputRecord>): Promise<void>;
  /** Outputs whose build was interrupted (state building), for a restart. */
  staleOutputs(): Promise<OutputRecord[]>;
  outputsOfSite(siteCode: string): Promise<OutputRecord[]>;
  deleteOutput(key: string): Promise<void>;
  /** Blob hashes any output still references. */
  referencedBlobs(): Promise<Set<string>>;

  insertLink(l: LinkRecord): Promise<void>;
  linkByHash(hash: string): Promise<LinkRecord | undefined>;
  activeLinks(siteCode: string, at: number): Promise<LinkRecord[]>;
  /** Revokes every link of a site (it was deleted). */
  revokeLinks(siteCode: string, at: number): Promise<void>;

  insertBuild(b: BuildRecord): Promise<void>;
  build(id: string): Promise<BuildRecord | undefined>;
  updateBuild(id: string, patch: Partial<BuildRecord>): Promise<void>;
  unfinishedBuilds(): Promise<BuildRecord[]>;
  /** One site's result in a build (a retried job overwrites its own result). */
  putBuildResult(buildId: string, result: BuildSiteResult, at: number): Promise<void>;
  buildResults(buildId: string): Promise<BuildSiteResult[]>;
  /** Marks a build finished once; true for the caller that did it. */
  finishBuild(id: string, state: 'completed' | 'failed', at: number): Promise<boolean>;

  audit(e: AuditEntry): Promise<void>;
  listAudit(before: number | null, limit: number): Promise<Page<AuditEntry>>;

  insertDelivery(d: DeliveryRecord): Promise<void>;
  updateDelivery(id: string, patch: Partial<DeliveryRecord>): Promise<void>;
  dueDeliveries(at: number): Promise<DeliveryRecord[]>;
  listDeliveries(limit: number): Promise<DeliveryRecord[]>;
}
