/** Changelog: notes for one version, CHANGELOG.md updates, the per-version notes file. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FileChange } from '../release/files.ts';
import type { RenderedNotes } from './render.ts';
import { updateChangelog } from './update.ts';

export {
  detectKind,
  type ForgeKind,
  LINK_FORMATS,
  type LinkFormat,
  type RepoLink,
  resolveRepoLink,
  webUrlOfRemote,
} from './links.ts';
export {
  DEFAULT_SECTIONS,
  type NotesOptions,
  type NotesSection,
  type NotesTarget,
  notesLean,
  type RenderedNotes,
  renderNotes,
} from './render.ts';
export { type ChangelogUpdate, hasVersionSection, updateChangelog } from './update.ts';

export interface ChangelogFiles {
  /** CHANGELOG.md path relative to the root (default CHANGELOG.md). */
  file: string;
  /** Directory of per-version notes files relative to the root (default .signet/notes). */
  notesDir: string;
}

export function notesPath(cfg: ChangelogFiles, version: string): string {
  return `${cfg.notesDir.replace(/\/+$/, '')}/${version}.md`;
}

/**
 * The file changes that writing the notes makes: CHANGELOG.md (unless it already has the
 * version) and `<notesDir>/<version>.md` (the body, for a release page). Reads, never writes.
 */
export function changelogChanges(root: string, cfg: ChangelogFiles, notes: RenderedNotes): FileChange[] {
  const read = (p: string) => (existsSync(join(root, p)) ? readFileSync(join(root, p), 'utf8') : null);
  const out: FileChange[] = [];
  const before = read(cfg.file);
  const update = updateChangelog(before, notes.markdown, notes.version);
  if (update.changed) out.push({ path: cfg.file, before, after: update.text });
  const np = notesPath(cfg, notes.version);
  const notesBefore = read(np);
  if (notesBefore !== notes.body) out.push({ path: np, before: notesBefore, after: notes.body });
  return out;
}

/**
 * Writes CHANGELOG.md (new section at the top, idempotent) and the per-version notes file.
 * Returns what changed (empty when both were already up to date).
 */
export function writeChangelog(root: string, cfg: ChangelogFiles, notes: RenderedNotes): FileChange[] {
  const changes = changelogChanges(root, cfg, notes);
  for (const c of changes) {
    const abs = join(root, c.path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, c.after);
  }
  return changes;
}
