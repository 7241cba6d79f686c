/**
 * The service's use cases, as one interface the HTTP adapter (tools/service), the CLI
 * (`signet serve token …`) and a Node server importing the library all call. Every operation takes
 * explicit inputs and an `Actor` (who asks, from where) and returns plain data; errors are
 * SignetErrors with the CLI's codes. Nothing here reads process.env or a global logger.
 */
import type { Readable } from 'node:stream';
import type {
  AuditEntry,
  BuildRecord,
  Channel,
  DeliveryRecord,
  LinkRecord,
  OutputKind,
  Page,
  ReleaseRecord,
  Scope,
  SiteRecord,
  TokenRecord,
} from '../../service-store/types.ts';

export interface Actor {
  kind: 'token' | 'link' | 'anonymous';
  /** Token name, link id, or "-". */
  name: string;
  ip: string;
  scopes: readonly Scope[];
}

/** What GET /v1/token shows: never the token or its hash. */
export interface TokenStatus {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  active: boolean;
}

export interface SiteView {
  siteCode: string;
  serverUrl: string;
  company: string;
  siteName: string;
  department: string;
  deviceType: string;
  tags: string[];
  keyVersion: number;
  fingerprint: string;
  createdAt: string;
  updatedAt: string;
}

export interface SiteInput {
  serverUrl: string;
  company?: string;
  siteName?: string;
  department?: string;
  deviceType?: string;
  tags?: string[];
  keyVersion: number;
  /** Write-only. Required when the site is new or the key version changes. */
  enrollmentKey?: string;
}

export interface ReleaseView {
  id: string;
  version: string;
  channel: Channel;
  agentSha256: string;
  agentSize: number;
  signer: { subject: string; leafSha256: string };
  timestamp: string | null;
  createdAt: string;
  current: boolean;
}

/** A built, verified installer ready to stream. */
export interface InstallerFile {
  kind: OutputKind;
  fileName: string;
  sha256: string;
  size: number;
  release: { version: string; channel: Channel };
  siteCode: string;
  keyVersion: number;
  /** Opens the bytes (a range when given, end inclusive). */
  open(range?: { start: number; end: number }): Readable;
  /** The verified file on disk, read-only (what `open` reads): for servers that send files themselves. */
  path: string;
}

export interface LinkView {
  id: string;
  url: string;
  siteCode: string;
  kind: OutputKind;
  channel: Channel;
  version: string | null;
  keyVersion: number;
  expiresAt: string;
}

export interface BuildView {
  id: string;
  state: BuildRecord['state'];
  release: { version: string; channel: Channel };
  total: number;
  done: number;
  failed: number;
  results: BuildRecord['results'];
  createdAt: string;
  finishedAt: string | null;
}

export interface Health {
  ok: boolean;
  checks: { name: string; ok: boolean; detail?: string }[];
}

export interface ServiceApi {
  // tokens (CLI: signet serve token …; HTTP: GET /v1/token)
  createToken(input: {
    name: string;
    scopes: Scope[];
    expiresInMs?: number;
  }): Promise<{ token: string; status: TokenStatus }>;
  listTokens(): Promise<TokenStatus[]>;
  revokeToken(nameOrId: string): Promise<TokenStatus>;
  /** Resolves a bearer token; throws E_AUTH_MISSING / E_AUTH_INVALID. */
  authenticate(bearer: string | undefined, ip: string): Promise<{ actor: Actor; token: TokenRecord }>;
  /** Throws E_AUTH_SCOPE unless the actor has the scope (admin has every scope). */
  requireScope(actor: Actor, scope: Scope): void;
  tokenStatus(token: TokenRecord): TokenStatus;

  // releases
  uploadRelease(
    actor: Actor,
    input: { version: string; channel: Channel; body: Readable },
  ): Promise<ReleaseView>;
  listReleases(): Promise<ReleaseView[]>;

  // sites
  putSite(
    actor: Actor,
    siteCode: string,
    input: SiteInput,
  ): Promise<{ site: SiteView; created: boolean; rotated: boolean }>;
  getSite(siteCode: string): Promise<SiteView>;
  listSites(cursor: string | null, limit: number): Promise<Page<SiteView>>;
  deleteSite(actor: Actor, siteCode: string): Promise<void>;

  // installers and links
  installer(
    actor: Actor,
    input: { siteCode: string; kind: OutputKind; channel: Channel; version?: string },
  ): Promise<InstallerFile>;
  createLink(
    actor: Actor,
    siteCode: string,
    input: { kind: OutputKind; channel?: Channel; version?: string; expiresInMs: number },
  ): Promise<LinkView>;
  /** The installer a link points at (audited); throws E_LINK_INVALID. */
  installerByLink(linkToken: string, ip: string): Promise<InstallerFile>;

  // batch builds
  startBuild(
    actor: Actor,
    input: { channel?: Channel; version?: string; sites: string[] | 'all' },
  ): Promise<BuildView>;
  getBuild(id: string): Promise<BuildView>;

  // signing (the remote backend's protocol)
  sign(
    actor: Actor,
    input: { fileName: string; body: Readable; nest?: boolean },
  ): Promise<{ path: string; sha256: string; size: number; cleanup(): void }>;

  // operations
  audit(cursor: string | null, limit: number): Promise<Page<AuditEntry>>;
  deliveries(limit: number): Promise<DeliveryRecord[]>;
  health(): Promise<Health>;
  readiness(): Promise<Health>;
  /** Prometheus text exposition. */
  metrics(): Promise<{ contentType: string; text: string }>;
  /** Collects outputs no longer current nor reachable through a link, and blobs nothing references (older than `minBlobAgeMs`). */
  collectGarbage(minBlobAgeMs?: number): Promise<{ outputs: number; blobs: number; evicted: number }>;
  /**
   * Resolves once the work a download left running behind it is done: a built output is answered
   * as soon as its whole file is stored, and its base + delta (what lets it be evicted) follow.
   */
  settled(): Promise<void>;
  /** Stops accepting builds, waits for running ones, closes the store. */
  close(): Promise<void>;
}

export type { LinkRecord, ReleaseRecord, SiteRecord };
