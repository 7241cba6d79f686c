/**
 * The Forge contract: the few release operations Signet needs, implemented for GitHub (Octokit),
 * Gitea/Forgejo (REST v1) and a local folder (`dir:`). Publishing (publish.ts) plans against
 * what a forge reports and applies the difference, so every implementation stays small and dumb.
 */

export type ForgeKind = 'github' | 'gitea' | 'dir';

export interface RemoteAsset {
  id: number;
  name: string;
  size: number;
  /** Lowercase hex SHA-256 when the forge reports one (GitHub `digest`, dir); otherwise undefined. */
  sha256?: string | undefined;
  /** Where the asset can be downloaded (for read-back when the forge reports no digest). */
  downloadUrl?: string | undefined;
}

export interface RemoteRelease {
  id: number;
  tag: string;
  title: string;
  body: string;
  draft: boolean;
  prerelease: boolean;
  url: string;
  assets: RemoteAsset[];
  /** GitHub immutable releases: once published, assets and tag are locked. */
  immutable?: boolean | undefined;
  /** GitHub's upload URL template (uploads.github.com or GHES /api/uploads). */
  uploadUrl?: string | undefined;
}

export interface ReleaseFields {
  title: string;
  body: string;
  prerelease: boolean;
  draft: boolean;
}

export interface CreateReleaseInput extends ReleaseFields {
  tag: string;
  /** Commit-ish the tag points at when the forge must create the tag (usually it already exists). */
  target?: string | undefined;
}

export interface UploadInput {
  name: string;
  path: string;
  size: number;
  contentType: string;
}

/** What an upload returns: the asset, and the SHA-256 of the bytes actually sent (hashed while streaming). */
export type UploadedAsset = RemoteAsset & { sentSha256: string };

export interface Forge {
  readonly kind: ForgeKind;
  /** Human description without secrets, e.g. "gitea https://git.example.com acme/agent". */
  readonly description: string;
  /** Every release (drafts included) whose tag is `tag`, oldest first. */
  findReleases(tag: string): Promise<RemoteRelease[]>;
  createRelease(input: CreateReleaseInput): Promise<RemoteRelease>;
  updateRelease(release: RemoteRelease, fields: Partial<ReleaseFields>): Promise<RemoteRelease>;
  deleteRelease(release: RemoteRelease): Promise<void>;
  listAssets(release: RemoteRelease): Promise<RemoteAsset[]>;
  /** Streams the file from disk; never buffers it. */
  uploadAsset(release: RemoteRelease, input: UploadInput): Promise<UploadedAsset>;
  deleteAsset(release: RemoteRelease, asset: RemoteAsset): Promise<void>;
  renameAsset(release: RemoteRelease, asset: RemoteAsset, name: string): Promise<RemoteAsset>;
  /** SHA-256 of the asset as stored: the forge's digest, or a streamed download hashed on the fly. */
  readBackSha256(release: RemoteRelease, asset: RemoteAsset): Promise<string>;
  /** Streams the asset into `dest` (hashed on the way). */
  download(
    release: RemoteRelease,
    asset: RemoteAsset,
    dest: string,
  ): Promise<{ sha256: string; size: number }>;
}
