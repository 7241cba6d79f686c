/**
 * Artifacts. A `SignedArtifact` can only be made by the signing layer after a verify passed
 * (see sign/verify.ts `attestSigned`): the brand makes "sign once, wrap after" a type fact —
 * installer builders and the publish gate take a SignedArtifact, not a path.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { extname } from 'node:path';
import type { SharedPrefix } from './exec/spawn-helper.ts';

export type ArtifactKind = 'exe' | 'msi' | 'dll' | 'other';

export interface Artifact {
  path: string;
  kind: ArtifactKind;
  sha256: string;
  size: number;
  /**
   * When the file was hashed against a known prefix (a copy of a release's base) and starts with
   * it: how many bytes, and the SHA-256 of the reference's bytes; with `except`, the file's bytes
   * equal the reference's outside those [offset, length] ranges only (a PE's signing fields). A
   * consumer that knows what that prefix must hold need not read those bytes again. Set only by
   * the hash of the signed file itself (sign/frame.ts), never from a caller's claim.
   */
  sharedPrefix?: SharedPrefix;
}

export interface SignatureInfo {
  /** Subject of the leaf (signer) certificate, OpenSSL one-line form. */
  subject: string;
  issuer?: string;
  /** SHA-256 of the DER leaf certificate, lowercase hex. */
  leafSha256: string;
  /** Message digest algorithm of the (outermost) signature, e.g. sha256. */
  digest: string;
  /** RFC 3161 / Authenticode timestamp, ISO 8601, when present. */
  timestamp?: string;
  /** Number of signatures including nested ones. */
  signatures: number;
  /** Name of the signing profile that produced or verified it. */
  profile?: string;
  /** True when made with a dev profile / dev certificate. */
  dev: boolean;
}

declare const signedBrand: unique symbol;

export interface SignedArtifact extends Artifact {
  readonly signature: SignatureInfo;
  readonly [signedBrand]: true;
}

export function artifactKind(path: string): ArtifactKind {
  const ext = extname(path).toLowerCase();
  if (ext === '.exe') return 'exe';
  if (ext === '.msi') return 'msi';
  if (ext === '.dll') return 'dll';
  return 'other';
}

/** Streams the file through SHA-256 (constant memory for any size). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function describeArtifact(path: string): Promise<Artifact> {
  const { size } = statSync(path);
  return { path, kind: artifactKind(path), sha256: await sha256File(path), size };
}

/** Only the signing layer calls this, right after a successful verify. */
export function brandSigned(artifact: Artifact, signature: SignatureInfo): SignedArtifact {
  return { ...artifact, signature } as SignedArtifact;
}
