/**
 * Publishing, as a vendor's server imports it (`signet-release/publish`): choose and open a forge
 * (`dir:PATH`, GitHub, Gitea/Forgejo), publish a release through the verify gate, or run the
 * whole CLI flow (`runPublish`). `Forge` is the contract a custom forge implements.
 */

export { type RunPublishOptions, runPublish } from '../app/publish.ts';
export { checkChannel, expandFiles, type FetchAssetOptions, fetchReleaseAsset } from './assets.ts';
export {
  type ForgeTarget,
  type OpenForgeOptions,
  openForge,
  parseRemote,
  probeGitea,
  type ResolveTargetInput,
  resolveForgeTarget,
} from './index.ts';
export {
  type ChecksumEntry,
  checksumTable,
  loadNotesTemplate,
  type NotesInput,
  renderNotes,
  sha256sums,
  TEMPLATE_VARIABLES,
} from './notes.ts';
export {
  applyPublish,
  describePlan,
  type LocalAsset,
  type PreparedRelease,
  type PublishInput,
  type PublishOutcome,
  type PublishPlan,
  type PublishResult,
  planPublish,
  prepareRelease,
  publishRelease,
  SUMS_NAME,
} from './publish.ts';
export type {
  CreateReleaseInput,
  Forge,
  ForgeKind,
  ReleaseFields,
  RemoteAsset,
  RemoteRelease,
  UploadedAsset,
  UploadInput,
} from './types.ts';
