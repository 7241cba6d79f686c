/**
 * The signing contract every backend implements. `sign` returns a SignedArtifact only after the
 * written file verified (signature, chain, pins, timestamp policy); on any failure it throws a
 * SignetError and leaves no output behind.
 */
import type { SignedArtifact } from '../artifact.ts';

export interface SignOptions {
  /** Write the signed file here instead of replacing the input in place. */
  out?: string;
  /** Remove an existing signature, then sign. */
  replace?: boolean;
  /** Append a nested signature to an existing one. */
  nest?: boolean;
  /** Description (-n) embedded in the signature; defaults to the file name. */
  description?: string;
  /**
   * A file the input starts with, byte for byte (a release's installer stub every site's file
   * begins with): a backend that signs in-process computes that part's digest once. A wrong
   * prefix yields a signature that does not verify, never a wrong one that ships.
   */
  prefix?: string;
  /**
   * The MSI the input is a copy of (a release's base MSI every site's file is made from), and the
   * streams (raw Compound File names) the input holds as they are there: a backend that signs
   * in-process hashes those once per base. As with `prefix`, a wrong claim yields a signature that
   * does not verify, never a wrong one that ships. `prefix`: how many bytes at the start of the
   * base the signed file keeps as they are (MsiBase.prefix); its SHA-256 continues from the base's
   * state there when its bytes are equal (compared, never assumed).
   */
  msiBase?: { path: string; unchanged: readonly string[]; prefix?: number };
  /**
   * The input is a scratch file the caller throws away: a backend that writes the signed file
   * itself may turn the input into it (renamed, then completed) instead of copying it. Afterwards
   * the input is gone or changed, whether signing succeeded or not.
   */
  consume?: boolean;
}

export interface Signer {
  /** Profile name, e.g. "release" or "dev". */
  readonly profile: string;
  /** True for dev profiles (throwaway certificates); artifacts inherit it. */
  readonly dev: boolean;
  /**
   * Remote backend with --allow-unsigned-fallback (never on the release path): `signFiles` keeps
   * the unsigned original, marked signed: false, when the server fails. `sign` itself still throws.
   */
  readonly allowUnsignedFallback?: boolean;
  /**
   * Resolves the profile's key material (env:/file: references) without touching any file; throws
   * the coded error a sign would. `sign` does it too; `signFiles` calls it once before the batch.
   */
  prepare?(): void;
  sign(path: string, options?: SignOptions): Promise<SignedArtifact>;
  /** Verifies an existing file against this profile's trust settings (CA, pins, timestamp policy). */
  verify(path: string): Promise<SignedArtifact>;
}
