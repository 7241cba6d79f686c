/**
 * `signet-release`: the core a vendor's Node server imports — errors, configuration, secret
 * references, sealed boxes, the logger, and applying a release (changelog, commit, tag).
 * The four areas have their own entry points, loaded only when imported:
 * `signet-release/version` (planning), `signet-release/sign` (signing and verify),
 * `signet-release/installers` (per-site installers), `signet-release/publish` (forges).
 */
export {
  type Artifact,
  type ArtifactKind,
  artifactKind,
  describeArtifact,
  type SignatureInfo,
  type SignedArtifact,
  sha256File,
} from './artifact.ts';
export {
  type ChangelogFiles,
  type RenderedNotes,
  renderNotes,
  updateChangelog,
  writeChangelog,
} from './changelog/index.ts';
export { CONFIG_FILES, type LoadedConfig, loadConfig, parseConfig } from './config/load.ts';
export { configSchema, jsonSchema, type SignetConfig } from './config/schema.ts';
export {
  ERRORS,
  type ErrorCode,
  EXIT,
  type ExitKind,
  isSignetError,
  SignetError,
  type SignetErrorOptions,
  toSignetError,
} from './errors.ts';
export { type Level, type LogSink, logger } from './log.ts';
export { ACTIONS_REPOSITORY, PACKAGE_NAME, packageVersion } from './paths.ts';
export { redact, registerSecret } from './redact.ts';
export {
  type ApplyOptions,
  type ApplyResult,
  applyRelease,
  type NotesFromRepoOptions,
  type NotesResult,
  notesFromRepo,
  type ReleaseConfig,
} from './release/index.ts';
export {
  ENROLLMENT_KEY_FORMAT,
  type EnrollmentKeyEnvelope,
  openEnrollmentKey,
  sealEnrollmentKey,
} from './seal/enrollment.ts';
export { generateSealKeyPair, publicKeyOf, type SealKeyPair, seal, unseal } from './seal/index.ts';
export { isSecretRef, parseSecretRef, resolveSecret, type SecretRef } from './secrets.ts';
