/** Applying a release plan: files, commit, tag, push, rollback; notes from a repository. */
export {
  type ApplyOptions,
  type ApplyResult,
  applyRelease,
  commitMessage,
  diffChanges,
  type ReleaseConfig,
  releaseDate,
  stableChanges,
} from './apply.ts';
export type { FileChange } from './files.ts';
export { type NotesFromRepoOptions, type NotesResult, notesFromRepo } from './notes.ts';
export { type PushAuth, pushArgs, pushAuth } from './push.ts';
