/**
 * Release notes for one version, rendered by a small template-free renderer (golden-file tested):
 * a heading with the compare link and date, then sections for breaking changes and each
 * configured commit type, bullets with scope, subject, short SHA and commit link.
 */
import { type Analysis, analyzeCommits, commitBump, type ReleaseRule } from '../version/analyze.ts';
import type { ConventionalCommit } from '../version/conventional.ts';
import { LINK_FORMATS, type RepoLink } from './links.ts';

export interface NotesSection {
  type: string;
  title: string;
}

export const DEFAULT_SECTIONS: readonly NotesSection[] = [
  { type: 'feat', title: 'Features' },
  { type: 'fix', title: 'Bug fixes' },
  { type: 'perf', title: 'Performance' },
];

export interface NotesOptions {
  sections?: readonly NotesSection[];
  /** Title of the breaking-changes section ("" hides it). */
  breakingTitle?: string;
  releaseRules?: readonly ReleaseRule[];
  repo?: RepoLink | undefined;
  /** Release date, YYYY-MM-DD (pass it: rendering reads no clock). */
  date: string;
}

/** What renderNotes needs from a plan. */
export interface NotesTarget {
  version: string | null;
  tag: string | null;
  previousTag: string | null;
}

export interface RenderedNotes {
  version: string;
  /** `## [1.2.0](compare) (2026-01-31)` */
  heading: string;
  /** The sections without the heading (for a release body or a per-version notes file). */
  body: string;
  /** heading + blank line + body, ending with one newline. */
  markdown: string;
  /** Number of bullets rendered. */
  entries: number;
}

/** One line of Markdown; `<` and `>` are escaped so a commit subject cannot inject HTML. */
/**
 * For planFromRepo's `lean`: true for commits the notes never show (not breaking, no section,
 * not releasable), whose texts need not be kept in memory.
 */
export function notesLean(options: {
  sections?: readonly NotesSection[];
  releaseRules?: readonly ReleaseRule[];
}): (c: ConventionalCommit) => boolean {
  const types = new Set((options.sections ?? DEFAULT_SECTIONS).map((s) => s.type));
  const rules = options.releaseRules ?? [];
  return (c) => !c.breaking && !types.has(c.type ?? '') && commitBump(c, rules) === null;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim().replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function bullet(c: ConventionalCommit, text: string, repo: RepoLink | undefined): string {
  const f = repo ? LINK_FORMATS[repo.kind] : undefined;
  let subject = oneLine(text);
  if (repo && f)
    subject = subject.replace(/(^|[\s(])#(\d+)\b/g, (_m, pre, n) => `${pre}[#${n}](${f.issue(repo.url, n)})`);
  const scope = c.scope ? `**${c.scope}:** ` : '';
  const sha = repo && f ? `[${c.shortSha}](${f.commit(repo.url, c.sha)})` : c.shortSha;
  return `* ${scope}${subject} (${sha})`;
}

function byScope(list: ConventionalCommit[]): ConventionalCommit[] {
  return list
    .map((c, i) => ({ c, i }))
    .sort((a, b) => {
      const sa = a.c.scope ?? '\uffff';
      const sb = b.c.scope ?? '\uffff';
      return sa < sb ? -1 : sa > sb ? 1 : a.i - b.i;
    })
    .map((x) => x.c);
}

/**
 * Renders the notes of `target.version` from the commits of its range (newest first, as
 * planFromRepo returns them; reverts that cancel out are dropped).
 */
export function renderNotes(
  target: NotesTarget,
  commits: readonly ConventionalCommit[],
  options: NotesOptions,
): RenderedNotes {
  const version = target.version ?? '0.0.0';
  const repo = options.repo;
  const f = repo ? LINK_FORMATS[repo.kind] : undefined;
  const sections = options.sections ?? DEFAULT_SECTIONS;
  const analysis: Analysis = analyzeCommits(commits, options.releaseRules ?? []);

  let link: string | undefined;
  if (repo && f && target.tag) {
    link = target.previousTag
      ? f.compare(repo.url, target.previousTag, target.tag)
      : f.tag(repo.url, target.tag);
  }
  const heading = `## ${link ? `[${version}](${link})` : version} (${options.date})`;

  const parts: string[] = [];
  const breakingTitle = options.breakingTitle ?? '⚠ Breaking changes';
  const breaking = analysis.effective.filter((c) => c.breaking);
  let entries = 0;
  if (breakingTitle && breaking.length) {
    const lines = byScope(breaking).flatMap((c) => c.breakingNotes.map((n) => bullet(c, n, repo)));
    entries += lines.length;
    parts.push(`### ${breakingTitle}\n\n${lines.join('\n')}`);
  }
  const known = new Set(sections.map((s) => s.type));
  for (const s of sections) {
    const list = analysis.effective.filter((c) => c.type === s.type);
    if (!list.length) continue;
    const lines = byScope(list).map((c) => bullet(c, c.subject, repo));
    entries += lines.length;
    parts.push(`### ${s.title}\n\n${lines.join('\n')}`);
  }
  const others = analysis.releasable.filter(
    (c) => !known.has(c.type ?? '') && !(c.breaking && breakingTitle),
  );
  if (others.length) {
    const lines = byScope(others).map((c) => bullet(c, c.type ? `${c.type}: ${c.subject}` : c.header, repo));
    entries += lines.length;
    parts.push(`### Other changes\n\n${lines.join('\n')}`);
  }
  const body = parts.length
    ? `${parts.join('\n\n')}\n`
    : target.previousTag
      ? 'No notable changes.\n'
      : 'Initial release.\n';
  return { version, heading, body, markdown: `${heading}\n\n${body}`, entries };
}
